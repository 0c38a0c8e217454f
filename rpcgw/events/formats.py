"""What a delivery looks like on the wire, per format.

``JSON`` (default, CALLR's shape, callr.md §3)::

    POST  Content-Type: application/json
    {"event_id": "...", "event_at": "2016-05-04T12:29:32.340Z", "hook_hash": "IAYHJ6F3",
     "try": 0, "type": "sms.mo", "data": {...the SMS object of sms.get...}}

``FORM`` (seed 002, ``application/x-www-form-urlencoded``): for ``sms.mo`` the keyword
callback fields ``title, code, shortcode, message, phone, carrier, keyword, group,
custom_ticket, default_keyword``; for ``sms.mt.status_update`` the status URL fields
``code, sendTo, status, ticket, custom_ticket``; for ``device.status_update`` the fields
of the device object.  Every form also carries ``event_id``, ``event``, ``try`` and
``hash``.

``SMSMANAGER`` (seed 003): a JSON array of one object, ``sentMessage`` for status
updates, ``incomingReplyMessage`` for a reply (with the ``request_id``/``message_id`` of
the message it answers) and ``incomingMessage`` otherwise.

``STATUS`` is the form a message's ``status_url`` receives (seed 002's Status URL).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from .. import status as st
from ..timefmt import iso_ms, parse_datetime
from .filters import keyword_of

FORMATS = ("JSON", "FORM", "SMSMANAGER")
STATUS = "STATUS"

SMS_MO = "sms.mo"
SMS_MT_STATUS = "sms.mt.status_update"
DEVICE_STATUS = "device.status_update"
EVENT_TYPES = {
    SMS_MO: "an incoming message (a reply carries in_reply_to)",
    SMS_MT_STATUS: "every status change of an outgoing message",
    DEVICE_STATUS: "a SIM or modem goes online, offline, disabled or reports a SIM error",
}

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"

#: SMS Manager ``result`` of each status.
SMSMANAGER_RESULT = {
    st.PENDING: "pending", st.SENDING: "sending", st.SENT: "sent",
    st.DELIVERED: "delivered", st.FAILED: "undelivered", st.ERROR: "rejected",
    st.EXPIRED: "expired", st.CANCELLED: "cancelled", st.CREATED: "pending",
}


def render(fmt: str, *, event_type: str, event_id: str, event_at: int,
           hook_hash: str | None, attempt: int, data: dict[str, Any],
           context: dict[str, Any] | None, title: str = "") -> tuple[bytes, str]:
    """The body and its content type."""
    if fmt == "FORM":
        return urlencode(form_fields(event_type, data, context, title=title) | {
            "event_id": event_id, "event": event_type, "try": str(attempt)}).encode(), \
            FORM_TYPE
    if fmt == STATUS:
        return urlencode(status_fields(data) | {"event_id": event_id}).encode(), FORM_TYPE
    if fmt == "SMSMANAGER":
        return orjson.dumps([smsmanager_object(event_type, data, context)]), JSON_TYPE
    return orjson.dumps({"event_id": event_id, "event_at": iso_ms(event_at),
                         "hook_hash": hook_hash, "try": attempt, "type": event_type,
                         "data": data}), JSON_TYPE


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def status_fields(sms: dict[str, Any]) -> dict[str, str]:
    """Seed 002's Status URL: code, sendTo, status, ticket, custom_ticket."""
    return {"code": _text(sms.get("status_code")), "sendTo": _text(sms.get("to")),
            "status": _text(sms.get("status")), "ticket": _text(sms.get("hash")),
            "custom_ticket": _text(sms.get("custom_ticket"))}


