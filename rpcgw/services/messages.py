"""Messages: accept, look up, search and cancel SMS.  No JSON-RPC, no aiohttp here.

The send path is the hot path of the whole gateway, so it is written with care:
validation and encoding analysis run on the event loop (pure, microseconds), the row is
written with one prepared INSERT (no ORM query building) by the database writer thread,
which commits many sends at once, and the caller gets the hash only after that commit.
Everything else uses peewee queries.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson
from peewee import fn as sqlfn

from .. import errors, status as st
from ..gsm import alphabet
from ..ids import HashCodec
from ..models import Message, StatusChange, User, now_ms
from . import lifecycle
from .lifecycle import Change
from ..phone import InvalidNumber, normalize
from ..timefmt import ZERO, fmt_ms, parse_datetime
from ..urls import UrlRefused, check_endpoint

if TYPE_CHECKING:
    from ..auth import Principal
    from ..config import Settings
    from ..db import Database

MAX_TEXT_PARTS = 255          # the concatenation UDH counts parts in one octet
MAX_LIST = 10_000             # sms.get_list returns at most this many (newest first)
MAX_SEARCH_PAGE = 1000
PRIORITY_URGENT = 100
PRIORITY_MIN, PRIORITY_MAX = -100, 100

_OPTION_KEYS = ("flash_message", "force_encoding", "nature", "user_data", "webhook",
                "device_id", "sim", "send_at", "priority", "urgent", "status_url",
                "custom_ticket", "customer_id", "validity", "idempotency_key")


def date_param(value: str, param: str, field: str | None = None) -> int:
    """A ``YYYY-MM-DD[ HH:MM:SS]`` parameter as UTC ms, or INVALID_PARAM naming it."""
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise errors.InvalidParams(str(exc), param=param, field=field) from None


def dynamic_webhook_options(options: Any) -> dict[str, Any]:
    """``options.webhook.options`` of a message's options (``{}`` when there are none)."""
    hook = options.get("webhook") if isinstance(options, dict) else None
    found = hook.get("options") if isinstance(hook, dict) else None
    return found if isinstance(found, dict) else {}


@dataclass(slots=True)
class NewMessage:
    """A validated outgoing message, ready to insert."""

    user_id: int
    sender: str
    recipient: str
    text: str
    encoding: str
    parts: int
    options: dict[str, Any] | None
    user_data: str
    nature: str
    flash: bool
    priority: int
    send_at: int | None
    expires_at: int | None
    device_id: int | None
    sim: int | None
    customer_id: str | None
    custom_ticket: str | None
    status_url: str | None
    webhook_endpoint: str | None
    idempotency_key: str | None
    campaign_id: int | None = None


@dataclass(slots=True)
class Incoming:
    """An incoming SMS as the modem pool hands it over (reassembled if it was long)."""

    device_id: int
    sim: int
    owner_id: int           # who gets it when it is not a reply (the device's owner)
    sender: str             # E.164 or alphanumeric, as the network gave it
    recipient: str          # the receiving SIM's number ("" when unknown)
    text: str
    encoding: str
    parts: int
    sc_timestamp: int       # service-centre time stamp, UTC ms
    received_at: int | None = None

    @property
    def dedupe_key(self) -> str:
        digest = hashlib.sha256(
            f"{self.device_id}/{self.sim}/{self.sender}/{self.sc_timestamp}/{self.text}"
            .encode("utf-8", "surrogatepass")).hexdigest()
        return digest[:64]


