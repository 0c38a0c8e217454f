"""Opt-outs: STOP and START replies injected through the simulated network, the sms.send
refusal, campaigns skipping opted-out numbers, and a second gateway process following
changes through the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import aiohttp
import pytest

from rpcgw.contacts.optout import first_word, keyword_list
from rpcgw.errors import RecipientOptedOut

from .conftest import BOB, RpcClient, RpcError, basic
from .pool_helpers import ADMIN_AUTH, eventually, start_pool_gateway

BOB_AUTH = basic(*BOB)
CUSTOMER = "+447700900123"


@pytest.mark.parametrize(("text", "word"), [
    ("STOP", "STOP"), ("stop", "STOP"), ("  Stop.", "STOP"), ("Stop please", "STOP"),
    ("UNSUBSCRIBE!", "UNSUBSCRIBE"), ("start", "START"), ("", ""), ("?", ""),
    ("...stop", ""), ("stopped", "STOPPED"), ("Please stop", "PLEASE"),
], ids=repr)
def test_first_word(text: str, word: str) -> None:
    assert first_word(text) == word


def test_keyword_list() -> None:
    assert keyword_list(" stop, End ,,quit") == frozenset({"STOP", "END", "QUIT"})


async def optouts(rpc: RpcClient, **kw: Any) -> list[str]:
    return [o["phone"] for o in await rpc.call("contacts.optouts.get_list", **kw)]


async def test_stop_and_start_replies(gateway_factory: Any, database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    first = await rpc.call("sms.send", "", CUSTOMER, "Spring sale!", None)

    async def delivered(sms_hash: str) -> bool:
        return (await rpc.call("sms.get", sms_hash))["status"] == "DELIVERED"

    async def delivered_to_bob(sms_hash: str) -> bool:
        return (await rpc.call("sms.get", sms_hash, auth=BOB_AUTH))["status"] == "DELIVERED"
    await eventually(lambda: delivered(first), timeout=30)
    sim_number = (await rpc.call("sms.get", first))["from"]
    # A reply that is not a keyword changes nothing.
    await rpc.call("simulator.inject", CUSTOMER, sim_number, "please stop calling me",
                   auth=ADMIN_AUTH)
    await rpc.call("simulator.inject", CUSTOMER, sim_number, "Stop.", auth=ADMIN_AUTH)

    async def opted_out() -> list[dict[str, Any]]:
        return await rpc.call("contacts.optouts.get_list")
    (optout,) = await eventually(opted_out, timeout=30)
    assert (optout["phone"], optout["source"], optout["keyword"]) == (CUSTOMER, "sms", "STOP")
    error = await rpc.error("sms.send", "", CUSTOMER, "Another sale!", None)
    assert (error["code"], error["message"]) == (RecipientOptedOut.code, "RECIPIENT_OPTED_OUT")
    assert error["data"]["to"] == CUSTOMER
    error = await rpc.error("sms.send", "", CUSTOMER, "Sale", {"nature": "MARKETING"})
    assert error["message"] == "RECIPIENT_OPTED_OUT"
    (item,) = await rpc.call("sms.send_batch", [{"to": CUSTOMER, "text": "batch"}])
    assert item["error"]["message"] == "RECIPIENT_OPTED_OUT"
    # The STOP went to alice (she sent the message it answers), not to bob.
    assert await optouts(rpc, auth=BOB_AUTH) == []
    bobs = await rpc.call("sms.send", "", CUSTOMER, "bob's news", None, auth=BOB_AUTH)
    await eventually(lambda: delivered_to_bob(bobs), timeout=30)
    contact = await rpc.call("contacts.create", {"phone": CUSTOMER})
    assert contact["opted_out"] is True

    # ALERTING still goes through; it is now the last message to the customer, so the
    # customer's next reply is alice's.
    alert = await rpc.call("sms.send", "", CUSTOMER, "Your parcel is here",
                           {"nature": "ALERTING"})
    await eventually(lambda: delivered(alert), timeout=30)
    await rpc.call("simulator.inject", CUSTOMER, sim_number, "START", auth=ADMIN_AUTH)

    async def opted_in() -> bool:
        return await optouts(rpc) == []
    await eventually(opted_in, timeout=30)

    async def accepted() -> str | None:
        try:
            return await rpc.call("sms.send", "", CUSTOMER, "Welcome back", None)
        except RpcError:
            return None
    await eventually(accepted, timeout=10)
    assert (await rpc.call("contacts.get", contact["id"]))["opted_out"] is False
    stored = await rpc.call("sms.search", {"type": "IN", "order": "asc"})
    assert [m["text"] for m in stored["items"]] == ["please stop calling me", "Stop.", "START"]


async def test_campaigns_skip_and_cancel_for_opted_out_numbers(gateway_factory: Any,
                                                               database_url: str) -> None:
    gw, rpc = await start_pool_gateway(gateway_factory, database_url, modems=1)
    list_id = (await rpc.call("contacts.lists.create", "Clients"))["id"]
    numbers = [f"+3367100{i:04d}" for i in range(6)]
    await rpc.call("contacts.import", list_id, [{"phone": n} for n in numbers])
    await rpc.call("contacts.optouts.create", numbers[0])
    # The only modem is switched off: the campaign's messages wait in the queue.
    await rpc.call("devices.update", 1, {"enabled": False}, auth=ADMIN_AUTH)
    created = await rpc.call("campaigns.create", {"title": "News", "body": "news",
                                                  "lists": [list_id]})

    async def queued() -> dict[str, Any] | None:
        c = await rpc.call("campaigns.get", created["id"])
        p = c["progress"]
        return c if p["queued"] + p["skipped"] == 6 else None
    progress = (await eventually(queued, timeout=30))["progress"]
    assert (progress["queued"], progress["opted_out"], progress["skipped"]) == (5, 1, 1)
    # An opt-out while the campaign waits cancels that number's queued message.
    await rpc.call("contacts.optouts.create", numbers[1])
    await rpc.call("devices.update", 1, {"enabled": True}, auth=ADMIN_AUTH)

    async def completed() -> dict[str, Any] | None:
        c = await rpc.call("campaigns.get", created["id"])
        return c if c["status"] == "completed" and c["progress"]["delivered"] == 4 else None
    final = (await eventually(completed, timeout=30))["progress"]
    assert final["cancelled"] == 1
    received = sorted(r.recipient for r in gw.pool.simulator.network.traffic())
    assert received == numbers[2:]
    assert await rpc.call("contacts.optouts.delete", numbers[1]) is True
    error = await rpc.error("contacts.optouts.delete", numbers[1])
    assert error["message"] == "NOT_FOUND"
    assert await optouts(rpc) == [numbers[0]]


async def test_another_gateway_process_follows_opt_outs(gateway_factory: Any,
                                                        database_url: str) -> None:
    _, rpc = await gateway_factory(database_url)
    # A second gateway process on the same database, as another node would be.
    env = dict(os.environ, RPCGW_LOG_LEVEL="WARNING", RPCGW_SIMULATED_MODEMS="0",
               RPCGW_SQLITE_SYNCHRONOUS="NORMAL")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", "serve", "--port", "0", "--database", database_url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("rpcgw listening on "), line
        async with aiohttp.ClientSession() as session:
            other = RpcClient(session, line.split(" on ", 1)[1].strip())
            await other.call("sms.send", "", CUSTOMER, "before", None)
            await rpc.call("contacts.optouts.create", CUSTOMER)

            async def refused_there() -> bool:
                try:
                    await other.call("sms.send", "", CUSTOMER, "after", None)
                except RpcError as exc:
                    return exc.error["message"] == "RECIPIENT_OPTED_OUT"
                return False
            await eventually(refused_there, timeout=10)
            await other.call("contacts.optouts.delete", CUSTOMER)

            async def accepted_here() -> bool:
                try:
                    await rpc.call("sms.send", "", CUSTOMER, "here", None)
                except RpcError:
                    return False
                return True
            await eventually(accepted_here, timeout=10)
            assert await optouts(rpc) == []
    finally:
        proc.terminate()
        await proc.wait()
