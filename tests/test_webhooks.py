"""webhooks.*: subscriptions, CALLR's delivery shape and signatures, per-message
webhooks and status URLs, replies, formats and SSRF refusals, against real receivers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from rpcgw import errors
from rpcgw.app import GATEWAY
from rpcgw.events import signing
from rpcgw.events.models import Webhook
from rpcgw.events.http import PrivateAddressRefused, PublicOnlyResolver

from .conftest import BOB, basic
from .events_helpers import FAST, Receiver, advance, receive, wait_until


TO = "+33612345678"
SIM_NUMBER = "+33700000001"
HASH = re.compile(r"^[0-9A-Z]{8}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def expect_callr_signature(secret: str, body: bytes, algo: str = "sha256") -> str:
    """Independent of rpcgw: what a CALLR receiver computes (callr.md §3)."""
    return base64.b64encode(hmac.new(secret.encode(), body, algo).digest()).decode()


def expect_timestamped(secret: str, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                            hashlib.sha256).hexdigest()


async def start(gateway_factory: Any, database_url: str, **settings: Any) -> tuple[Any, Any]:
    app, rpc = await gateway_factory(database_url, **{**FAST, **settings})
    return app[GATEWAY], rpc


# -- subscriptions -----------------------------------------------------------------------

async def test_subscribe_get_update_unsubscribe(gateway_factory: Any,
                                                database_url: str) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    url = "http://127.0.0.1:9/hook"
    hook = await rpc.call("webhooks.subscribe", "sms.mo", url, None)
    assert HASH.match(hook["hash"])
    assert hook["type"] == "sms.mo" and hook["endpoint"] == url and hook["enabled"]
    assert hook["options"] == {"hmac_secret": None, "hmac_algo": "SHA256", "format": "JSON"}
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", hook["date_creation"])
    duplicate = await rpc.error("webhooks.subscribe", "sms.mo", url, [])
    assert (duplicate["code"], duplicate["message"]) == (
        errors.Conflict.code, "TYPE_ENDPOINT_DUPLICATE")
    other = await rpc.call("webhooks.subscribe", "sms.mt.status_update", url, {})
    assert [h["hash"] for h in await rpc.call("webhooks.get_list")] == [
        hook["hash"], other["hash"]]
    assert await rpc.call("webhooks.get", hook["hash"]) == hook
    updated = await rpc.call("webhooks.update", hook["hash"], {
        "options": {"hmac_secret": "s3cret", "format": "FORM"}})
    assert updated["options"] == {"hmac_secret": "********", "hmac_algo": "SHA256",
                                  "format": "FORM"}
    clash = await rpc.error("webhooks.update", other["hash"], {"type": "sms.mo"})
    assert clash["message"] == "TYPE_ENDPOINT_DUPLICATE"
    # Bob sees none of Alice's webhooks.
    assert (await rpc.error("webhooks.get", hook["hash"], auth=basic(*BOB)))["code"] == \
        errors.NotFound.code
    assert await rpc.call("webhooks.get_list", auth=basic(*BOB)) == []
    assert await rpc.call("webhooks.unsubscribe", hook["hash"]) is True
    assert (await rpc.error("webhooks.get", hook["hash"]))["code"] == errors.NotFound.code
    assert sorted(await rpc.call("webhooks.get_event_types")) == [
        "device.status_update", "sms.mo", "sms.mt.status_update"]


@pytest.mark.parametrize("params, field", [
    (["sms.unknown", "http://127.0.0.1:9/", None], "type"),
    (["sms.mo", "ftp://127.0.0.1/x", None], "endpoint"),
    (["sms.mo", "http://127.0.0.1:9/", {"hmac_algo": "SHA3"}], "options.hmac_algo"),
    (["sms.mo", "http://127.0.0.1:9/", {"format": "XML"}], "options.format"),
    (["sms.mo", "http://127.0.0.1:9/", {"secret": "x"}], "options"),
], ids=["type", "scheme", "algo", "format", "unknown-option"])
async def test_subscribe_refuses_bad_params(gateway_factory: Any, sqlite_url: str,
                                            params: list[Any], field: str) -> None:
    _, rpc = await start(gateway_factory, sqlite_url)
    error = await rpc.error("webhooks.subscribe", *params)
    assert error["code"] == errors.InvalidParams.code
    assert error["data"].get("field", error["data"].get("param")).startswith(field)


async def test_secrets_are_encrypted_and_never_returned(gateway_factory: Any,
                                                        database_url: str) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    hook = await rpc.call("webhooks.subscribe", "sms.mo", "http://127.0.0.1:9/h",
                          {"hmac_secret": "very-secret-value"})
    stored = await gw.db.read(lambda: Webhook.get().secret)
    assert "very-secret-value" not in stored
    listed = json.dumps(await rpc.call("webhooks.get_list"))
    assert "very-secret-value" not in listed and hook["options"]["hmac_secret"] == "********"


# -- deliveries in CALLR's shape -----------------------------------------------------------

async def test_status_updates_arrive_in_order_signed(gateway_factory: Any, database_url: str,
                                                     receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver: Receiver = await receivers()
    hook = await rpc.call("webhooks.subscribe", "sms.mt.status_update", receiver.url,
                          {"hmac_secret": "password"})
    sms_hash = await rpc.call("sms.send", "", TO, "hello", {"user_data": "u-1"})
    await advance(gw, sms_hash, "SENDING", "SENT", "DELIVERED")
    hits = await receiver.wait_delivered(3)
    bodies = [h.json() for h in hits]
    assert [b["data"]["status"] for b in bodies] == ["SENDING", "SENT", "DELIVERED"]
    for hit, body in zip(hits, bodies):
        assert set(body) == {"event_id", "event_at", "hook_hash", "try", "type", "data"}
        assert body["type"] == "sms.mt.status_update" and body["try"] == 0
        assert body["hook_hash"] == hook["hash"]
        assert ISO_MS.match(body["event_at"])
        assert hit.headers["Content-Type"] == "application/json"
        assert hit.headers["X-CALLR-EventId"] == body["event_id"]
        assert hit.headers["X-CALLR-HmacSignature"] == expect_callr_signature(
            "password", hit.body)
        assert hit.headers["X-Rpcgw-Signature"] == expect_timestamped(
            "password", hit.headers["X-Rpcgw-Timestamp"], hit.body)
        assert abs(int(hit.headers["X-Rpcgw-Timestamp"]) - time.time()) < 30
        assert body["data"]["hash"] == sms_hash and body["data"]["user_data"] == "u-1"
    assert len({b["event_id"] for b in bodies}) == 3
    # each event is the SMS object as it was at that change
    assert [len(b["data"]["status_history"]) for b in bodies] == [2, 3, 4]
    final = await rpc.call("sms.get", sms_hash)
    assert bodies[-1]["data"] == final | {"status_code": bodies[-1]["data"]["status_code"]}
    assert len(receiver.hits) == 3  # nothing for the creation (PENDING)


@pytest.mark.parametrize("algo", ["SHA256", "SHA1", "SHA512", "MD5"])
async def test_hmac_algorithms(gateway_factory: Any, sqlite_url: str, receivers: Any,
                               algo: str) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url)
    receiver = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url,
                   {"hmac_secret": "k€y", "hmac_algo": algo})
    await receive(gw, TO, SIM_NUMBER, "hi")
    (hit,) = await receiver.wait_delivered(1)
    assert hit.headers["X-CALLR-HmacSignature"] == expect_callr_signature(
        "k€y", hit.body, algo.lower())
    assert signing.verify("k€y", hit.headers, hit.body)
    assert not signing.verify("k€y", hit.headers, hit.body + b" ")


def test_callr_signature_vector() -> None:
    """callr.md §3: secret 'password' over this compact body (SAP bot-connector's test)."""
    body = b'{"data":{"from":"sender","to":"receiver","text":"a message"}}'
    assert signing.callr_signature("password", body) == \
        "sHMMGdzGhfW2urhzjUwY578gZct/lVFlAP3qrHTaUig="
    assert expect_callr_signature("password", body) == signing.callr_signature(
        "password", body)


def test_timestamped_signature_refuses_replays() -> None:
    body = b'{"x":1}'
    headers = signing.signature_headers("s", "SHA256", body, timestamp=1_700_000_000)
    assert signing.verify("s", headers, body, now=1_700_000_100)
    assert not signing.verify("s", headers, body, now=1_700_000_000 + 301)
    assert not signing.verify("other", headers, body, now=1_700_000_000)


async def test_reply_reaches_global_and_per_message_webhooks(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    global_hook, per_message = await receivers(), await receivers()
    hook = await rpc.call("webhooks.subscribe", "sms.mo", global_hook.url, None)
    sms_hash = await rpc.call("sms.send", "", TO, "Are you coming?",
                              {"webhook": {"endpoint": per_message.url}})
    await advance(gw, sms_hash, "SENDING", "SENT", device_id=3, sim=1)
    reply_hash = await receive(gw, TO, SIM_NUMBER, "Yes!", device_id=3, sim=1)
    (mo,) = await global_hook.wait_delivered(1)
    hits = await per_message.wait_delivered(3)
    # the per-message endpoint gets the status updates, then the reply, in order
    assert [h.json()["type"] for h in hits] == [
        "sms.mt.status_update", "sms.mt.status_update", "sms.mo"]
    assert all(h.json()["hook_hash"] is None for h in hits)
    for body in (mo.json(), hits[2].json()):
        assert body["data"]["hash"] == reply_hash
        assert body["data"]["in_reply_to"] == sms_hash
        assert body["data"]["text"] == "Yes!" and body["data"]["from"] == TO
    assert mo.json()["hook_hash"] == hook["hash"]
    assert mo.json()["event_id"] == hits[2].json()["event_id"]  # one event, two endpoints
    # a message from someone else is not a reply: only the global webhook hears it
    await receive(gw, "+33699999999", SIM_NUMBER, "hello", device_id=3, sim=1)
    await global_hook.wait_delivered(2)
    assert global_hook.delivered[1].json()["data"]["in_reply_to"] is None
    assert len(per_message.hits) == 3


async def test_per_message_webhook_with_options_is_signed_and_its_secret_hidden(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    """CALLR: "When using a dynamic Webhook, you only need to set endpoint and
    optionally options" — the options of webhooks.subscribe."""
    gw, rpc = await start(gateway_factory, database_url)
    signed, form = await receivers(), await receivers()
    sms_hash = await rpc.call("sms.send", "", TO, "signed, please", {"webhook": {
        "endpoint": signed.url, "options": {"hmac_secret": "dyn-s3cret", "hmac_algo": "SHA1"}}})
    other = await rpc.call("sms.send", "", TO, "as a form", {"webhook": {
        "endpoint": form.url, "options": {"format": "FORM"}}})
    await advance(gw, sms_hash, "SENDING", "SENT")
    await advance(gw, other, "SENDING")
    hits = await signed.wait_delivered(2)
    for hit in hits:
        assert hit.json()["hook_hash"] is None
        assert hit.headers["X-CALLR-HmacSignature"] == expect_callr_signature(
            "dyn-s3cret", hit.body, "sha1")
        assert signing.verify("dyn-s3cret", hit.headers, hit.body)
    (hit,) = await form.wait_delivered(1)
    assert hit.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "X-CALLR-HmacSignature" not in hit.headers  # no secret, no signature
    # The secret is stored encrypted and never shown.
    shown = await rpc.call("sms.get", sms_hash)
    assert shown["options"]["webhook"] == {"endpoint": signed.url, "options": {
        "hmac_secret": "********", "hmac_algo": "SHA1"}}
    assert hits[-1].json()["data"]["options"]["webhook"]["options"]["hmac_secret"] == \
        "********"
    stored = await gw.db.read(lambda: [r[0] for r in gw.db.pw.execute_sql(
        "SELECT options FROM message")])
    assert all("dyn-s3cret" not in (row or "") for row in stored)
    error = await rpc.error("sms.send", "", TO, "x", {"webhook": {
        "endpoint": signed.url, "options": {"hmac_algo": "SHA3"}}})
    assert error["data"]["field"] == "options.webhook.options.hmac_algo"


async def test_status_url_gets_seed_002_form(gateway_factory: Any, database_url: str,
                                             receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    sms_hash = await rpc.call("sms.send", "", TO, "hi", {
        "status_url": receiver.url, "custom_ticket": "T-42"})
    await advance(gw, sms_hash, "SENDING", "SENT", "FAILED", error="absent subscriber")
    hits = await receiver.wait_delivered(3)
    forms = [{k: v[0] for k, v in parse_qs(h.body.decode(), keep_blank_values=True).items()}
             for h in hits]
    assert all(h.headers["Content-Type"] == "application/x-www-form-urlencoded" for h in hits)
    assert [f["status"] for f in forms] == ["SENDING", "SENT", "FAILED"]
    assert {(f["sendTo"], f["ticket"], f["custom_ticket"]) for f in forms} == {
        (TO, sms_hash, "T-42")}
    assert forms[-1]["code"] == "8"  # SmsGateway24: not delivered


async def test_form_format_for_incoming(gateway_factory: Any, sqlite_url: str,
                                        receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url)
    receiver = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, {"format": "FORM"})
    sms_hash = await receive(gw, TO, SIM_NUMBER, "join  the club")
    (hit,) = await receiver.wait_delivered(1)
    form = {k: v[0] for k, v in parse_qs(hit.body.decode(), keep_blank_values=True).items()}
    assert {"title", "code", "shortcode", "message", "phone", "carrier", "keyword", "group",
            "custom_ticket", "default_keyword"} <= set(form)
    assert (form["message"], form["phone"], form["shortcode"], form["keyword"],
            form["code"]) == ("join  the club", TO, SIM_NUMBER, "JOIN", sms_hash)
    assert form["event"] == "sms.mo" and form["event_id"] == hit.headers["X-CALLR-EventId"]


async def test_smsmanager_format(gateway_factory: Any, database_url: str,
                                 receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    sent, incoming = await receivers(), await receivers()
    await rpc.call("webhooks.subscribe", "sms.mt.status_update", sent.url,
                   {"format": "SMSMANAGER"})
    await rpc.call("webhooks.subscribe", "sms.mo", incoming.url, {"format": "SMSMANAGER"})
    sms_hash = await rpc.call("sms.send", "", TO, "Your order shipped",
                              {"idempotency_key": "req-7"})
    await advance(gw, sms_hash, "SENDING", "SENT", "DELIVERED")
    hits = await sent.wait_delivered(3)
    (last,) = hits[-1].json()
    assert last["request_id"] == "req-7" and last["message_id"] == sms_hash
    assert (last["gateway"], last["type"], last["result"]) == ("sms", "outgoing", "delivered")
    assert last["result_info"] == "[0] Delivered" and last["to"] == {"phone_number": TO}
    assert isinstance(last["timestamp"], int)
    assert [h.json()[0]["result"] for h in hits] == ["sending", "sent", "delivered"]
    await receive(gw, TO, SIM_NUMBER, "Thank you!")
    await receive(gw, "+420777123456", SIM_NUMBER, "Hello, I have a question.")
    reply, other = [h.json()[0] for h in await incoming.wait_delivered(2)]
    assert (reply["request_id"], reply["message_id"]) == ("req-7", sms_hash)
    assert (reply["type"], reply["sender"], reply["recipient"], reply["body"]) == (
        "incoming", TO, SIM_NUMBER, "Thank you!")
    assert "request_id" not in other and other["sender"] == "+420777123456"


async def test_webhooks_test_button(gateway_factory: Any, sqlite_url: str,
                                    receivers: Any) -> None:
    _, rpc = await start(gateway_factory, sqlite_url)
    ok = await receivers()
    gone = await receivers(lambda n: 404)
    result = await rpc.call("webhooks.test", ok.url, "sms.mo", {"hmac_secret": "s"})
    assert result["ok"] and result["status_code"] == 200 and result["latency_ms"] >= 0
    (hit,) = ok.hits
    assert hit.json()["type"] == "sms.mo" and hit.headers["X-Rpcgw-Test"] == "1"
    assert hit.headers["X-CALLR-HmacSignature"] == expect_callr_signature("s", hit.body)
    failed = await rpc.call("webhooks.test", gone.url, "sms.mt.status_update")
    assert not failed["ok"] and failed["status_code"] == 404


# -- SSRF ---------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.1.2.3/hook",
    "http://192.168.0.10/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook",
], ids=["loopback", "localhost", "rfc1918-10", "rfc1918-192", "metadata", "ipv6-loopback",
        "v4-mapped", "unspecified"])
async def test_private_endpoints_are_refused(gateway_factory: Any, sqlite_url: str,
                                             url: str) -> None:
    _, rpc = await start(gateway_factory, sqlite_url, allow_private_endpoints=False)
    for method, params in (("webhooks.subscribe", ["sms.mo", url, None]),
                           ("webhooks.test", [url, "sms.mo"]),
                           ("callbacks.create", [{"event": "received", "action": url}]),
                           ("sms.send", ["", TO, "x", {"webhook": {"endpoint": url}}])):
        error = await rpc.error(method, *params)
        assert error["code"] == errors.InvalidParams.code, (method, error)
        assert "private" in error["data"]["reason"] or "loopback" in error["data"]["reason"]


def _resolves_privately(name: str) -> bool:
    try:
        infos = socket.getaddrinfo(name, 80, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    from rpcgw.urls import is_private_address
    return bool(infos) and all(is_private_address(i[4][0]) for i in infos)


async def test_names_resolving_to_private_addresses_are_refused_when_connecting(
        gateway_factory: Any, sqlite_url: str, receivers: Any) -> None:
    """DNS rebinding: the name passes the static check; the connection is refused."""
    # The machine's own name resolves to a loopback address on Debian (/etc/hosts) and
    # on the CI machines: a name the static check cannot judge, refused once resolved.
    name = socket.gethostname()
    assert _resolves_privately(name), f"this test needs {name} to resolve to 127.x (/etc/hosts)"
    gw, rpc = await start(gateway_factory, sqlite_url, allow_private_endpoints=False)
    receiver = await receivers()
    assert receiver.server is not None
    url = f"http://{name}:{receiver.server.port}/hook"
    await rpc.call("webhooks.subscribe", "sms.mo", url, None)
    result = await rpc.call("webhooks.test", url, "sms.mo")
    assert not result["ok"] and result["error"].startswith("refused")
    await receive(gw, TO, SIM_NUMBER, "hi")

    async def attempted() -> dict[str, Any]:
        page = await rpc.call("webhooks.get_deliveries", {"endpoint": url})
        return page["items"][0] if page["items"] and page["items"][0]["attempts"] else {}

    delivery = await wait_until(attempted)
    assert delivery["attempts"][0]["error"].startswith("refused")
    assert receiver.hits == []


async def test_public_only_resolver() -> None:
    resolver = PublicOnlyResolver(allow_private=False)
    try:
        with pytest.raises(PrivateAddressRefused):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
    permissive = PublicOnlyResolver(allow_private=True)
    try:
        assert (await permissive.resolve("localhost", 80))[0]["host"] in ("127.0.0.1", "::1")
    finally:
        await permissive.close()


async def test_unavailable_without_the_component(gateway_factory: Any, sqlite_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from rpcgw import gateway
    monkeypatch.setattr(gateway, "FEATURES",
                        tuple(f for f in gateway.FEATURES if f != "rpcgw.events"))
    _, rpc = await start(gateway_factory, sqlite_url)
    error = await rpc.error("webhooks.get_list")
    assert (error["code"], error["message"]) == (errors.Unavailable.code, "UNAVAILABLE")


async def test_the_documented_receiver_accepts_only_signed_deliveries(
        gateway_factory: Any, sqlite_url: str, tmp_path: Any) -> None:
    """docs/events.md's ten-line receiver, run as written, against real deliveries."""
    import asyncio
    import sys
    from pathlib import Path

    from .conftest import free_port

    doc = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    code = re.search(r"```python\n(.*?)```", doc, re.S)
    assert code is not None and len(code.group(1).strip().splitlines()) == 10
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(code.group(1).replace("port=8000", f"port={port}"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    try:
        _, rpc = await start(gateway_factory, sqlite_url)
        url = f"http://127.0.0.1:{port}/hook"

        async def listening() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await wait_until(listening)
        signed = await rpc.call("webhooks.test", url, "sms.mo", {"hmac_secret": "my-secret"})
        forged = await rpc.call("webhooks.test", url, "sms.mo", {"hmac_secret": "guess"})
        unsigned = await rpc.call("webhooks.test", url, "sms.mo")
        assert (signed["status_code"], forged["status_code"], unsigned["status_code"]) == (
            200, 401, 401)
    finally:
        process.terminate()
        await process.wait()
