"""The delivery engine against real receivers: acknowledgement, retries, timeouts,
410 Gone, a receiver that is down, restarts, several nodes, ordering, per-endpoint
concurrency, redelivery, and the cost of the listener on the send path."""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rpcgw import errors
from rpcgw.app import GATEWAY
from rpcgw.db import open_peewee
from rpcgw.events.models import Event
from rpcgw.models import Device, Sim, User, now_ms

from .conftest import ADMIN, BOB, basic, free_port
from .events_helpers import (FAST, Receiver, advance, device_change, gateway_pool, node_pool,
                             receive, settle, wait_until)


@pytest.fixture
async def gateways() -> AsyncIterator[Any]:
    async with gateway_pool() as make:
        yield make


@pytest.fixture
async def node_processes() -> AsyncIterator[Any]:
    async with node_pool() as make:
        yield make

TO = "+33612345678"
SIM_NUMBER = "+33700000001"


async def start(gateway_factory: Any, database_url: str, **settings: Any) -> tuple[Any, Any]:
    app, rpc = await gateway_factory(database_url, **{**FAST, **settings})
    return app[GATEWAY], rpc


async def deliveries(rpc: Any, **filters: Any) -> list[dict[str, Any]]:
    return list((await rpc.call("webhooks.get_deliveries", filters))["items"])