def form_fields(event_type: str, data: dict[str, Any], context: dict[str, Any] | None,
                *, title: str) -> dict[str, str]:
    if event_type == SMS_MO:
        reply_to = (context or {}).get("reply_to") or {}
        return {
            "title": title, "code": _text(data.get("hash")),
            "shortcode": _text(data.get("to")), "message": _text(data.get("text")),
            "phone": _text(data.get("from")), "carrier": _text((context or {}).get("carrier")),
            "keyword": keyword_of(_text(data.get("text"))), "group": title,
            "custom_ticket": _text(reply_to.get("custom_ticket")),
            "default_keyword": "", "in_reply_to": _text(data.get("in_reply_to")),
            "hash": _text(data.get("hash")),
        }
    if event_type == SMS_MT_STATUS:
        return status_fields(data) | {"hash": _text(data.get("hash"))}
    return {key: _text(value) for key, value in data.items()}


def _request_id(sms: dict[str, Any]) -> str:
    options = sms.get("options")
    key = options.get("idempotency_key") if isinstance(options, dict) else None
    return _text(key or sms.get("hash"))


def _unix(date: str) -> int:
    try:
        return parse_datetime(date) // 1000
    except ValueError:
        return 0


def smsmanager_object(event_type: str, data: dict[str, Any],
                      context: dict[str, Any] | None) -> dict[str, Any]:
    if event_type == SMS_MT_STATUS:
        return {
            "request_id": _request_id(data), "message_id": data.get("hash"),
            "gateway": "sms", "timestamp": _unix(data.get("date_update") or ""),
            "payload": {"text": data.get("text"), "from": data.get("from"),
                        "user_data": data.get("user_data")},
            "type": "outgoing", "to": {"phone_number": data.get("to")},
            "result": SMSMANAGER_RESULT.get(_text(data.get("status")), "pending"),
            "result_info": data.get("result_info"),
        }
    if event_type == SMS_MO:
        received = _unix(data.get("date_received") or "") or _unix(
            data.get("date_creation") or "")
        base = {"gateway": "sms", "timestamp": received, "type": "incoming",
                "sender": data.get("from"), "recipient": data.get("to"),
                "body": data.get("text"), "message_hash": data.get("hash")}
        reply_to = (context or {}).get("reply_to")
        if reply_to:
            return {"request_id": reply_to.get("request_id"),
                    "message_id": reply_to.get("hash"),
                    "payload": {"text": reply_to.get("text")}} | base
        return base
    return {"type": event_type, "timestamp": _unix(data.get("date_update") or ""),
            "payload": data}


def sample_sms(event_type: str) -> dict[str, Any]:
    """A made-up SMS object for test deliveries (webhooks.test, callbacks.test)."""
    incoming = event_type == SMS_MO
    return {
        "type": "IN" if incoming else "OUT", "hash": "TEST0000",
        "from": "+33612345678" if incoming else "", "to": "" if incoming else "+33612345678",
        "text": "TEST this is a test event from rpcgw", "options": None,
        "encoding": "GSM", "parts": 1, "user_data": "", "nature": "ALERTING",
        "status": st.RECEIVED if incoming else st.DELIVERED, "status_error": "",
        "date_creation": "2024-01-01 00:00:00", "date_update": "2024-01-01 00:00:05",
        "date_sent": "0000-00-00 00:00:00" if incoming else "2024-01-01 00:00:01",
        "date_received": "2024-01-01 00:00:00" if incoming else "0000-00-00 00:00:00",
        "status_history": [], "device_id": 1, "sim": 0, "priority": 0, "send_at": None,
        "status_code": st.SG24_CODES[st.RECEIVED if incoming else st.DELIVERED],
        "result_info": st.RESULT_INFO[st.RECEIVED if incoming else st.DELIVERED],
        "customer_id": None, "custom_ticket": None, "campaign_id": None,
        "in_reply_to": None, "test": True,
    }


def sample_device() -> dict[str, Any]:
    return {"device_id": 1, "device_name": "test", "sim": 0, "number": "",
            "old_state": "online", "new_state": "offline", "detail": "test event",
            "date_update": "2024-01-01 00:00:00", "test": True}
