"""callbacks.*: SMS Gateway Me's callbacks, filtered by event, device and text."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from rpcgw import errors
from rpcgw.app import GATEWAY

from .conftest import BOB, basic
from .events_helpers import FAST, advance, receive, settle


TO = "+33612345678"
SIM_NUMBER = "+33700000001"


async def start(gateway_factory: Any, database_url: str, **settings: Any) -> tuple[Any, Any]:
    app, rpc = await gateway_factory(database_url, **{**FAST, **settings})
    return app[GATEWAY], rpc


async def test_create_get_update_search_delete(gateway_factory: Any,
                                               database_url: str) -> None:
    _, rpc = await start(gateway_factory, database_url)
    # seed 000's request, as SMS Gateway Me's docs show it
    created = await rpc.call("callbacks.create", {
        "name": "HTTP Callback", "event": "received", "device_id": 1,
        "filter_type": "contains", "filter": "stop", "method": "http",
        "action": "http://127.0.0.1:9/sms-gateway-me-hook", "secret": "super-secret"})
    assert isinstance(created["id"], int)
    assert {k: created[k] for k in ("name", "event", "device_id", "filter_type", "filter",
                                    "method", "action", "secret", "enabled")} == {
        "name": "HTTP Callback", "event": "received", "device_id": 1,
        "filter_type": "contains", "filter": "stop", "method": "HTTP",
        "action": "http://127.0.0.1:9/sms-gateway-me-hook", "secret": "********",
        "enabled": True}
    # the PHP SDK's spelling
    sdk = await rpc.call("callbacks.create", {
        "name": "Test Callback", "event": "MESSAGE_RECEIVED", "device_id": 2,
        "filter_type": "contains", "filter": "hello", "method": "HTTP",
        "action": "http://127.0.0.1:9/other", "secret": "SsshhhhNotASecret"})
    assert sdk["event"] == "received"
    third = await rpc.call("callbacks.create", {"name": "Failures", "event": "failed",
                                                "action": "http://127.0.0.1:9/f"})
    assert third["filter_type"] is None and third["device_id"] is None
    assert await rpc.call("callbacks.get", created["id"]) == created
    updated = await rpc.call("callbacks.update", created["id"], {"filter": "STOP",
                                                                 "secret": None})
    assert updated["filter"] == "STOP" and updated["secret"] is None
    assert updated["name"] == "HTTP Callback"
    by_event = await rpc.call("callbacks.search", {"event": "MESSAGE_RECEIVED"})
    assert [c["id"] for c in by_event["items"]] == [created["id"], sdk["id"]]
    by_device = await rpc.call("callbacks.search", {"device_id": 2})
    assert [c["id"] for c in by_device["items"]] == [sdk["id"]]
    by_name = await rpc.call("callbacks.search", {"name": "Failures"})
    assert [c["id"] for c in by_name["items"]] == [third["id"]]
    page = await rpc.call("callbacks.search", {"limit": 2})
    rest = await rpc.call("callbacks.search", {"limit": 2, "cursor": page["next_cursor"]})
    assert [c["id"] for c in page["items"] + rest["items"]] == [
        created["id"], sdk["id"], third["id"]]
    assert rest["next_cursor"] is None
    assert (await rpc.error("callbacks.get", created["id"], auth=basic(*BOB)))["code"] == \
        errors.NotFound.code
    assert (await rpc.call("callbacks.search", None, auth=basic(*BOB)))["items"] == []
    assert await rpc.call("callbacks.delete", created["id"]) is True
    assert (await rpc.error("callbacks.delete", created["id"]))["code"] == \
        errors.NotFound.code


@pytest.mark.parametrize("fields, field", [
    ({"event": "received", "action": "http://127.0.0.1:9/", "filter_type": "regex",
      "filter": "(unclosed"}, "callback.filter"),
    ({"event": "received", "action": "http://127.0.0.1:9/", "filter_type": "keyword",
      "filter": " "}, "callback.filter"),
    ({"event": "bounced", "action": "http://127.0.0.1:9/"}, "callback.event"),
    ({"event": "received", "action": "mailto:me@example.com"}, "callback.action"),
    ({"event": "received"}, "callback"),
    ({"event": "received", "action": "http://127.0.0.1:9/", "method": "SOAP"},
     "callback.method"),
], ids=["bad-regex", "empty-keyword", "event", "action-scheme", "no-action", "method"])
async def test_create_refuses_bad_fields(gateway_factory: Any, sqlite_url: str,
                                         fields: dict[str, Any], field: str) -> None:
    _, rpc = await start(gateway_factory, sqlite_url)
    error = await rpc.error("callbacks.create", fields)
    assert error["code"] == errors.InvalidParams.code
    assert error["data"].get("field", error["data"]["param"]).startswith(field)


TEXTS = ["STOP please", "please stop", "Stop", "stopwatch for sale", "Hello there",
         "order 1234 ready"]


@pytest.mark.parametrize("filter_type, value, expected", [
    (None, None, TEXTS),
    ("contains", "stop", ["STOP please", "please stop", "Stop", "stopwatch for sale"]),
    ("equals", "stop", ["Stop"]),
    ("starts_with", "stop", ["STOP please", "Stop", "stopwatch for sale"]),
    ("ends_with", "STOP", ["please stop", "Stop"]),
    ("regex", r"\border \d+", ["order 1234 ready"]),
    ("keyword", "stop", ["STOP please", "Stop"]),
], ids=["none", "contains", "equals", "starts_with", "ends_with", "regex", "keyword"])
async def test_filters(gateway_factory: Any, database_url: str, receivers: Any,
                       filter_type: str | None, value: str | None,
                       expected: list[str]) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    await rpc.call("callbacks.create", {"name": "f", "event": "received",
                                        "filter_type": filter_type, "filter": value,
                                        "action": receiver.url})
    for text in TEXTS:
        await receive(gw, TO, SIM_NUMBER, text)
    await settle(gw)
    assert sorted(h.json()["data"]["text"] for h in receiver.delivered) == sorted(expected)


async def test_catastrophic_regex_is_bounded(gateway_factory: Any, sqlite_url: str,
                                             receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url)
    receiver = await receivers()
    await rpc.call("callbacks.create", {"event": "received", "filter_type": "regex",
                                        "filter": "(x+x+)+y", "action": receiver.url})
    started = time.monotonic()
    await receive(gw, TO, SIM_NUMBER, "x" * 5000)  # exponential backtracking without a limit
    assert time.monotonic() - started < 1.0
    await receive(gw, TO, SIM_NUMBER, "xxy")
    await settle(gw)
    assert [h.json()["data"]["text"] for h in receiver.delivered] == ["xxy"]


async def test_device_filter(gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    await rpc.call("callbacks.create", {"event": "received", "device_id": 2,
                                        "action": receiver.url})
    for device in (1, 2, 3, 2):
        await receive(gw, TO, SIM_NUMBER, f"via {device}", device_id=device)
    await settle(gw)
    assert [h.json()["data"]["text"] for h in receiver.delivered] == ["via 2", "via 2"]


async def test_sent_delivered_failed_events(gateway_factory: Any, database_url: str,
                                            receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    hooks = {}
    for event in ("sent", "delivered", "failed"):
        hooks[event] = await receivers()
        await rpc.call("callbacks.create", {"event": event, "action": hooks[event].url,
                                            "device_id": 4})
    ok = await rpc.call("sms.send", "", TO, "ok", None)
    bad = await rpc.call("sms.send", "", TO, "bad", None)
    elsewhere = await rpc.call("sms.send", "", TO, "other modem", None)
    await advance(gw, ok, "SENDING", "SENT", "DELIVERED", device_id=4)
    await advance(gw, bad, "SENDING", "ERROR", device_id=4, error="no network")
    await advance(gw, elsewhere, "SENDING", "SENT", "DELIVERED", device_id=5)
    await settle(gw)
    got = {e: [(h.json()["data"]["hash"], h.json()["data"]["status"]) for h in r.delivered]
           for e, r in hooks.items()}
    assert got == {"sent": [(ok, "SENT")], "delivered": [(ok, "DELIVERED")],
                   "failed": [(bad, "ERROR")]}
    (hit,) = hooks["sent"].delivered
    assert hit.json()["hook_hash"] is None and hit.json()["type"] == "sms.mt.status_update"


async def test_form_method_and_secret(gateway_factory: Any, database_url: str,
                                      receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    await rpc.call("callbacks.create", {"name": "Keywords", "event": "received",
                                        "filter_type": "keyword", "filter": "JOIN",
                                        "method": "FORM", "action": receiver.url,
                                        "secret": "cb-secret"})
    sms_hash = await receive(gw, TO, SIM_NUMBER, "join now")
    (hit,) = await receiver.wait_delivered(1)
    form = {k: v[0] for k, v in parse_qs(hit.body.decode(), keep_blank_values=True).items()}
    assert (form["title"], form["group"], form["keyword"], form["message"], form["phone"],
            form["code"]) == ("Keywords", "Keywords", "JOIN", "join now", TO, sms_hash)
    timestamp = hit.headers["X-Rpcgw-Timestamp"]
    assert hit.headers["X-Rpcgw-Signature"] == "v1=" + hmac.new(
        b"cb-secret", timestamp.encode() + b"." + hit.body, hashlib.sha256).hexdigest()


async def test_callbacks_test_button(gateway_factory: Any, sqlite_url: str,
                                     receivers: Any) -> None:
    _, rpc = await start(gateway_factory, sqlite_url)
    receiver = await receivers(lambda n: 503)
    callback = await rpc.call("callbacks.create", {"event": "delivered", "method": "FORM",
                                                   "action": receiver.url})
    result = await rpc.call("callbacks.test", callback["id"])
    assert not result["ok"] and result["status_code"] == 503
    assert isinstance(result["latency_ms"], int)
    (hit,) = receiver.hits
    form = parse_qs(hit.body.decode())
    assert form["status"] == ["DELIVERED"] and form["event"] == ["sms.mt.status_update"]
    assert (await rpc.error("callbacks.test", 999))["code"] == errors.NotFound.code
