"""Campaigns end to end: personalised bodies through simulated modems and the virtual
network, pause/resume, cancel, an OTP overtaking a campaign, scheduling, and the command
line, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from rpcgw.errors import InvalidParams, InvalidState

from .conftest import RpcClient
from .pool_helpers import count, eventually, start_pool_gateway
from .test_contacts import run_cli


async def make_list(rpc: RpcClient, title: str, n: int, start: int = 0) -> int:
    list_id = (await rpc.call("contacts.lists.create", title))["id"]
    rows = [{"phone": f"+3367000{i:04d}", "fullname": f"Client {i}",
             "fields": {"code": f"C{i:03d}"}} for i in range(start, start + n)]
    result = await rpc.call("contacts.import", list_id, rows)
    assert result["rejected"] == 0
    return list_id


async def campaign(rpc: RpcClient, ident: int) -> dict[str, Any]:
    return await rpc.call("campaigns.get", ident)


def texts_by_recipient(gw: Any) -> dict[str, list[str]]:
    received = collections.defaultdict(list)
    for record in gw.pool.simulator.network.traffic():
        received[record.recipient].append(record.text)
    return received


async def test_campaign_queues_without_modems(gw_rpc: tuple[Any, RpcClient]) -> None:
    """No modem runs here: what the runner creates stays PENDING, so the queue itself
    can be inspected."""
    gw, rpc = gw_rpc
    first = await make_list(rpc, "First", 6)             # 0..5
    second = await make_list(rpc, "Second", 6, start=3)  # 3..8: 3..5 are in both
    await rpc.call("contacts.optouts.create", "+33670000004")
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    scheduled = await rpc.call("campaigns.create", {
        "title": "later", "body": "Hi", "lists": [first], "send_at": later})
    assert scheduled["status"] == "scheduled" and scheduled["progress"]["recipients"] == 6
    created = await rpc.call("campaigns.create", {
        "title": "Spring", "body": "Dear {fullname}, code {code}, {{ok}} {missing}",
        "lists": [first, second], "options": {"user_data": "spring"}})
    assert created["priority"] == -10 and created["lists"] == [first, second]

    async def queued() -> dict[str, Any] | None:
        c = await campaign(rpc, created["id"])
        return c if c["status"] == "sending" else None
    done = await eventually(queued, timeout=20)
    assert done["progress"] == {"recipients": 9, "queued": 8, "pending": 8, "sending": 0,
                                "sent": 0, "delivered": 0, "failed": 0, "cancelled": 0,
                                "opted_out": 1, "skipped": 1}
    page = await rpc.call("sms.search", {"campaign_id": created["id"], "order": "asc"})
    items = page["items"]
    assert [m["to"] for m in items] == [f"+3367000{i:04d}" for i in (0, 1, 2, 3, 5, 6, 7, 8)]
    assert items[0]["text"] == "Dear Client 0, code C000, {ok} "
    assert {(m["status"], m["priority"], m["campaign_id"], m["user_data"], m["send_at"])
            for m in items} == {("PENDING", -10, created["id"], "spring", None)}
    assert (await campaign(rpc, scheduled["id"]))["status"] == "scheduled"
    assert await count(rpc, campaign_id=scheduled["id"]) == 0

    listed = await rpc.call("campaigns.get_list")
    assert [c["id"] for c in listed] == [created["id"], scheduled["id"]]
    cancelled = await rpc.call("campaigns.cancel", created["id"])
    assert cancelled["status"] == "cancelled" and cancelled["progress"]["cancelled"] == 8
    error = await rpc.error("campaigns.pause", created["id"])
    assert (error["code"], error["message"]) == (InvalidState.code, "CAMPAIGN_FINISHED")
    assert (await rpc.call("campaigns.cancel", created["id"]))["status"] == "cancelled"

    error = await rpc.error("campaigns.create", {"title": "x", "body": "y", "lists": [999]})
    assert error["message"] == "NOT_FOUND" and error["data"]["field"] == "campaign.lists"
    error = await rpc.error("campaigns.create", {"title": "x", "body": "y", "lists": [first],
                                                 "options": {"priority": 5}})
    assert error["code"] == InvalidParams.code
    error = await rpc.error("campaigns.create", {"title": "x", "body": "y", "lists": [first],
                                                 "options": {"status_url": "ftp://x"}})
    assert error["data"]["field"] == "campaign.options.status_url"
    assert (await rpc.error("campaigns.get", created["id"] + 99))["message"] == "NOT_FOUND"


async def test_personalised_campaign_over_the_network(gateway_factory: Any,
                                                      database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2)
    list_id = await make_list(rpc, "Clients", 30)
    created = await rpc.call("campaigns.create", {
        "title": "Codes", "body": "Hello {fullname}, your code is {code}.",
        "lists": [list_id]})

    async def delivered() -> dict[str, Any] | None:
        c = await campaign(rpc, created["id"])
        return c if c["progress"]["delivered"] == 30 and c["status"] == "completed" else None
    done = await eventually(delivered, timeout=60)
    assert done["progress"]["queued"] == 30 and done["progress"]["recipients"] == 30
    assert done["date_finished"] >= done["date_started"] > "0000"
    received = texts_by_recipient(gw)
    assert received == {f"+3367000{i:04d}": [f"Hello Client {i}, your code is C{i:03d}."]
                        for i in range(30)}


async def test_pause_resume_and_cancel(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    list_id = await make_list(rpc, "Clients", 16)
    created = await rpc.call("campaigns.create", {"title": "Paused", "body": "{code}",
                                                  "lists": [list_id]})
    network = gw.pool.simulator.network
    await eventually(lambda: _true(len(network.traffic()) >= 2), timeout=30, interval=0.02)
    paused = await rpc.call("campaigns.pause", created["id"])
    assert paused["status"] == "paused"
    # At most the message the modem already held goes out after the pause.
    await eventually(lambda: _no_message_sending(rpc, created["id"]), timeout=10)
    frozen = len(network.traffic())
    await asyncio.sleep(0.5)  # the SIM is idle: only the pause keeps the rest waiting
    assert len(network.traffic()) == frozen < 16
    state = await campaign(rpc, created["id"])
    assert state["status"] == "paused" and state["progress"]["pending"] == 16 - frozen
    assert (await rpc.call("campaigns.pause", created["id"]))["status"] == "paused"

    resumed = await rpc.call("campaigns.resume", created["id"])
    assert resumed["status"] == "sending"
    await eventually(lambda: _status_is(rpc, created["id"], "completed"), timeout=60)
    assert sorted(texts_by_recipient(gw)) == [f"+3367000{i:04d}" for i in range(16)]
    error = await rpc.error("campaigns.resume", created["id"])
    assert error["message"] == "CAMPAIGN_FINISHED" and error["data"]["status"] == "completed"

    second = await rpc.call("campaigns.create", {"title": "Cancelled", "body": "again {code}",
                                                 "lists": [list_id]})
    await eventually(lambda: _true(len(network.traffic()) >= 18), timeout=30, interval=0.02)
    cancelled = await rpc.call("campaigns.cancel", second["id"])
    assert cancelled["status"] == "cancelled"

    async def settled() -> dict[str, Any] | None:
        c = await campaign(rpc, second["id"])
        p = c["progress"]
        return c if p["pending"] == p["sending"] == 0 and p["sent"] == 0 else None
    final = (await eventually(settled, timeout=30))["progress"]
    sent_on = len([r for r in network.traffic() if r.text.startswith("again")])
    assert final["delivered"] == sent_on and final["cancelled"] == 16 - sent_on
    assert 2 <= sent_on < 16
    await asyncio.sleep(0.5)
    assert len(network.traffic()) == 16 + sent_on
    assert await count(rpc, campaign_id=second["id"], status="CANCELLED") == 16 - sent_on


async def test_an_otp_overtakes_a_campaign(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    gw.pool.simulator.set_fault("sim0", "slow", delay=0.1)
    list_id = await make_list(rpc, "Clients", 30)
    created = await rpc.call("campaigns.create", {"title": "Big", "body": "news for {code}",
                                                  "lists": [list_id]})
    network = gw.pool.simulator.network
    await eventually(lambda: _true(len(network.traffic()) >= 3), timeout=30)
    asked = time.time()
    otp = await rpc.call("sms.send", "", "+33611111111", "Your code: 123456",
                         {"nature": "ALERTING"})

    async def otp_delivered() -> bool:
        return (await rpc.call("sms.get", otp))["status"] == "DELIVERED"
    await eventually(otp_delivered, timeout=30)
    records = network.traffic()
    position = [r.recipient for r in records].index("+33611111111")
    before_otp = [r for r in records[:position] if r.first_at > asked]
    assert len(before_otp) <= 1  # only the message the SIM was already sending
    assert position < 10 and (await campaign(rpc, created["id"]))["progress"]["pending"] > 10


async def test_campaign_created_by_the_command_line(gateway_factory: Any,
                                                    database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=2)
    await make_list(rpc, "Clients", 5)
    db = ["--database", database_url]
    code, out = await run_cli("campaign", "create", "--user", "alice", "--title",
                              "From the shell", "--body", "Hi {fullname}", "--list", "Clients",
                              *db)
    assert (code, out) == (0, "created campaign 1 (5 recipients, scheduled); a running "
                              "gateway sends it\n")

    async def completed() -> bool:
        c = await campaign(rpc, 1)
        return c["status"] == "completed" and c["progress"]["delivered"] == 5
    await eventually(completed, timeout=30)
    assert sorted(t for texts in texts_by_recipient(gw).values() for t in texts) == \
        [f"Hi Client {i}" for i in range(5)]
    code, out = await run_cli("campaign", "watch", "1", *db)
    assert code == 0 and "campaign 1 completed: queued 5 · sent 0 · delivered 5" in out
    assert await run_cli("campaign", "list", "--user", "alice", *db) == \
        (0, "1\tcompleted\t5\tFrom the shell\n")
    code, _ = await run_cli("campaign", "create", "--user", "alice", "--title", "x", "--body",
                            "y", "--list", "Nope", *db)
    assert code == 1


async def _true(value: bool) -> bool:
    return value


async def _status_is(rpc: RpcClient, ident: int, status: str) -> bool:
    return (await campaign(rpc, ident))["status"] == status


async def _no_message_sending(rpc: RpcClient, ident: int) -> bool:
    return (await campaign(rpc, ident))["progress"]["sending"] == 0