class MessageService:
    def __init__(self, db: "Database", settings: "Settings", codec: HashCodec) -> None:
        self.db = db
        self.settings = settings
        self.codec = codec
        #: Called (on the event loop) after messages were queued, e.g. to wake the pool.
        self.on_queued: list[Callable[[], None]] = []
        #: Called by ``build`` with each validated message; a check refuses one by raising
        #: an RpcgwError (opt-outs).  Checks run on the event loop on every send: they
        #: must answer from memory.
        self.checks: list[Callable[[NewMessage], None]] = []
        #: Encrypts a secret for storage (event delivery's SecretBox.encrypt).
        self.seal: Callable[[str], str] | None = None
        self._pending: list[tuple[list[NewMessage], asyncio.Future[list[int]]]] = []
        p = db.param
        columns = ("user_id", "direction", "sender", "recipient", "text", "encoding",
                   "parts", "status", "status_error", "result_info", "options",
                   "user_data", "nature", "flash", "priority", "send_at", "expires_at",
                   "device_id", "sim", "customer_id", "custom_ticket", "status_url",
                   "webhook_endpoint", "idempotency_key", "campaign_id", "created_at",
                   "updated_at", "attempts")
        self._columns = columns
        insert = "INSERT INTO message ({}) VALUES ({})".format(
            ", ".join(columns), ", ".join([p] * len(columns)))
        self._sql_insert = insert + (" RETURNING id" if db.is_postgres else "")
        self._sql_insert_values = "INSERT INTO message ({}) VALUES %s RETURNING id".format(
            ", ".join(columns))
        self._sql_insert_idem = insert + (
            " ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
            " DO NOTHING"
            + (" RETURNING id" if db.is_postgres else ""))
        self._sql_find_idem = (f"SELECT id FROM message WHERE user_id = {p} "
                               f"AND idempotency_key = {p}")

    # -- validation --------------------------------------------------------------------

    def build(self, principal: "Principal", sender: str, to: str, text: str,
              options: Any) -> NewMessage:
        """Validate one send; raise InvalidParams naming the field.  Pure, no I/O."""
        opts = self._options(options)
        try:
            recipient = normalize(to, self.settings.default_region)
        except InvalidNumber as exc:
            raise errors.InvalidParams(str(exc), param="to") from None
        sender = sender.strip()
        if len(sender) > 32:
            raise errors.InvalidParams("at most 32 characters", param="from")
        force = opts.get("force_encoding")
        info = alphabet.analyze(text, force)
        if info.parts > MAX_TEXT_PARTS:
            raise errors.InvalidParams(
                f"the text needs {info.parts} parts; at most {MAX_TEXT_PARTS} are possible",
                param="text")
        if force == "GSM" and not alphabet.is_gsm(text):
            text = alphabet.transliterate(text)
        now = now_ms()
        send_at = None
        if opts.get("send_at"):
            send_at = date_param(opts["send_at"], "options", "options.send_at")
        validity = opts.get("validity") or self.settings.default_validity_minutes or None
        expires_at = None
        if validity:
            expires_at = max(now, send_at or now) + int(validity) * 60_000
        priority = int(opts.get("priority") or 0)
        if opts.get("urgent"):
            priority = max(priority, PRIORITY_URGENT)
        webhook_endpoint = None
        if opts.get("webhook"):
            webhook_endpoint = self._endpoint(opts["webhook"].get("endpoint"),
                                              "options.webhook.endpoint")
            opts = self._seal_webhook_secret(opts)
        status_url = None
        if opts.get("status_url"):
            status_url = self._endpoint(opts["status_url"], "options.status_url")
        customer_id = opts.get("customer_id")
        message = NewMessage(
            user_id=principal.user_id, sender=sender, recipient=recipient, text=text,
            encoding=info.encoding, parts=info.parts, options=opts or None,
            user_data=opts.get("user_data") or "",
            # CALLR's messages are MARKETING unless said otherwise (an SMS object of a
            # send without options shows "nature": "MARKETING"); opt-outs apply to them.
            nature=opts.get("nature") or "MARKETING",
            flash=bool(opts.get("flash_message")), priority=priority, send_at=send_at,
            expires_at=expires_at, device_id=opts.get("device_id"), sim=opts.get("sim"),
            customer_id=None if customer_id is None else str(customer_id),
            custom_ticket=opts.get("custom_ticket"), status_url=status_url,
            webhook_endpoint=webhook_endpoint, idempotency_key=opts.get("idempotency_key"),
        )
        for check in self.checks:
            check(message)
        return message

    def _seal_webhook_secret(self, opts: dict[str, Any]) -> dict[str, Any]:
        """The dynamic webhook's ``hmac_secret`` is stored encrypted, like a
        subscription's (``seal``, set by event delivery); the caller's dict is not touched."""
        hook_options = dynamic_webhook_options(opts)
        if not hook_options.get("hmac_secret"):
            return opts
        if self.seal is None:
            raise errors.Unavailable("event delivery is not running on this gateway",
                                     param="options", field="options.webhook.options")
        sealed = {**hook_options, "hmac_secret": self.seal(hook_options["hmac_secret"])}
        return {**opts, "webhook": {**opts["webhook"], "options": sealed}}

    @staticmethod
    def public_options(raw: str | None) -> dict[str, Any] | None:
        """A message's stored options as clients see them: a dynamic webhook's secret
        shows as ``"********"``, as a subscription's does."""
        if not raw:
            return None
        options: dict[str, Any] = orjson.loads(raw)
        hook_options = dynamic_webhook_options(options)
        if hook_options.get("hmac_secret"):
            options["webhook"] = {**options["webhook"],
                                  "options": {**hook_options, "hmac_secret": "********"}}
        return options

    @staticmethod
    def _options(options: Any) -> dict[str, Any]:
        # CALLR's PHP SDK sends [] for "no options"; null, {} and [] all mean none.
        if options is None or options == [] or options == {}:
            return {}
        if not isinstance(options, dict):
            raise errors.InvalidParams("must be an object, null or []", param="options")
        return options

    def _endpoint(self, url: Any, field: str) -> str:
        try:
            return check_endpoint(url, allow_private=self.settings.allow_private_endpoints)
        except UrlRefused as exc:
            raise errors.InvalidParams(str(exc), param="options", field=field) from None

    # -- sending -------------------------------------------------------------------------

    def _row(self, m: NewMessage, now: int) -> tuple[Any, ...]:
        return (m.user_id, "OUT", m.sender, m.recipient, m.text, m.encoding, m.parts,
                st.PENDING, "", st.RESULT_INFO[st.PENDING],
                orjson.dumps(m.options).decode() if m.options else None,
                m.user_data, m.nature, m.flash, m.priority, m.send_at, m.expires_at,
                m.device_id, m.sim, m.customer_id, m.custom_ticket, m.status_url,
                m.webhook_endpoint, m.idempotency_key, m.campaign_id, now, now, 0)

    def _insert_many(self, messages: list[NewMessage]) -> list[int]:
        """Writer thread: insert messages and their first history entry; ids in order."""
        cursor = self.db.pw.cursor()
        now = now_ms()
        ids: list[int | None] = [None] * len(messages)
        plain = [i for i, m in enumerate(messages) if m.idempotency_key is None]
        if plain:
            rows = [self._row(messages[i], now) for i in plain]
            for i, new_id in zip(plain, self._insert_rows(cursor, rows)):
                ids[i] = new_id
        changes: list[Change] = []
        for i, m in enumerate(messages):
            if m.idempotency_key is None:
                continue
            cursor.execute(self._sql_insert_idem, self._row(m, now))
            if self.db.is_postgres:
                found = cursor.fetchone()
                new_id = found[0] if found else None
            else:
                new_id = cursor.lastrowid if cursor.rowcount == 1 else None
            if new_id is None:  # the key was used before: answer the first message
                cursor.execute(self._sql_find_idem, (m.user_id, m.idempotency_key))
                ids[i] = cursor.fetchone()[0]
                continue
            ids[i] = new_id
            changes.append(Change(new_id, m.user_id, "OUT", st.CREATED, st.PENDING, now))
        changes.extend(Change(ids[i], messages[i].user_id, "OUT", st.CREATED, st.PENDING, now)
                       for i in plain)
        lifecycle.record(self.db, changes)
        return ids  # type: ignore[return-value]

    def _insert_rows(self, cursor: Any, rows: list[tuple[Any, ...]]) -> list[int]:
        """Insert message rows in one statement batch and return their ids in order."""
        if self.db.is_postgres:
            from psycopg2.extras import execute_values
            # One INSERT … VALUES (…), (…) … RETURNING: ids come back in VALUES order.
            result = execute_values(cursor, self._sql_insert_values, rows,
                                    page_size=len(rows), fetch=True)
            return [r[0] for r in result]
        if len(rows) == 1:
            cursor.execute(self._sql_insert, rows[0])
            return [cursor.lastrowid]
        # The writer holds SQLite's write lock (BEGIN IMMEDIATE) for the whole
        # transaction and each new rowid is the largest plus one, so the rows get
        # consecutive rowids ending at the last one inserted.
        last = self.db.insert_rows("message", self._columns, rows)
        assert last is not None
        return list(range(last - len(rows) + 1, last + 1))

    async def send(self, message: NewMessage) -> str:
        (sms_hash,) = await self.send_many([message])
        return sms_hash

    async def send_many(self, messages: list[NewMessage]) -> list[str]:
        """Queue messages; return their hashes once committed.

        Sends made during one turn of the event loop (the calls of a JSON-RPC batch,
        concurrent HTTP requests) are coalesced into one database job, so the writer
        thread receives one list instead of a job, a future and a wake-up per message.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[int]] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((messages, future))
        ids = await future
        self._queued()
        encode = self.codec.encode
        return [encode(i) for i in ids]

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            messages, future = pending[0]
            self._submit(messages, future)
            return
        combined = [m for messages, _ in pending for m in messages]
        job = self.db.write(self._insert_many, combined)

        def distribute(done: asyncio.Future[list[int]]) -> None:
            if done.exception() is not None:
                # One bad message must not fail the others: retry each send alone.
                for messages, future in pending:
                    self._submit(messages, future)
                return
            ids, offset = done.result(), 0
            for messages, future in pending:
                if not future.cancelled():
                    future.set_result(ids[offset:offset + len(messages)])
                offset += len(messages)
        job.add_done_callback(distribute)

    def _submit(self, messages: list[NewMessage], future: asyncio.Future[list[int]]) -> None:
        def relay(done: asyncio.Future[list[int]]) -> None:
            if future.cancelled():
                return
            if done.exception() is not None:
                future.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                future.set_result(done.result())
        self.db.write(self._insert_many, messages).add_done_callback(relay)

    def _queued(self) -> None:
        for callback in self.on_queued:
            callback()

    # -- reading -------------------------------------------------------------------------

    def _id(self, sms_hash: Any, param: str = "hash") -> int:
        ident = self.codec.decode(sms_hash) if isinstance(sms_hash, str) else None
        if ident is None:
            raise errors.InvalidParams("not an SMS hash (8 letters or digits)", param=param)
        return ident

    async def get(self, principal: "Principal", sms_hash: str) -> dict[str, Any]:
        ident = self._id(sms_hash)
        result = await self.db.read(self._load, principal.user_id, [ident])
        if not result:
            raise errors.NotFound(f"no SMS {sms_hash}", param="hash")
        return result[0]

    def _load(self, user_id: int, ids: list[int]) -> list[dict[str, Any]]:
        rows = list(Message.select().where(Message.user == user_id, Message.id.in_(ids))
                    .order_by(Message.id).dicts())
        return self._objects(rows)

    def _objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not rows:
            return []
        histories: dict[int, list[dict[str, str]]] = {r["id"]: [] for r in rows}
        for h in (StatusChange.select().where(StatusChange.message.in_(list(histories)))
                  .order_by(StatusChange.id).dicts()):
            histories[h["message"]].append({"old_status": h["old_status"],
                                            "new_status": h["new_status"],
                                            "updated_at": fmt_ms(h["at"])})
        return [self.sms_object(r, histories[r["id"]]) for r in rows]

    def sms_object(self, r: dict[str, Any], history: list[dict[str, str]]) -> dict[str, Any]:
        """The CALLR SMS object, plus the fields of the other seeds."""
        now = now_ms()
        status = r["status"]
        return {
            "type": r["direction"],
            "hash": self.codec.encode(r["id"]),
            "from": r["sender"],
            "to": r["recipient"],
            "text": r["text"],
            "options": self.public_options(r["options"]),
            "encoding": r["encoding"],
            "parts": r["parts"],
            "user_data": r["user_data"],
            "nature": r["nature"],
            "status": status,
            "status_error": r["status_error"],
            "date_creation": fmt_ms(r["created_at"]),
            "date_update": fmt_ms(r["updated_at"]),
            "date_sent": fmt_ms(r["sent_at"]),
            "date_received": fmt_ms(r["received_at"]),
            "status_history": history,
            "device_id": r["sent_device_id"] if r["sent_device_id"] is not None
            else r["device_id"],
            "sim": r["sent_sim"] if r["sent_sim"] is not None else r["sim"],
            "priority": r["priority"],
            "send_at": fmt_ms(r["send_at"]) if r["send_at"] else None,
            "status_code": st.sg24_code(
                status, waiting=bool(r["send_at"] and r["send_at"] > now),
                error_code=r["error_code"], was_sent=bool(r["sent_at"])),
            "result_info": r["result_info"] or st.RESULT_INFO[status],
            "customer_id": r["customer_id"],
            "custom_ticket": r["custom_ticket"],
            "campaign_id": r["campaign_id"],
            "in_reply_to": self.codec.encode(r["in_reply_to"]) if r["in_reply_to"] else None,
        }

    async def get_list(self, principal: "Principal", sms_type: str, date_from: str,
                       date_to: str) -> list[dict[str, Any]]:
        start = date_param(date_from, "from")
        end = date_param(date_to, "to")
        if end < start:
            raise errors.InvalidParams("must not be before 'from'", param="to")
        return await self.db.read(self._get_list, principal.user_id, sms_type, start, end)

    def _get_list(self, user_id: int, sms_type: str, start: int, end: int) -> list[Any]:
        # "to" is inclusive to the second, as CALLR's dates have second precision.
        rows = list(Message.select()
                    .where(Message.user == user_id, Message.direction == sms_type,
                           Message.created_at >= start, Message.created_at < end + 1000)
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(MAX_LIST).dicts())
        return self._objects(rows)

    async def search(self, principal: "Principal", filters: dict[str, Any]) -> dict[str, Any]:
        return await self.db.read(self._search, principal.user_id, filters or {})

    def _search(self, user_id: int, f: dict[str, Any]) -> dict[str, Any]:
        query = Message.select().where(Message.user == user_id)
        if f.get("type"):
            query = query.where(Message.direction == f["type"])
        if "status" in f and f["status"] is not None:
            wanted: list[str] = []
            for value in f["status"] if isinstance(f["status"], list) else [f["status"]]:
                wanted.extend(st.status_from_sg24(value) if isinstance(value, int) else [value])
            query = query.where(Message.status.in_(sorted(set(wanted)) or [""]))
        if f.get("device_id") is not None:
            query = query.where((Message.sent_device_id == f["device_id"]) | (
                Message.sent_device_id.is_null() & (Message.device_id == f["device_id"])))
        if f.get("sim") is not None:
            query = query.where((Message.sent_sim == f["sim"]) | (
                Message.sent_sim.is_null() & (Message.sim == f["sim"])))
        if f.get("customer_id") is not None:
            query = query.where(Message.customer_id == str(f["customer_id"]))
        if f.get("campaign_id") is not None:
            query = query.where(Message.campaign_id == f["campaign_id"])
        if f.get("phone"):
            try:
                phone = normalize(f["phone"], self.settings.default_region)
            except InvalidNumber:
                phone = f["phone"].strip()
            query = query.where((Message.recipient == phone) | (Message.sender == phone))
        for key, op in (("date_from", "ge"), ("date_to", "le")):
            if f.get(key):
                ms = date_param(f[key], "filters", f"filters.{key}")
                query = query.where(Message.created_at >= ms if op == "ge"
                                    else Message.created_at < ms + 1000)
        if f.get("text"):
            pattern = "%" + f["text"].replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            query = query.where(Message.text ** pattern if self.db.is_postgres
                                else sqlfn.instr(sqlfn.lower(Message.text),
                                                 f["text"].lower()) > 0)
        if f.get("count_only"):
            return {"count": query.count()}
        descending = (f.get("order") or "desc").lower() == "desc"
        limit = int(f.get("limit") or 100)
        if f.get("cursor"):
            after = self._cursor_id(f["cursor"])
            query = query.where(Message.id < after if descending else Message.id > after)
        query = query.order_by(Message.id.desc() if descending else Message.id)
        rows = list(query.limit(limit + 1).dicts())
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = None
        if more:
            cursor = base64.urlsafe_b64encode(str(rows[-1]["id"]).encode()).decode()
        return {"items": self._objects(rows), "next_cursor": cursor}

    @staticmethod
    def _cursor_id(cursor: str) -> int:
        try:
            return int(base64.urlsafe_b64decode(cursor.encode()).decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise errors.InvalidParams("not a cursor returned by sms.search",
                                       param="filters", field="filters.cursor") from None

    # -- cancelling ----------------------------------------------------------------------

    async def cancel(self, principal: "Principal", sms_hash: str) -> bool:
        ident = self._id(sms_hash)
        outcome = await self.db.write(self._cancel, principal.user_id, ident)
        if outcome is None:
            raise errors.NotFound(f"no SMS {sms_hash}", param="hash")
        cancelled, current = outcome
        if not cancelled:
            raise errors.InvalidState(
                f"the message is {current}: only messages no modem has taken can be cancelled",
                message="MESSAGE_NOT_CANCELLABLE", status=current)
        return True

    def cancel_rows(self, where: Any) -> int:
        """Writer thread: cancel every PENDING message selected by ``where``.

        On SQLite the writer holds the database write lock (BEGIN IMMEDIATE); on
        PostgreSQL the rows are locked, so no modem worker can take them in between.
        """
        now = now_ms()
        query = Message.select(Message.id, Message.user).where(
            where, Message.status == st.PENDING, Message.lease_owner.is_null())
        if self.db.is_postgres:
            query = query.for_update()
        rows = [(r.id, r.user_id) for r in query]
        for chunk in range(0, len(rows), 500):
            part = rows[chunk:chunk + 500]
            Message.update(status=st.CANCELLED, updated_at=now,
                           result_info=st.RESULT_INFO[st.CANCELLED]).where(
                Message.id.in_([i for i, _ in part])).execute()
            lifecycle.record(self.db, [Change(i, u, "OUT", st.PENDING, st.CANCELLED, now)
                                       for i, u in part])
        return len(rows)

    def _cancel(self, user_id: int, ident: int) -> tuple[bool, str] | None:
        row = Message.select(Message.status, Message.direction).where(
            Message.id == ident, Message.user == user_id).first()
        if row is None:
            return None
        if row.direction != "OUT" or row.status != st.PENDING:
            return False, row.status
        if self.cancel_rows(Message.id == ident) == 1:
            return True, st.CANCELLED
        return False, Message.get_by_id(ident).status

    # -- receiving -----------------------------------------------------------------------

    async def store_incoming(self, incoming: "Incoming") -> tuple[int, bool]:
        """Commit one incoming message; returns (message id, newly stored).

        Called by the modem pool before it deletes the message from the modem, so a
        crash between the two can only lead to reading it again, which the dedupe key
        recognises (same SIM, sender, service-centre time and content).
        """
        return await self.db.write(self.insert_incoming, incoming)

    def insert_incoming(self, m: "Incoming") -> tuple[int, bool]:
        """Writer thread: store an incoming message, linked to the message it answers."""
        existing = Message.select(Message.id).where(Message.dedupe_key == m.dedupe_key).first()
        if existing is not None:
            return existing.id, False
        now = now_ms()
        window = int(self.settings.reply_window_hours * 3600 * 1000)
        # A reply: the last message this SIM sent to that number, within the window.
        answered = (Message.select(Message.id, Message.user)
                    .where(Message.recipient == m.sender, Message.sent_device_id == m.device_id,
                           Message.sent_sim == m.sim, Message.sent_at >= now - window,
                           Message.direction == "OUT")
                    .order_by(Message.sent_at.desc()).first())
        user_id = answered.user_id if answered is not None else m.owner_id
        if not user_id:  # the device has no owner (yet): the first administrator
            admin = User.select(User.id).where(User.is_admin == True).order_by(  # noqa: E712
                User.id).first()
            if admin is None:
                raise errors.Unavailable("no user can receive this message yet")
            user_id = admin.id
        row = Message.create(
            user=user_id, direction="IN", sender=m.sender, recipient=m.recipient,
            text=m.text, encoding=m.encoding, parts=m.parts, status=st.RECEIVED,
            result_info=st.RESULT_INFO[st.RECEIVED], nature="MARKETING",
            device_id=m.device_id, sim=m.sim, sent_device_id=m.device_id, sent_sim=m.sim,
            in_reply_to=answered.id if answered is not None else None,
            dedupe_key=m.dedupe_key, created_at=now, updated_at=now,
            received_at=m.received_at or now)
        lifecycle.record(self.db, [Change(row.id, user_id, "IN", st.CREATED, st.RECEIVED,
                                          now)])
        return row.id, True

    # -- counting ------------------------------------------------------------------------

    @staticmethod
    def count_for_body(text: str, force_encoding: str | None = None) -> dict[str, Any]:
        info = alphabet.analyze(text, force_encoding)
        return {"parts": info.parts, "encoding": info.encoding, "length": info.units,
                "per_part": info.per_part, "remaining": info.remaining}


def option_keys() -> Iterable[str]:
    return _OPTION_KEYS


__all__ = ["MessageService", "NewMessage", "ZERO"]
