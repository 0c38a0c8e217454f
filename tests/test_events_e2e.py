"""Event delivery driven by real traffic: the modem pool sending through simulated modems
on real ptys, replies injected into the virtual network, real HTTP receivers on loopback.

The other event tests produce status changes with ``events_helpers.advance`` to control
each step; these prove the same deliveries come out of the real pool and modems."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from .events_helpers import FAST
from .pool_helpers import ADMIN_AUTH, eventually, start_pool_gateway

TO = "+447700900123"


async def test_status_updates_reply_and_formats_through_the_modems(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2, **FAST)
    global_hook = await receivers()
    per_message = await receivers()
    status_url = await receivers()
    mo_hook = await receivers()
    manager = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mt.status_update", global_hook.url,
                   {"hmac_secret": "s3cret"})
    await rpc.call("webhooks.subscribe", "sms.mo", mo_hook.url, None)
    await rpc.call("webhooks.subscribe", "sms.mo", manager.url, {"format": "SMSMANAGER"})

    sms_hash = await rpc.call("sms.send", "", TO, "Your order shipped. Reply to chat.", {
        "webhook": {"endpoint": per_message.url}, "status_url": status_url.url,
        "custom_ticket": "T-42"})

    # every status change the pool makes, in order, to the global and the per-message hook
    for receiver in (global_hook, per_message):
        hits = await receiver.wait_delivered(3, timeout=30)
        bodies = [h.json() for h in hits]
        assert [b["data"]["status"] for b in bodies] == ["SENDING", "SENT", "DELIVERED"]
        assert all(b["type"] == "sms.mt.status_update" and b["data"]["hash"] == sms_hash
                   for b in bodies)
    assert global_hook.delivered[0].json()["hook_hash"] is not None
    assert per_message.delivered[0].json()["hook_hash"] is None
    assert "X-CALLR-HmacSignature" in global_hook.delivered[0].headers
    forms = [parse_qs(h.body.decode()) for h in await status_url.wait_delivered(3, 30)]
    assert [f["status"][0] for f in forms][-1] == "DELIVERED"
    assert all(f["ticket"][0] == sms_hash and f["custom_ticket"][0] == "T-42"
               and f["sendTo"][0] == TO for f in forms)

    # the recipient answers the SIM that wrote to it: a reply, linked to the message
    sim_number = (await rpc.call("sms.get", sms_hash))["from"]
    await rpc.call("simulator.inject", TO, sim_number, "Thanks! When will it arrive?",
                   auth=ADMIN_AUTH)
    (mo,) = [h.json() for h in await mo_hook.wait_delivered(1, timeout=30)]
    assert mo["type"] == "sms.mo" and mo["data"]["in_reply_to"] == sms_hash
    assert mo["data"]["text"] == "Thanks! When will it arrive?"
    assert mo["data"]["from"] == TO and mo["data"]["to"] == sim_number

    async def reply_on_per_message_hook() -> list[Any]:
        return [h.json() for h in per_message.delivered if h.json()["type"] == "sms.mo"]
    (reply,) = await eventually(reply_on_per_message_hook, timeout=30)
    assert reply["data"]["in_reply_to"] == sms_hash

    (shaped,) = [h.json() for h in await manager.wait_delivered(1, timeout=30)]
    item = shaped[0] if isinstance(shaped, list) else shaped
    assert item["type"] == "incoming" and item["body"] == "Thanks! When will it arrive?"
    assert item["sender"].lstrip("+") == TO.lstrip("+")
    assert item["message_id"]  # incomingReplyMessage names the message it answers


async def test_keyword_callback_on_a_real_incoming_message(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1, **FAST)
    keyword = await receivers()
    other = await receivers()
    for target, word in ((keyword, "pizza"), (other, "burger")):
        await rpc.call("callbacks.create", {
            "name": word, "event": "MESSAGE_RECEIVED", "filter_type": "keyword",
            "filter": word, "method": "FORM", "action": target.url}, auth=ADMIN_AUTH)
    sim_number = (await rpc.call("devices.get_list", auth=ADMIN_AUTH))[0]["siminfo"][0][
        "number"]
    await rpc.call("simulator.inject", "+33600000001", sim_number, "PIZZA large please",
                   auth=ADMIN_AUTH)
    (hit,) = await keyword.wait_delivered(1, timeout=30)
    form = parse_qs(hit.body.decode())
    assert form["message"][0] == "PIZZA large please"
    assert form["keyword"][0].lower() == "pizza" and form["phone"][0] == "+33600000001"
    assert other.hits == []
