"""Webhooks, callbacks and deliveries as operations: no JSON-RPC, no aiohttp here.

Every subscription change runs in a writer job that also writes a new
``events_version`` token and tells this process's outbox to reload its view, so the
next status change already sees it (other gateway processes within a second).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Any, Callable

import orjson
import peewee

from .. import errors, status as st
from ..ids import HashCodec
from ..models import now_ms
from ..timefmt import fmt_ms, iso_ms
from ..urls import UrlRefused, check_endpoint
from . import formats, signing
from .crypto import SecretBox, mask
from .engine import DeliveryEngine, Job, build_request
from .filters import InvalidFilter, TextFilter, normalize_event
from .models import (DEAD, IN_FLIGHT, KIND_CALLBACK, KIND_WEBHOOK, PENDING, Callback,
                     Delivery, DeliveryAttempt, Event, Webhook, bump_version)
from .outbox import Outbox, new_event_id

if TYPE_CHECKING:
    from ..auth import Principal
    from ..config import Settings
    from ..db import Database
    from ..services.messages import MessageService

MAX_PAGE = 500


def _options(value: Any) -> dict[str, Any]:
    if value is None or value == [] or value == {}:
        return {}
    return dict(value)


def _cursor(value: str | None, param: str) -> int | None:
    if not value:
        return None
    try:
        return int(base64.urlsafe_b64decode(value.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidParams("not a cursor returned by this method", param=param,
                                   field=f"{param}.cursor") from None


def _next_cursor(rows: list[Any], limit: int, key: Callable[[Any], int]) -> str | None:
    if len(rows) <= limit:
        return None
    return base64.urlsafe_b64encode(str(key(rows[limit - 1])).encode()).decode()


class EventService:
    """The operations behind ``webhooks.*`` and ``callbacks.*``."""

    def __init__(self, db: "Database", settings: "Settings", messages: "MessageService",
                 box: SecretBox, webhook_codec: HashCodec, outbox: Outbox,
                 engine: DeliveryEngine) -> None:
        self.db = db
        self.settings = settings
        self.messages = messages
        self.box = box
        self.codec = webhook_codec
        self.outbox = outbox
        self.engine = engine

    # -- shared ----------------------------------------------------------------------

    def _endpoint(self, url: Any, param: str, field: str | None = None) -> str:
        try:
            return check_endpoint(url, allow_private=self.settings.allow_private_endpoints)
        except UrlRefused as exc:
            raise errors.InvalidParams(str(exc), param=param, field=field) from None

    def _changed(self) -> None:
        """Writer thread: a subscription changed."""
        bump_version()
        self.outbox.invalidate()

    def _webhook_id(self, webhook_hash: Any) -> int:
        ident = self.codec.decode(webhook_hash) if isinstance(webhook_hash, str) else None
        if ident is None:
            raise errors.InvalidParams("not a webhook hash (8 letters or digits)",
                                       param="hash")
        return ident

    # -- webhooks --------------------------------------------------------------------

    def webhook_object(self, w: Webhook) -> dict[str, Any]:
        return {
            "hash": self.codec.encode(w.id), "type": w.type, "endpoint": w.endpoint,
            "options": {"hmac_secret": mask(w.secret), "hmac_algo": w.hmac_algo,
                        "format": w.format},
            "enabled": w.enabled, "disabled_reason": w.disabled_reason,
            "date_creation": fmt_ms(w.created_at), "date_update": fmt_ms(w.updated_at),
        }

    async def subscribe(self, principal: "Principal", event_type: str, endpoint: str,
                        options: Any) -> dict[str, Any]:
        url = self._endpoint(endpoint, "endpoint")
        opts = _options(options)
        secret = opts.get("hmac_secret")
        values = {"hmac_algo": opts.get("hmac_algo") or signing.DEFAULT_ALGORITHM,
                  "format": opts.get("format") or "JSON",
                  "secret": self.box.encrypt(secret) if secret else None}
        try:
            hook = await self.db.write(self._subscribe, principal.user_id, event_type, url,
                                       values)
        except peewee.IntegrityError:
            hook = None
        if hook is None:
            raise errors.Conflict(f"already subscribed to {event_type} at this endpoint",
                                  message="TYPE_ENDPOINT_DUPLICATE")
        return self.webhook_object(hook)

    def _subscribe(self, user_id: int, event_type: str, url: str,
                   values: dict[str, Any]) -> Webhook | None:
        if Webhook.select().where(Webhook.user == user_id, Webhook.type == event_type,
                                  Webhook.endpoint == url).exists():
            return None
        now = now_ms()
        hook = Webhook.create(user=user_id, type=event_type, endpoint=url, created_at=now,
                              updated_at=now, **values)
        self._changed()
        return hook

    async def unsubscribe(self, principal: "Principal", webhook_hash: str) -> bool:
        ident = self._webhook_id(webhook_hash)
        if not await self.db.write(self._unsubscribe, principal.user_id, ident):
            raise errors.NotFound(f"no webhook {webhook_hash}", param="hash")
        return True

    def _unsubscribe(self, user_id: int, ident: int) -> bool:
        if Webhook.delete().where(Webhook.id == ident, Webhook.user == user_id).execute():
            Delivery.update(status=DEAD, last_error="not sent: unsubscribed").where(
                Delivery.webhook_id == ident, Delivery.status == PENDING).execute()
            self._changed()
            return True
        return False

    def _load_webhook(self, user_id: int, ident: int) -> Webhook | None:
        return Webhook.get_or_none(Webhook.id == ident, Webhook.user == user_id)

    async def get_webhook(self, principal: "Principal", webhook_hash: str) -> dict[str, Any]:
        hook = await self.db.read(self._load_webhook, principal.user_id,
                                  self._webhook_id(webhook_hash))
        if hook is None:
            raise errors.NotFound(f"no webhook {webhook_hash}", param="hash")
        return self.webhook_object(hook)

    async def list_webhooks(self, principal: "Principal") -> list[dict[str, Any]]:
        hooks = await self.db.read(lambda: list(Webhook.select().where(
            Webhook.user == principal.user_id).order_by(Webhook.id)))
        return [self.webhook_object(h) for h in hooks]

    async def update_webhook(self, principal: "Principal", webhook_hash: str,
                             fields: dict[str, Any]) -> dict[str, Any]:
        ident = self._webhook_id(webhook_hash)
        changes: dict[str, Any] = {}
        if "endpoint" in fields:
            changes["endpoint"] = self._endpoint(fields["endpoint"], "fields",
                                                 "fields.endpoint")
        if "type" in fields:
            changes["type"] = fields["type"]
        if "enabled" in fields:
            changes["enabled"] = bool(fields["enabled"])
            if changes["enabled"]:
                changes["disabled_reason"] = ""
        opts = _options(fields.get("options"))
        if "hmac_secret" in opts:
            secret = opts["hmac_secret"]
            changes["secret"] = self.box.encrypt(secret) if secret else None
        for key in ("hmac_algo", "format"):
            if opts.get(key):
                changes[key] = opts[key]
        try:
            outcome = await self.db.write(self._update_webhook, principal.user_id, ident,
                                          changes)
        except peewee.IntegrityError:
            outcome = "duplicate"
        if outcome is None:
            raise errors.NotFound(f"no webhook {webhook_hash}", param="hash")
        if outcome == "duplicate":
            raise errors.Conflict("already subscribed to this type at this endpoint",
                                  message="TYPE_ENDPOINT_DUPLICATE")
        assert isinstance(outcome, Webhook)
        return self.webhook_object(outcome)

    def _update_webhook(self, user_id: int, ident: int,
                        changes: dict[str, Any]) -> Webhook | str | None:
        hook = self._load_webhook(user_id, ident)
        if hook is None:
            return None
        if "type" in changes or "endpoint" in changes:
            if Webhook.select().where(
                    Webhook.user == user_id, Webhook.id != ident,
                    Webhook.type == changes.get("type", hook.type),
                    Webhook.endpoint == changes.get("endpoint", hook.endpoint)).exists():
                return "duplicate"
        if changes:
            changes["updated_at"] = now_ms()
            Webhook.update(**changes).where(Webhook.id == ident).execute()
            self._changed()
        return self._load_webhook(user_id, ident)

    @staticmethod
    def event_types() -> list[str]:
        return list(formats.EVENT_TYPES)

    # -- callbacks -------------------------------------------------------------------

    def callback_object(self, c: Callback) -> dict[str, Any]:
        return {
            "id": c.id, "name": c.name, "event": c.event, "device_id": c.device_id,
            "filter_type": c.filter_type, "filter": c.text_filter, "method": c.method,
            "action": c.action, "secret": mask(c.secret), "enabled": c.enabled,
            "disabled_reason": c.disabled_reason, "date_creation": fmt_ms(c.created_at),
            "date_update": fmt_ms(c.updated_at),
        }

    def _callback_values(self, fields: dict[str, Any], param: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "name" in fields:
            values["name"] = fields["name"]
        if "event" in fields:
            event = normalize_event(fields["event"])
            if event is None:
                raise errors.InvalidParams("unknown event", param=param,
                                           field=f"{param}.event")
            values["event"] = event
        if "device_id" in fields:
            values["device_id"] = fields["device_id"]
        if "filter_type" in fields:
            values["filter_type"] = fields["filter_type"] or None
        if "filter" in fields:
            values["text_filter"] = fields["filter"] or ""
        if "method" in fields:
            values["method"] = fields["method"].upper()
        if "action" in fields:
            values["action"] = self._endpoint(fields["action"], param, f"{param}.action")
        if "secret" in fields:
            values["secret"] = self.box.encrypt(fields["secret"]) if fields["secret"] \
                else None
        return values

    @staticmethod
    def _check_filter(filter_type: str | None, value: str, param: str) -> None:
        try:
            TextFilter(filter_type, value)
        except InvalidFilter as exc:
            raise errors.InvalidParams(str(exc), param=param, field=f"{param}.filter") \
                from None

    async def create_callback(self, principal: "Principal",
                              fields: dict[str, Any]) -> dict[str, Any]:
        values = self._callback_values(fields, "callback")
        values.setdefault("method", "HTTP")
        values.setdefault("name", "")
        self._check_filter(values.get("filter_type"), values.get("text_filter", ""),
                           "callback")
        row = await self.db.write(self._create_callback, principal.user_id, values)
        return self.callback_object(row)

    def _create_callback(self, user_id: int, values: dict[str, Any]) -> Callback:
        now = now_ms()
        row = Callback.create(user=user_id, created_at=now, updated_at=now, **values)
        self._changed()
        return row

    def _load_callback(self, user_id: int, ident: int) -> Callback | None:
        return Callback.get_or_none(Callback.id == ident, Callback.user == user_id)

    async def get_callback(self, principal: "Principal", ident: int) -> dict[str, Any]:
        row = await self.db.read(self._load_callback, principal.user_id, ident)
        if row is None:
            raise errors.NotFound(f"no callback {ident}", param="id")
        return self.callback_object(row)

    async def update_callback(self, principal: "Principal", ident: int,
                              fields: dict[str, Any]) -> dict[str, Any]:
        values = self._callback_values(fields, "fields")
        if "enabled" in fields:
            values["enabled"] = bool(fields["enabled"])
            if values["enabled"]:
                values["disabled_reason"] = ""
        row = await self.db.write(self._update_callback, principal.user_id, ident, values)
        if row is None:
            raise errors.NotFound(f"no callback {ident}", param="id")
        return self.callback_object(row)

    def _update_callback(self, user_id: int, ident: int,
                         values: dict[str, Any]) -> Callback | None:
        row = self._load_callback(user_id, ident)
        if row is None:
            return None
        if "filter_type" in values or "text_filter" in values:
            self._check_filter(values.get("filter_type", row.filter_type),
                               values.get("text_filter", row.text_filter), "fields")
        if values:
            values["updated_at"] = now_ms()
            Callback.update(**values).where(Callback.id == ident).execute()
            self._changed()
        return self._load_callback(user_id, ident)

    async def delete_callback(self, principal: "Principal", ident: int) -> bool:
        if not await self.db.write(self._delete_callback, principal.user_id, ident):
            raise errors.NotFound(f"no callback {ident}", param="id")
        return True

    def _delete_callback(self, user_id: int, ident: int) -> bool:
        if Callback.delete().where(Callback.id == ident, Callback.user == user_id).execute():
            Delivery.update(status=DEAD, last_error="not sent: callback deleted").where(
                Delivery.callback_id == ident, Delivery.status == PENDING).execute()
            self._changed()
            return True
        return False

    async def search_callbacks(self, principal: "Principal",
                               filters: dict[str, Any]) -> dict[str, Any]:
        return await self.db.read(self._search_callbacks, principal.user_id, filters)

    def _search_callbacks(self, user_id: int, f: dict[str, Any]) -> dict[str, Any]:
        query = Callback.select().where(Callback.user == user_id)
        if f.get("name"):
            query = query.where(Callback.name == f["name"])
        if f.get("event"):
            query = query.where(Callback.event == (normalize_event(f["event"]) or ""))
        if f.get("device_id") is not None:
            query = query.where(Callback.device_id == f["device_id"])
        if f.get("enabled") is not None:
            query = query.where(Callback.enabled == bool(f["enabled"]))
        limit = int(f.get("limit") or 100)
        after = _cursor(f.get("cursor"), "filters")
        if after is not None:
            query = query.where(Callback.id > after)
        rows = list(query.order_by(Callback.id).limit(limit + 1))
        return {"items": [self.callback_object(r) for r in rows[:limit]],
                "next_cursor": _next_cursor(rows, limit, lambda r: r.id)}

    # -- deliveries ------------------------------------------------------------------

    async def get_deliveries(self, principal: "Principal",
                             filters: dict[str, Any]) -> dict[str, Any]:
        message_id = None
        if filters.get("sms_hash"):
            message_id = self.messages.codec.decode(filters["sms_hash"])
            if message_id is None:
                raise errors.InvalidParams("not an SMS hash", param="filters",
                                           field="filters.sms_hash")
        webhook_id = None
        if filters.get("hook_hash"):
            webhook_id = self.codec.decode(filters["hook_hash"])
            if webhook_id is None:
                raise errors.InvalidParams("not a webhook hash", param="filters",
                                           field="filters.hook_hash")
        return await self.db.read(self._deliveries, principal.user_id, filters,
                                  message_id, webhook_id)

    def _deliveries(self, user_id: int, f: dict[str, Any], message_id: int | None,
                    webhook_id: int | None) -> dict[str, Any]:
        query = (Delivery.select(Delivery, Event).join(Event)
                 .where(Delivery.user_id == user_id))
        if f.get("status"):
            query = query.where(Delivery.status == f["status"])
        if f.get("endpoint"):
            query = query.where(Delivery.endpoint == f["endpoint"])
        if f.get("type"):
            query = query.where(Event.type == f["type"])
        if f.get("event_id"):
            query = query.where(Event.public_id == f["event_id"])
        if message_id is not None:
            query = query.where(Event.message_id == message_id)
        if webhook_id is not None:
            query = query.where(Delivery.webhook_id == webhook_id)
        if f.get("callback_id") is not None:
            query = query.where(Delivery.callback_id == f["callback_id"])
        limit = int(f.get("limit") or 50)
        before = _cursor(f.get("cursor"), "filters")
        if before is not None:
            query = query.where(Delivery.id < before)
        rows = list(query.order_by(Delivery.id.desc()).limit(limit + 1))
        page = rows[:limit]
        attempts: dict[int, list[dict[str, Any]]] = {d.id: [] for d in page}
        if page:
            for a in (DeliveryAttempt.select().where(
                    DeliveryAttempt.delivery.in_(list(attempts)))
                      .order_by(DeliveryAttempt.id)):
                attempts[a.delivery_id].append({
                    "try": a.number, "date": iso_ms(a.at), "status_code": a.status_code,
                    "latency_ms": a.latency_ms, "error": a.error})
        return {"items": [self._delivery_object(d, attempts[d.id]) for d in page],
                "next_cursor": _next_cursor(rows, limit, lambda d: d.id)}

    def _delivery_object(self, d: Delivery, attempts: list[dict[str, Any]]) -> dict[str, Any]:
        event = d.event
        return {
            "event_id": event.public_id, "type": event.type, "kind": d.kind,
            "hook_hash": self.codec.encode(d.webhook_id) if d.webhook_id else None,
            "callback_id": d.callback_id, "endpoint": d.endpoint, "format": d.format,
            "sms_hash": self.messages.codec.encode(event.message_id)
            if event.message_id else None,
            "status": d.status, "tries": d.attempts, "date_event": iso_ms(event.at),
            "date_delivered": iso_ms(d.delivered_at) if d.delivered_at else None,
            "next_attempt_at": iso_ms(d.next_attempt_at) if d.status == PENDING else None,
            "last_status_code": d.last_status_code, "last_latency_ms": d.last_latency_ms,
            "last_error": d.last_error, "attempts": attempts,
        }

    async def redeliver(self, principal: "Principal", event_id: str) -> int:
        count = await self.db.write(self._redeliver, principal.user_id, event_id)
        if count is None:
            raise errors.NotFound(f"no event {event_id}", param="event_id")
        self.engine.wake()
        return count

    def _redeliver(self, user_id: int, public_id: str) -> int | None:
        event = Event.get_or_none(Event.public_id == public_id)
        if event is None:
            return None
        mine = Delivery.select(Delivery.id).where(Delivery.event == event.id,
                                                  Delivery.user_id == user_id)
        if not mine.exists():
            return None
        now = now_ms()
        max_age = int(self.settings.webhook_retry_max_age_hours * 3_600_000)
        return int(Delivery.update(
            status=PENDING, next_attempt_at=now, give_up_at=now + max_age,
            lease_owner=None, lease_until=None, last_error="redelivery requested").where(
            Delivery.event == event.id, Delivery.user_id == user_id,
            Delivery.status != IN_FLIGHT).execute())

    # -- test deliveries ---------------------------------------------------------------

    async def _send_test(self, *, endpoint: str, event_type: str, fmt: str,
                         secret: str | None, algo: str, hook_hash: str | None,
                         title: str, status: str | None = None) -> dict[str, Any]:
        if event_type == formats.DEVICE_STATUS:
            data: dict[str, Any] = formats.sample_device()
        else:
            data = formats.sample_sms(event_type)
            if status is not None:
                data["status"] = status
                data["status_code"] = st.SG24_CODES[status]
                data["result_info"] = st.RESULT_INFO[status]
        at = now_ms()
        job = Job(id=0, attempt=0, kind="test", endpoint=endpoint, format=fmt, chain="",
                  webhook_id=None, callback_id=None, give_up_at=at, event_type=event_type,
                  public_id=new_event_id(at), event_at=at, data=orjson.dumps(data).decode(),
                  context=None, hook_hash=hook_hash, title=title, secret=secret, algo=algo)
        body, headers = build_request(job, None)
        headers["X-Rpcgw-Test"] = "1"
        started = time.perf_counter()
        answer = await self.engine.sender.post(endpoint, body, headers)
        return {"ok": answer.ok, "status_code": answer.status,
                "latency_ms": answer.latency_ms or int((time.perf_counter() - started) * 1000),
                "error": answer.error, "event_id": job.public_id}

    async def test_webhook(self, principal: "Principal", endpoint: str, event_type: str,
                           options: Any) -> dict[str, Any]:
        url = self._endpoint(endpoint, "endpoint")
        opts = _options(options)
        return await self._send_test(
            endpoint=url, event_type=event_type, fmt=opts.get("format") or "JSON",
            secret=opts.get("hmac_secret") or None,
            algo=opts.get("hmac_algo") or signing.DEFAULT_ALGORITHM, hook_hash=None,
            title=event_type)

    async def test_callback(self, principal: "Principal", ident: int) -> dict[str, Any]:
        row = await self.db.read(self._load_callback, principal.user_id, ident)
        if row is None:
            raise errors.NotFound(f"no callback {ident}", param="id")
        status = {"sent": st.SENT, "delivered": st.DELIVERED, "failed": st.FAILED}.get(
            row.event)
        return await self._send_test(
            endpoint=self._endpoint(row.action, "id"),
            event_type=formats.SMS_MO if row.event == "received" else formats.SMS_MT_STATUS,
            fmt="FORM" if row.method == "FORM" else "JSON",
            secret=self.box.decrypt(row.secret) if row.secret else None,
            algo=signing.DEFAULT_ALGORITHM, hook_hash=None, title=row.name, status=status)


__all__ = ["EventService", "KIND_CALLBACK", "KIND_WEBHOOK"]
