"""The modem pool end to end: the real driver, simulated modems on real ptys, the virtual
network counting what it received, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .pool_helpers import ADMIN_AUTH, count, eventually, start_pool_gateway, statuses

TO = "+33612345678"


def traffic_by_text(gw: Any) -> dict[str, list[Any]]:
    grouped = collections.defaultdict(list)
    for record in gw.pool.simulator.network.traffic():
        grouped[record.text].append(record)
    return grouped


async def test_200_messages_over_4_modems_one_failing_midway(gateway_factory: Any,
                                                             database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url)
    texts = [f"message {i:03d} " + ("long " * 40 if i % 10 == 0 else "short")
             for i in range(200)]
    hashes: list[str] = []
    for chunk in range(0, 200, 50):
        results = await rpc.call("sms.send_batch", [
            {"to": f"+3361234{i:04d}", "text": texts[i]} for i in range(chunk, chunk + 50)])
        hashes += [r["hash"] for r in results]
        if chunk == 50:
            # sim2 starts refusing every submit with a temporary error (network out of
            # order): its messages must move to the other SIMs, none may be lost or doubled.
            await eventually(lambda: count(rpc, status="DELIVERED"), timeout=30)
            gw.pool.simulator.set_fault("sim2", "cms-error", code=38)

    async def all_delivered() -> bool:
        return await count(rpc, status="DELIVERED") == 200
    await eventually(all_delivered, timeout=90, interval=0.3)

    # A record holds the text of the parts the network received: a long message cut
    # short by the fault shows as its first part only, which is filed under its message.
    grouped = collections.defaultdict(list)
    for text, records in traffic_by_text(gw).items():
        (owner,) = [t for t in texts if t.startswith(text)]
        grouped[owner] += records
    assert sorted(grouped) == sorted(texts)          # every message reached the network
    for text, records in grouped.items():
        complete = [r for r in records if r.complete]
        assert len(complete) == 1, (text, records)  # delivered whole exactly once
        (record,) = complete
        assert record.duplicate_parts == 0
        assert record.parts == (2 if "long" in text else 1)  # all parts via one SIM
        # The only leftover allowed: the first part of a long message that sim2 took
        # just before the fault hit its second part (the message then went whole
        # through another SIM).
        for partial in (r for r in records if not r.complete):
            assert partial.sim_name == "sim2" and partial.parts == 2, partial
    # sim2 was taken out of rotation once its failures piled up
    devices = {d["name"]: d for d in await rpc.call("devices.get_list", auth=ADMIN_AUTH)}
    assert devices["sim2"]["siminfo"][0]["state"] == "circuit_open"
    retried = [h for h in hashes
               if "PENDING" in [c["new_status"] for c in
                                (await rpc.call("sms.get", h))["status_history"][1:]]]
    assert retried, "some messages were refused by sim2 and retried elsewhere"
    sample = await rpc.call("sms.get", hashes[0])
    assert [c["new_status"] for c in sample["status_history"]][-3:] == \
        ["SENDING", "SENT", "DELIVERED"]
    assert sample["status_code"] == 7 and sample["result_info"] == "[0] Delivered"


async def test_urgent_first_schedule_and_pinning(gateway_factory: Any,
                                                 database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url)
    gw.pool.simulator.set_fault("sim0", "slow", delay=0.3)  # sim0 answers slowly
    normal = [await rpc.call("sms.send", "", TO, f"normal {i}", {"device_id": 1})
              for i in range(6)]
    urgent = await rpc.call("sms.send", "", TO, "OTP 123456", {"device_id": 1, "urgent": 1})
    later = (datetime.now(timezone.utc) + timedelta(seconds=3)).strftime("%Y-%m-%d %H:%M:%S")
    scheduled = await rpc.call("sms.send", "", TO, "scheduled", {"send_at": later})
    on_sim = await rpc.call("sms.send", "", TO, "to device 3", {"device_id": 3, "sim": 0})
    await asyncio.sleep(1.0)  # three SIMs are idle: only its time keeps it waiting
    waiting = await rpc.call("sms.get", scheduled)
    assert waiting["status"] == "PENDING" and waiting["status_code"] == 1
    assert "scheduled" not in traffic_by_text(gw)

    await eventually(lambda: _final(rpc, normal + [urgent, on_sim]), timeout=60)
    sent_times = {h: await _sent_at(gw, h) for h in normal + [urgent]}
    sent_order = sorted(sent_times, key=sent_times.__getitem__)
    # At most the message sim0 was already sending can go before the OTP.
    assert sent_order.index(urgent) <= 1
    for h in normal + [urgent]:
        assert (await rpc.call("sms.get", h))["device_id"] == 1
    assert (await rpc.call("sms.get", on_sim))["device_id"] == 3
    traffic = traffic_by_text(gw)
    assert {r.sim_name for t in [f"normal {i}" for i in range(6)] for r in traffic[t]} == \
        {"sim0"}
    assert traffic["to device 3"][0].sim_name == "sim2"

    await eventually(lambda: _final(rpc, [scheduled]), timeout=30)
    sent = (await rpc.call("sms.get", scheduled))["date_sent"]
    assert sent >= later


async def _final(rpc: Any, hashes: list[str]) -> bool:
    return set((await statuses(rpc, hashes)).values()) == {"DELIVERED"}


async def _sent_at(gw: Any, sms_hash: str) -> int:
    from rpcgw.models import Message
    ident = gw.messages.codec.decode(sms_hash)
    return await gw.db.read(lambda: Message.get_by_id(ident).sent_at)


async def test_per_sim_rate_limits(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2)
    await rpc.call("devices.update", 2, {"limits": {"per_minute": 2}}, auth=ADMIN_AUTH)
    await rpc.call("devices.update", 1, {"limits": {"min_delay": 0.4}}, auth=ADMIN_AUTH)
    limited = [await rpc.call("sms.send", "", TO, f"limited {i}", {"device_id": 2})
               for i in range(4)]
    spaced = [await rpc.call("sms.send", "", TO, f"spaced {i}", {"device_id": 1})
              for i in range(3)]
    await eventually(lambda: _final(rpc, spaced), timeout=30)
    await asyncio.sleep(1.0)
    states = await statuses(rpc, limited)
    assert sorted(states.values()) == ["DELIVERED", "DELIVERED", "PENDING", "PENDING"]
    times = sorted([await _sent_at(gw, h) for h in spaced])
    assert all(b - a >= 390 for a, b in zip(times, times[1:]))  # min_delay, in ms
    device = await rpc.call("devices.get", 2, auth=ADMIN_AUTH)
    assert device["siminfo"][0]["limits"]["per_minute"] == 2
    assert device["queue_depth"] == 2 and device["sent_today"] == 2


async def test_modem_killed_and_restarted_mid_run(gateway_factory: Any,
                                                  database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=3)
    results = await rpc.call("sms.send_batch", [{"to": TO, "text": f"run {i}"}
                                                for i in range(60)])
    await eventually(lambda: count(rpc, status="DELIVERED"), timeout=30)
    # The port of sim1 closes (the USB stick is pulled) and comes back 1 s later.
    gw.pool.simulator.set_fault("sim1", "hangup", down_for=1.0)
    hashes = [r["hash"] for r in results]
    await eventually(lambda: _final(rpc, hashes), timeout=90, interval=0.3)
    grouped = traffic_by_text(gw)
    assert set(grouped) == {f"run {i}" for i in range(60)}
    doubled = [t for t, records in grouped.items() if len(records) > 1]
    assert len(doubled) <= 1, doubled  # at most the one sim1 was sending at that instant

    async def back_online() -> bool:
        device = await rpc.call("devices.get", 2, auth=ADMIN_AUTH)
        return device["state"] == "online"
    await eventually(back_online, timeout=30)
    assert gw.pool.slots[2].supervisor.resets >= 1


async def test_permanent_failure_fails_at_once_and_does_not_block(
        gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    gw.pool.simulator.network.add_rule("+33699999999", "permanent", stage="submit")
    bad = await rpc.call("sms.send", "", "+33699999999", "to a barred number", None)
    good = await rpc.call("sms.send", "", TO, "behind it", None)
    await eventually(lambda: _final(rpc, [good]), timeout=30)
    sms = await rpc.call("sms.get", bad)
    assert sms["status"] == "ERROR"
    assert sms["status_error"].startswith("CMS ERROR")
    assert sms["status_code"] in (9, 10, 11, 12) and sms["result_info"].startswith("[")
    assert [c["new_status"] for c in sms["status_history"]] == \
        ["PENDING", "SENDING", "ERROR"]  # no retry for a permanent error


async def test_delivery_failure_report(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    gw.pool.simulator.network.add_rule("+33688888888", "permanent", stage="report")
    failed = await rpc.call("sms.send", "", "+33688888888", "will not arrive", None)

    async def is_failed() -> bool:
        return (await rpc.call("sms.get", failed))["status"] == "FAILED"
    await eventually(is_failed, timeout=30)
    sms = await rpc.call("sms.get", failed)
    assert sms["status_code"] == 8 and sms["status_error"]


async def test_incoming_messages_and_replies(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2)
    sent = await rpc.call("sms.send", "", "+447700900123", "How was it?", None)
    await eventually(lambda: _final(rpc, [sent]), timeout=30)
    sim_number = (await rpc.call("sms.get", sent))["from"]
    await rpc.call("simulator.inject", "+447700900123", sim_number, "Great, thanks!",
                   auth=ADMIN_AUTH)
    long_text = "Ünïcödé reply " * 20
    await rpc.call("simulator.inject", "+447700900999", sim_number, long_text,
                   auth=ADMIN_AUTH)

    async def received() -> list[Any]:
        page = await rpc.call("sms.search", {"type": "IN"})
        return page["items"] if len(page["items"]) == 1 else []
    (reply,) = await eventually(received, timeout=30)
    assert reply["text"] == "Great, thanks!" and reply["status"] == "RECEIVED"
    assert reply["in_reply_to"] == sent and reply["to"] == sim_number
    assert reply["status_code"] == 5
    # Not a reply to anyone: it goes to the device's owner (the first administrator).

    async def owner_got_it() -> list[Any]:
        page = await rpc.call("sms.search", {"type": "IN"}, auth=ADMIN_AUTH)
        return page["items"]
    (other,) = await eventually(owner_got_it, timeout=30)
    assert other["text"] == long_text and other["parts"] > 1 and other["in_reply_to"] is None


async def test_devices_api(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2)
    devices = await rpc.call("devices.get_list", auth=ADMIN_AUTH)
    assert [d["name"] for d in devices] == ["sim0", "sim1"]
    sim = devices[0]["siminfo"][0]
    assert sim["number"] == "+15550001000" and len(sim["imsi"]) == 15
    assert sim["iccid"].startswith("89") and sim["operator"] and sim["signal"] < 0
    assert devices[0]["imei"] and devices[0]["state"] == "online"
    assert (await rpc.error("devices.get_list"))["message"] == "PERMISSION_DENIED"
    updated = await rpc.call("devices.update", 2, {"enabled": False, "title": "spare"},
                             auth=ADMIN_AUTH)
    assert updated["enabled"] is False and updated["state"] == "disabled"
    pinned = await rpc.call("sms.send", "", TO, "waits for a disabled device",
                            {"device_id": 2})
    free = await rpc.call("sms.send", "", TO, "goes through device 1", None)
    await eventually(lambda: _final(rpc, [free]), timeout=30)
    assert (await rpc.call("sms.get", pinned))["status"] == "PENDING"
    await rpc.call("devices.update", 2, {"enabled": True}, auth=ADMIN_AUTH)
    await eventually(lambda: _final(rpc, [pinned]), timeout=30)
    error = await rpc.error("devices.update", 2, {"limits": {"working_hours": "25-3"}},
                            auth=ADMIN_AUTH)
    assert error["data"]["field"].startswith("fields.limits")
    assert (await rpc.error("devices.get", 99, auth=ADMIN_AUTH))["message"] == "NOT_FOUND"


async def test_simulator_methods_need_the_simulator(rpc: Any) -> None:
    error = await rpc.error("simulator.get_traffic", None, auth=ADMIN_AUTH)
    assert error["message"] == "SIMULATOR_NOT_RUNNING"


def test_rate_gate_windows() -> None:
    from rpcgw.pool.config import Limits, RateGate
    gate = RateGate(Limits(per_minute=2, min_delay=1.0))
    now = time.time()
    assert gate.wait(now) == 0
    gate.note_send(now)
    assert 0.9 < gate.wait(now) <= 1.0
    gate.note_send(now + 1)
    assert gate.wait(now + 2) == pytest.approx(58)  # the first must leave the minute
    closed = RateGate(Limits(working_hours="00:00-00:01"))
    midday = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    assert closed.wait(midday) == 12 * 3600  # opens again at midnight