async def test_acknowledged_once(gateway_factory: Any, database_url: str,
                                 receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    sms_hash = await receive(gw, TO, SIM_NUMBER, "hi")
    (hit,) = await receiver.wait_delivered(1)
    await settle(gw)
    (delivery,) = await deliveries(rpc)
    assert delivery["status"] == "delivered" and delivery["tries"] == 1
    assert delivery["sms_hash"] == sms_hash and delivery["kind"] == "webhook"
    assert delivery["event_id"] == hit.json()["event_id"]
    (attempt,) = delivery["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] == ""
    assert isinstance(attempt["latency_ms"], int)
    assert len(receiver.hits) == 1


async def test_500_then_200_is_retried_with_the_same_event_id(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers(lambda n: 500 if n == 0 else 200)
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, {"hmac_secret": "k"})
    await receive(gw, TO, SIM_NUMBER, "hi")
    await receiver.wait_delivered(1)
    await settle(gw)
    first, second = receiver.hits
    assert first.json()["event_id"] == second.json()["event_id"]
    assert (first.json()["try"], second.json()["try"]) == (0, 1)
    assert first.headers["X-CALLR-EventId"] == second.headers["X-CALLR-EventId"]
    (delivery,) = await deliveries(rpc)
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert [a["try"] for a in delivery["attempts"]] == [0, 1]
    assert delivery["status"] == "delivered" and delivery["tries"] == 2


async def test_timeout_is_retried(gateway_factory: Any, database_url: str,
                                  receivers: Any) -> None:
    async def slow_first(n: int) -> int:
        if n == 0:
            await asyncio.sleep(1.0)  # the gateway gives up after 0.5 s
        return 200

    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers(slow_first)
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(gw, TO, SIM_NUMBER, "hi")

    async def delivered() -> Any:
        found = await deliveries(rpc, status="delivered")
        return found[0] if found else None

    delivery = await wait_until(delivered)
    first, second = delivery["attempts"]
    assert first["status_code"] is None and first["error"].startswith("timeout")
    assert first["latency_ms"] >= 400
    assert second["status_code"] == 200


async def test_410_gone_disables_the_webhook(gateway_factory: Any, database_url: str,
                                             receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers(lambda n: 410)
    hook = await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(gw, TO, SIM_NUMBER, "first")
    await settle(gw)
    (delivery,) = await deliveries(rpc)
    assert delivery["status"] == "dead" and "410" in delivery["last_error"]
    disabled = await rpc.call("webhooks.get", hook["hash"])
    assert not disabled["enabled"] and "410" in disabled["disabled_reason"]
    later = await receive(gw, TO, SIM_NUMBER, "second")
    assert await deliveries(rpc, sms_hash=later) == []  # nothing produced any more
    assert len(receiver.hits) == 1
    again = await rpc.call("webhooks.update", hook["hash"], {"enabled": True})
    assert again["enabled"] and again["disabled_reason"] == ""


async def test_receiver_down_then_back(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    await rpc.call("webhooks.subscribe", "sms.mo", url, None)
    await receive(gw, TO, SIM_NUMBER, "are you there?")

    async def failed_twice() -> bool:
        found = await deliveries(rpc)
        return bool(found) and len(found[0]["attempts"]) >= 2

    await wait_until(failed_twice)
    (delivery,) = await deliveries(rpc)
    assert delivery["status"] in ("pending", "in_flight")
    assert delivery["attempts"][0]["error"].startswith("connection failed")
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        (hit,) = await receiver.wait_delivered(1)
        await settle(gw)
        (delivery,) = await deliveries(rpc)
        assert delivery["status"] == "delivered"
        assert hit.json()["try"] == delivery["tries"] - 1 >= 2
    finally:
        await server.close()


async def test_gives_up_after_the_retry_window(gateway_factory: Any, sqlite_url: str,
                                               receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url,
                          webhook_retry_max_age_hours=0.4 / 3600)
    receiver = await receivers(lambda n: 503)
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(gw, TO, SIM_NUMBER, "hi")
    await settle(gw)
    (delivery,) = await deliveries(rpc)
    assert delivery["status"] == "dead" and delivery["last_error"].startswith("gave up")
    assert len(receiver.hits) == delivery["tries"] >= 2


async def test_restart_in_the_middle_of_retries_loses_nothing(
        gateways: Any, database_url: str, receivers: Any) -> None:
    failing = {"on": True}
    receiver = await receivers(lambda n: 500 if failing["on"] else 200)
    first = await gateways(database_url)
    await first.rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(first.gw, TO, SIM_NUMBER, "hello")
    await receiver.wait(lambda r: len(r.hits) >= 2)
    await first.stop()
    seen = len(receiver.hits)
    failing["on"] = False
    second = await gateways(database_url, users=False)
    await receiver.wait_delivered(1)
    await settle(second.gw)
    assert len(receiver.hits) == seen + 1  # one more request: the one that succeeded
    assert [h.answered for h in receiver.hits] == [500] * seen + [200]
    assert len({h.json()["event_id"] for h in receiver.hits}) == 1
    assert [h.json()["try"] for h in receiver.hits] == list(range(len(receiver.hits)))
    (delivery,) = await deliveries(second.rpc)
    assert delivery["status"] == "delivered" and delivery["tries"] == len(receiver.hits)


async def test_expired_lease_of_a_crashed_node_resumes(gateways: Any, database_url: str,
                                                       receivers: Any) -> None:
    failing = {"on": True}
    receiver = await receivers(lambda n: 500 if failing["on"] else 200)
    first = await gateways(database_url)
    await first.rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(first.gw, TO, SIM_NUMBER, "hello")
    await receiver.wait(lambda r: len(r.hits) >= 1)
    await first.stop()
    # What a crash leaves behind: the delivery leased by a node that is gone.
    pw = open_peewee(database_url)
    pw.execute_sql("UPDATE webhook_delivery SET status = 'in_flight', lease_owner = 'gone', "
                   f"lease_until = {now_ms() - 1}")
    pw.close()
    failing["on"] = False
    second = await gateways(database_url, users=False)
    await receiver.wait_delivered(1)
    await settle(second.gw)
    (delivery,) = await deliveries(second.rpc)
    assert delivery["status"] == "delivered"
    assert len(receiver.delivered) == 1


async def test_two_nodes_deliver_each_event_once(gateways: Any, node_processes: Any,
                                                 database_url: str, receivers: Any) -> None:
    receiver = await receivers()
    one = await gateways(database_url)
    await node_processes(database_url)  # a second gateway process competes for deliveries
    await one.rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await asyncio.gather(*(receive(one.gw, f"+336000000{i:02d}", SIM_NUMBER, f"m{i}")
                           for i in range(60)))
    await receiver.wait_delivered(60)
    await settle(one.gw)
    assert len(receiver.hits) == 60
    assert len({h.json()["event_id"] for h in receiver.hits}) == 60


async def test_a_subscription_made_on_another_node_is_seen_within_a_second(
        gateways: Any, node_processes: Any, database_url: str, receivers: Any) -> None:
    receiver = await receivers()
    one = await gateways(database_url)
    await receive(one.gw, TO, SIM_NUMBER, "before")  # this node loads its view now
    other = await node_processes(database_url)
    one.rpc.url = other.url  # subscribe through the other process
    await one.rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    started = time.monotonic()
    texts = iter(range(1000))

    async def announced() -> bool:
        await receive(one.gw, TO, SIM_NUMBER, f"after {next(texts)}")
        return await one.gw.db.read(lambda: Event.select().exists())

    await wait_until(announced, timeout=5, interval=0.05)
    assert time.monotonic() - started < 2.0
    await receiver.wait_delivered(1)


async def test_status_updates_stay_in_order_across_retries(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers(lambda n: 500 if n < 2 else 200)
    await rpc.call("webhooks.subscribe", "sms.mt.status_update", receiver.url, None)
    sms_hash = await rpc.call("sms.send", "", TO, "hi", None)
    await advance(gw, sms_hash, "SENDING", "SENT", "DELIVERED")
    await receiver.wait_delivered(3)
    statuses = [(h.json()["data"]["status"], h.answered) for h in receiver.hits]
    assert statuses == [("SENDING", 500), ("SENDING", 500), ("SENDING", 200),
                        ("SENT", 200), ("DELIVERED", 200)]


async def test_a_slow_endpoint_does_not_hold_up_the_others(
        gateway_factory: Any, sqlite_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url, webhook_endpoint_concurrency=2)
    state = {"now": 0, "max": 0}

    async def slow(n: int) -> int:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await asyncio.sleep(0.3)
        state["now"] -= 1
        return 200

    slow_receiver, fast_receiver = await receivers(slow), await receivers()
    await rpc.call("webhooks.subscribe", "sms.mo", slow_receiver.url, None)
    await rpc.call("webhooks.subscribe", "sms.mo", fast_receiver.url, None)
    for i in range(10):
        await receive(gw, f"+3360000{i:04d}", SIM_NUMBER, f"m{i}")
    await fast_receiver.wait_delivered(10, timeout=5)
    await slow_receiver.wait_delivered(10, timeout=10)
    # The slow endpoint needs five rounds of 0.3 s; the fast one finished long before.
    slow_arrivals = sorted(h.at for h in slow_receiver.hits)
    assert max(h.at for h in fast_receiver.hits) < slow_arrivals[6]
    assert state["max"] == 2


async def test_redeliver(gateway_factory: Any, database_url: str, receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mo", receiver.url, None)
    await receive(gw, TO, SIM_NUMBER, "hi")
    (hit,) = await receiver.wait_delivered(1)
    await settle(gw)
    event_id = hit.json()["event_id"]
    assert await rpc.call("webhooks.redeliver", event_id) == 1
    first, again = await receiver.wait_delivered(2)
    assert again.json()["event_id"] == event_id and again.json()["try"] == 1
    for auth in ("default", basic(*BOB)):
        error = await rpc.error("webhooks.redeliver",
                                event_id if auth != "default" else "nope", auth=auth)
        assert error["code"] == errors.NotFound.code


async def test_get_deliveries_filters_and_pages(gateway_factory: Any, sqlite_url: str,
                                                receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url)
    ok, failing = await receivers(), await receivers(lambda n: 500)
    await rpc.call("webhooks.subscribe", "sms.mo", ok.url, None)
    hook = await rpc.call("webhooks.subscribe", "sms.mt.status_update", failing.url, None)
    sms_hash = await rpc.call("sms.send", "", TO, "hi", None)
    await advance(gw, sms_hash, "SENDING")
    for i in range(3):
        await receive(gw, f"+3361111111{i}", SIM_NUMBER, "x")
    await ok.wait_delivered(3)
    await failing.wait(lambda r: len(r.hits) >= 1)

    async def three_delivered() -> bool:
        return len(await deliveries(rpc, type="sms.mo", status="delivered")) == 3

    await wait_until(three_delivered)
    (mt,) = await deliveries(rpc, sms_hash=sms_hash)
    assert mt["hook_hash"] == hook["hash"] and mt["type"] == "sms.mt.status_update"
    assert [d["event_id"] for d in await deliveries(rpc, hook_hash=hook["hash"])] == [
        mt["event_id"]]
    page = await rpc.call("webhooks.get_deliveries", {"limit": 2})
    rest = await rpc.call("webhooks.get_deliveries", {"limit": 2,
                                                      "cursor": page["next_cursor"]})
    assert len(page["items"]) == 2 and len(rest["items"]) == 2 and not rest["next_cursor"]
    assert await rpc.call("webhooks.get_deliveries", None, auth=basic(*BOB)) == {
        "items": [], "next_cursor": None}


async def test_send_path_writes_nothing_for_creation(gateway_factory: Any,
                                                     database_url: str,
                                                     receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    for _ in range(5):
        await rpc.call("sms.send", "", TO, "nobody listens", None)
    await rpc.call("webhooks.subscribe", "sms.mt.status_update", receiver.url, None)
    hashes = [await rpc.call("sms.send", "", TO, "queued", None) for _ in range(5)]
    assert await gw.db.read(lambda: Event.select().count()) == 0
    await advance(gw, hashes[0], "SENDING")
    await receiver.wait_delivered(1)
    assert await gw.db.read(lambda: Event.select().count()) == 1


async def test_queued_events_when_asked(gateway_factory: Any, sqlite_url: str,
                                        receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, sqlite_url, webhook_queued_events=True)
    receiver = await receivers()
    await rpc.call("webhooks.subscribe", "sms.mt.status_update", receiver.url, None)
    await rpc.call("sms.send", "", TO, "queued", None)
    (hit,) = await receiver.wait_delivered(1)
    assert hit.json()["data"]["status"] == "PENDING"


async def test_device_status_goes_to_owner_and_admins(gateway_factory: Any,
                                                      database_url: str,
                                                      receivers: Any) -> None:
    gw, rpc = await start(gateway_factory, database_url)

    def make_device() -> int:
        alice = User.get(User.login == "alice")
        device = Device.create(name="modem-1", owner=alice)
        Sim.create(device=device, slot=0, number=SIM_NUMBER, state="online")
        return int(device.id)

    device_id = await gw.db.write(make_device)
    hits = {}
    for who in ("default", basic(*ADMIN), basic(*BOB)):
        hits[who] = await receivers()
        await rpc.call("webhooks.subscribe", "device.status_update", hits[who].url,
                       {"format": "JSON"}, auth=who)
    await device_change(gw, device_id, 0, "online", "sim_error", "SIM not inserted")
    (alice_hit,) = await hits["default"].wait_delivered(1)
    await hits[basic(*ADMIN)].wait_delivered(1)
    await settle(gw)
    assert hits[basic(*BOB)].hits == []
    body = alice_hit.json()
    assert body["type"] == "device.status_update"
    assert body["data"] | {"date_update": ""} == {
        "device_id": device_id, "device_name": "modem-1", "sim": 0, "number": SIM_NUMBER,
        "old_state": "online", "new_state": "sim_error", "detail": "SIM not inserted",
        "date_update": ""}


@pytest.mark.parametrize("status", ["SENT", "FAILED"])
async def test_per_message_webhook_without_global_subscription(
        gateway_factory: Any, database_url: str, receivers: Any, status: str) -> None:
    gw, rpc = await start(gateway_factory, database_url)
    receiver = await receivers()
    sms_hash = await rpc.call("sms.send", "", TO, "hi",
                              {"webhook": {"endpoint": receiver.url}})
    other = await rpc.call("sms.send", "", TO, "no endpoint", None)
    await advance(gw, sms_hash, "SENDING", status)
    await advance(gw, other, "SENDING", status)
    hits = await receiver.wait_delivered(2)
    await settle(gw)
    assert [h.json()["data"]["status"] for h in hits] == ["SENDING", status]
    assert {h.json()["data"]["hash"] for h in hits} == {sms_hash}
    assert all(h.json()["hook_hash"] is None for h in hits)


async def test_finished_deliveries_are_purged_after_the_retention(
        gateway_factory: Any, database_url: str, receivers: Any) -> None:
    from rpcgw.events import events_of
    from rpcgw.events.models import Delivery, DeliveryAttempt

    gw, rpc = await start(gateway_factory, database_url)
    ok, failing = await receivers(), await receivers(lambda n: 500)
    await rpc.call("webhooks.subscribe", "sms.mo", ok.url, None)
    await receive(gw, TO, SIM_NUMBER, "done")
    await settle(gw)
    await rpc.call("webhooks.unsubscribe", (await rpc.call("webhooks.get_list"))[0]["hash"])
    await rpc.call("webhooks.subscribe", "sms.mo", failing.url, None)
    await receive(gw, TO, SIM_NUMBER, "still retrying")
    await failing.wait(lambda r: len(r.hits) >= 1)
    engine = events_of(gw).engine
    assert await gw.db.write(engine._purge, now_ms() + 1000) == 1
    counts = await gw.db.read(lambda: (Event.select().count(), Delivery.select().count(),
                                       DeliveryAttempt.select().where(
                                           DeliveryAttempt.delivery.not_in(
                                               Delivery.select(Delivery.id))).count()))
    assert counts == (1, 1, 0)  # the open delivery stays; nothing dangles
