"""The transactional outbox: status changes become event and delivery rows, in the very
transaction that made them.

``Outbox.on_status`` and ``Outbox.on_device`` are registered on the database
(``db.status_listeners`` / ``db.device_listeners``) and run in the writer thread inside
the transaction of the change (``services.lifecycle``).  So an event is never lost
between a committed change and the row announcing it, nor announced for a change that
was rolled back; and it is frozen as it was at that moment (``Event.data``), so a
receiver sees each status in turn even when the next change commits before the first
delivery leaves.

The listener runs for every ``sms.send`` too, the gateway's hot path, so it must cost
nothing for users nobody listens to:

* the creation of an outgoing message (``CREATED → PENDING``) is not announced (the
  caller just got the hash; SMS Manager also starts at ``sent``), unless the setting
  ``webhook_queued_events`` asks for it: a send batch returns after one loop over it;
* which users have subscriptions is an in-memory ``View``.  Every change of a webhook
  or callback writes a new random token in ``events_version``; the listener compares it
  at most once a second (``VIEW_CHECK_SECONDS``) and reloads the view when it differs,
  so gateway processes sharing one database agree within a second, and the process that
  made the change reloads at once (``invalidate``);
* per-message endpoints (``options.webhook.endpoint``, ``options.status_url``) live on
  the message row: one indexed query per batch finds the few messages that have one.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson

from .. import status as st
from ..ids import HashCodec
from ..models import Device, Message, Sim, StatusChange, User, now_ms
from ..services.lifecycle import Change, DeviceChange
from ..services.messages import dynamic_webhook_options
from ..timefmt import fmt_ms
from . import formats
from .filters import InvalidFilter, TextFilter, callback_event
from .models import (KIND_CALLBACK, KIND_MESSAGE, KIND_STATUS, KIND_WEBHOOK, PENDING,
                     Callback, EventsVersion, Webhook)

if TYPE_CHECKING:
    from ..config import Settings
    from ..db import Database
    from ..services.messages import MessageService

log = logging.getLogger("rpcgw.events")

VIEW_CHECK_SECONDS = 1.0
_DELIVERY_COLUMNS = ("event_id", "user_id", "kind", "webhook_id", "callback_id", "endpoint",
                     "format", "chain", "status", "attempts", "next_attempt_at", "give_up_at",
                     "created_at", "last_error")
_ALNUM = string.ascii_letters + string.digits


def new_event_id(at: int) -> str:
    """32 characters, as CALLR's (``942214623559669723oDAOsQafV6EJlx``): time, then
    random letters; unique, and sorted roughly by time."""
    return f"{at:013d}" + "".join(secrets.choice(_ALNUM) for _ in range(19))


@dataclass(slots=True)
class Sub:
    """One enabled subscription, as the listener needs it (no secret here)."""

    kind: str               # KIND_WEBHOOK or KIND_CALLBACK
    id: int
    user_id: int
    event: str              # webhook type, or callback event (received, sent, ...)
    endpoint: str
    format: str
    device_id: int | None = None
    filter: TextFilter | None = None


@dataclass(slots=True)
class View:
    webhooks: dict[tuple[int, str], list[Sub]] = field(default_factory=dict)
    callbacks: dict[int, list[Sub]] = field(default_factory=dict)
    users: frozenset[int] = frozenset()
    device_hooks: list[Sub] = field(default_factory=list)
    admins: frozenset[int] = frozenset()


@dataclass(slots=True)
class _Target:
    kind: str
    endpoint: str
    format: str
    chain: str
    webhook_id: int | None = None
    callback_id: int | None = None


class Outbox:
    def __init__(self, db: "Database", settings: "Settings", messages: "MessageService",
                 webhook_codec: HashCodec, on_new: Callable[[], None]) -> None:
        self.db = db
        self.settings = settings
        self.messages = messages
        self.codec = webhook_codec
        #: Called in the writer thread when deliveries were written (wakes the workers
        #: after the commit: their claim is a later writer job).
        self.on_new = on_new
        self.max_age_ms = int(settings.webhook_retry_max_age_hours * 3_600_000)
        self.queued_events = bool(settings.webhook_queued_events)
        self.stale = True
        self._view = View()
        self._token: str | None = None
        self._checked = float("-inf")
        p = db.param
        returning = " RETURNING id" if db.is_postgres else ""
        self._sql_event = ("INSERT INTO webhook_event (public_id, type, message_id, "
                           f"device_id, at, data, context) VALUES ({p}, {p}, {p}, {p}, "
                           f"{p}, {p}, {p}){returning}")

    # -- registration and the view -------------------------------------------------

    def register(self) -> None:
        self.db.status_listeners.append(self.on_status)
        self.db.device_listeners.append(self.on_device)

    def unregister(self) -> None:
        for listeners, fn in ((self.db.status_listeners, self.on_status),
                              (self.db.device_listeners, self.on_device)):
            if fn in listeners:
                listeners.remove(fn)

    def invalidate(self) -> None:
        """Reload the view at the next change (a subscription changed here)."""
        self.stale = True

    def view(self) -> View:
        """Writer thread: the subscriptions, fresh within VIEW_CHECK_SECONDS."""
        now = time.monotonic()
        if self.stale or now - self._checked >= VIEW_CHECK_SECONDS:
            cursor = self.db.pw.cursor()
            cursor.execute("SELECT token FROM events_version WHERE id = 1")
            found = cursor.fetchone()
            token = found[0] if found else None
            self._checked = now
            if self.stale or token != self._token:
                self._view = self._load()
                self._token = token
                self.stale = False
        return self._view

    def _load(self) -> View:
        view = View()
        users: set[int] = set()
        for hook in (Webhook.select(Webhook.id, Webhook.user, Webhook.type,
                                    Webhook.endpoint, Webhook.format)
                     .where(Webhook.enabled == True)):  # noqa: E712 - peewee expression
            sub = Sub(KIND_WEBHOOK, hook.id, hook.user_id, hook.type, hook.endpoint,
                      hook.format)
            if hook.type == formats.DEVICE_STATUS:
                view.device_hooks.append(sub)
            else:
                view.webhooks.setdefault((hook.user_id, hook.type), []).append(sub)
                users.add(hook.user_id)
        for cb in Callback.select().where(Callback.enabled == True):  # noqa: E712
            try:
                text_filter = TextFilter(cb.filter_type, cb.text_filter)
            except InvalidFilter:
                log.warning("callback %s has an invalid filter; it is skipped", cb.id)
                continue
            view.callbacks.setdefault(cb.user_id, []).append(Sub(
                KIND_CALLBACK, cb.id, cb.user_id, cb.event, cb.action,
                "FORM" if cb.method == "FORM" else "JSON", cb.device_id, text_filter))
            users.add(cb.user_id)
        view.users = frozenset(users)
        if view.device_hooks:
            view.admins = frozenset(u.id for u in User.select(User.id).where(
                User.is_admin == True))  # noqa: E712
        return view

    # -- status changes --------------------------------------------------------------

    def on_status(self, changes: list[Change]) -> None:
        """Writer thread, inside the transaction of ``changes``."""
        if not self.queued_events:
            for c in changes:
                if c.old_status != st.CREATED or c.direction != "OUT":
                    break
            else:
                return  # a batch of sends: nothing to announce
            changes = [c for c in changes
                       if c.old_status != st.CREATED or c.direction != "OUT"]
        view = self.view()
        users = view.users
        unknown = [c.message_id for c in changes
                   if c.direction == "OUT" and c.user_id not in users]
        routed = self._with_endpoints(unknown) if unknown else set()
        wanted = [c for c in changes if c.direction == "IN" or c.user_id in users
                  or c.message_id in routed]
        if wanted:
            self._announce(view, wanted)

    def _with_endpoints(self, ids: list[int]) -> set[int]:
        found: set[int] = set()
        cursor = self.db.pw.cursor()
        p = self.db.param
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor.execute(
                f"SELECT id FROM message WHERE id IN ({', '.join([p] * len(chunk))}) "
                "AND (webhook_endpoint IS NOT NULL OR status_url IS NOT NULL)", chunk)
            found.update(row[0] for row in cursor.fetchall())
        return found

    def _announce(self, view: View, changes: list[Change]) -> None:
        ids = sorted({c.message_id for c in changes})
        rows: dict[int, dict[str, Any]] = {}
        histories: dict[int, list[dict[str, str]]] = defaultdict(list)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows.update((r["id"], r) for r in Message.select().where(
                Message.id.in_(chunk)).dicts())
            for h in (StatusChange.select().where(StatusChange.message.in_(chunk))
                      .order_by(StatusChange.id).dicts()):
                histories[h["message"]].append({"old_status": h["old_status"],
                                                "new_status": h["new_status"],
                                                "updated_at": fmt_ms(h["at"])})
        answered_ids = {r["in_reply_to"] for r in rows.values()
                        if r["direction"] == "IN" and r["in_reply_to"]}
        answered: dict[int, dict[str, Any]] = {r["id"]: r for r in Message.select().where(
            Message.id.in_(sorted(answered_ids))).dicts()} if answered_ids else {}
        # How many changes of each message this batch still holds after the current one,
        # to cut its history back to the moment of each change.
        later: dict[int, int] = defaultdict(int)
        for c in changes:
            later[c.message_id] += 1
        now = now_ms()
        written = 0
        for c in changes:
            later[c.message_id] -= 1
            row = rows.get(c.message_id)
            if row is None:
                continue
            context: dict[str, Any] | None = None
            if c.direction == "OUT":
                event_type = formats.SMS_MT_STATUS
                targets = self._targets(view, c, row, event_type, row, "")
                if row["status_url"]:
                    targets.append(_Target(KIND_STATUS, row["status_url"], formats.STATUS,
                                           f"s:{row['id']}"))
            elif c.new_status == st.RECEIVED:
                event_type = formats.SMS_MO
                original = answered.get(row["in_reply_to"] or 0)
                targets = self._targets(view, c, row, event_type, original, "received")
                if original is not None:
                    context = {"reply_to": self._reply_context(original)}
            else:
                continue
            if not targets:
                continue
            history = histories[c.message_id]
            if later[c.message_id]:
                history = history[:len(history) - later[c.message_id]]
            data = self.messages.sms_object(row, history)
            if later[c.message_id]:
                data["status"] = c.new_status
                data["status_error"] = c.error
                data["result_info"] = st.RESULT_INFO[c.new_status]
            self._write(event_type, c.at, data, context, targets, c.user_id,
                        message_id=c.message_id, device_id=None, now=now)
            written += 1
        if written:
            self.on_new()

    def _targets(self, view: View, c: Change, row: dict[str, Any], event_type: str,
                 routed: dict[str, Any] | None, mo_event: str) -> list[_Target]:
        """Who gets this change: the user's webhooks of this type, matching callbacks,
        and the per-message endpoint of ``routed`` (the message, or the one a reply
        answers)."""
        mid = c.message_id
        targets = [_Target(KIND_WEBHOOK, s.endpoint, s.format, f"w{s.id}:{mid}",
                           webhook_id=s.id)
                   for s in view.webhooks.get((c.user_id, event_type), ())]
        event = mo_event or callback_event(c.direction, c.new_status)
        callbacks = view.callbacks.get(c.user_id)
        if event and callbacks:
            device = row["sent_device_id"] if row["sent_device_id"] is not None \
                else row["device_id"]
            for s in callbacks:
                if s.event != event or (s.device_id is not None and s.device_id != device):
                    continue
                if s.filter is not None and not s.filter.matches(row["text"]):
                    continue
                targets.append(_Target(KIND_CALLBACK, s.endpoint, s.format,
                                       f"c{s.id}:{mid}", callback_id=s.id))
        if routed is not None and routed["webhook_endpoint"]:
            targets.append(_Target(KIND_MESSAGE, routed["webhook_endpoint"],
                                   dynamic_webhook_options(orjson.loads(routed["options"] or "{}"))
                                   .get("format", "JSON"), f"m:{routed['id']}"))
        return targets

    def _reply_context(self, original: dict[str, Any]) -> dict[str, Any]:
        options = orjson.loads(original["options"]) if original["options"] else None
        request_id = options.get("idempotency_key") if isinstance(options, dict) else None
        sms_hash = self.messages.codec.encode(original["id"])
        return {"hash": sms_hash, "request_id": request_id or sms_hash,
                "custom_ticket": original["custom_ticket"],
                "customer_id": original["customer_id"], "text": original["text"]}

    def _write(self, event_type: str, at: int, data: dict[str, Any],
               context: dict[str, Any] | None, targets: list[_Target], user_id: int, *,
               message_id: int | None, device_id: int | None, now: int) -> None:
        cursor = self.db.pw.cursor()
        cursor.execute(self._sql_event, (
            new_event_id(at), event_type, message_id, device_id, at,
            orjson.dumps(data).decode(),
            orjson.dumps(context).decode() if context is not None else None))
        event_id = cursor.fetchone()[0] if self.db.is_postgres else cursor.lastrowid
        give_up = now + self.max_age_ms
        self.db.insert_rows("webhook_delivery", _DELIVERY_COLUMNS, [
            (event_id, user_id, t.kind, t.webhook_id, t.callback_id, t.endpoint, t.format,
             t.chain, PENDING, 0, now, give_up, now, "") for t in targets])

    # -- SIM and device changes ------------------------------------------------------

    def on_device(self, changes: list[DeviceChange]) -> None:
        """Writer thread: ``device.status_update`` for the device's owner and admins."""
        if not changes:
            return
        view = self.view()
        if not view.device_hooks:
            return
        devices = {d.id: d for d in Device.select(Device.id, Device.name, Device.owner)
                   .where(Device.id.in_(sorted({c.device_id for c in changes})))}
        numbers = {(s.device_id, s.slot): s.number for s in Sim.select(
            Sim.device, Sim.slot, Sim.number).where(
            Sim.device.in_(sorted({c.device_id for c in changes})))}
        now = now_ms()
        written = 0
        for c in changes:
            device = devices.get(c.device_id)
            owner = device.owner_id if device is not None else None
            data = {"device_id": c.device_id, "device_name": device.name if device else "",
                    "sim": c.sim, "number": numbers.get((c.device_id, c.sim), ""),
                    "old_state": c.old_state, "new_state": c.new_state,
                    "detail": c.detail, "date_update": fmt_ms(c.at)}
            by_user: dict[int, list[_Target]] = defaultdict(list)
            for s in view.device_hooks:
                if s.user_id in view.admins or s.user_id == owner:
                    by_user[s.user_id].append(_Target(
                        KIND_WEBHOOK, s.endpoint, s.format,
                        f"w{s.id}:d{c.device_id}:{c.sim}", webhook_id=s.id))
            for user_id, targets in by_user.items():
                self._write(formats.DEVICE_STATUS, c.at, data, None, targets, user_id,
                            message_id=None, device_id=c.device_id, now=now)
                written += 1
        if written:
            self.on_new()


__all__ = ["Outbox", "View", "Sub", "EventsVersion", "new_event_id"]
