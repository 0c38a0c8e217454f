"""sms.* behaviour over a live gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .conftest import BOB, RpcClient, basic

TO = "+33612345678"


async def test_send_stores_every_option(rpc: RpcClient) -> None:
    options = {"flash_message": True, "nature": "MARKETING", "user_data": "u1",
               "webhook": {"endpoint": "http://127.0.0.1:9/hook"}, "device_id": 2, "sim": 1,
               "send_at": "2030-01-02 03:04:05", "priority": 5, "status_url":
               "http://127.0.0.1:9/status", "custom_ticket": "T-1", "customer_id": 122,
               "validity": 60}
    sms = await rpc.call("sms.get", await rpc.call("sms.send", "", "0033 6 12 34 56 78",
                                                    "hello", options))
    assert sms["to"] == TO  # normalised to E.164
    assert sms["options"] == options
    assert sms["nature"] == "MARKETING" and sms["user_data"] == "u1"
    assert sms["device_id"] == 2 and sms["sim"] == 1 and sms["priority"] == 5
    assert sms["send_at"] == "2030-01-02 03:04:05"
    assert sms["status"] == "PENDING"
    assert sms["status_code"] == 1  # SmsGateway24: pending, waiting for its time
    assert sms["customer_id"] == "122" and sms["custom_ticket"] == "T-1"
    assert sms["result_info"] == "[1] Queued"


async def test_urgent_means_priority_100(rpc: RpcClient) -> None:
    sms = await rpc.call("sms.get", await rpc.call("sms.send", "", TO, "otp 1234",
                                                    {"urgent": 1}))
    assert sms["priority"] == 100
    assert sms["status_code"] == 3  # due now: queued for sending


@pytest.mark.parametrize("text, encoding, parts", [
    ("a" * 160, "GSM", 1), ("a" * 161, "GSM", 2), ("€" * 80, "GSM", 1),
    ("€" * 81, "GSM", 2), ("ж" * 70, "UNICODE", 1),
    ("ж" * 71, "UNICODE", 2), ("😀" * 35, "UNICODE", 1), ("😀" * 36, "UNICODE", 2),
])
async def test_encoding_and_parts(rpc: RpcClient, text: str, encoding: str, parts: int) -> None:
    count = await rpc.call("sms.get_count_for_body", text)
    assert (count["encoding"], count["parts"]) == (encoding, parts)
    sms = await rpc.call("sms.get", await rpc.call("sms.send", "", TO, text, None))
    assert (sms["encoding"], sms["parts"]) == (encoding, parts)


async def test_forced_gsm_transliterates(rpc: RpcClient) -> None:
    sms = await rpc.call("sms.get", await rpc.call("sms.send", "", TO, "Привет “quoted”",
                                                    {"force_encoding": "GSM"}))
    assert sms["encoding"] == "GSM"
    assert "“" not in sms["text"] and '"quoted"' in sms["text"]
    forced = await rpc.call("sms.get_count_for_body", "plain", "UNICODE")
    assert forced["encoding"] == "UNICODE"


async def test_idempotency_key_returns_the_first_message(rpc: RpcClient) -> None:
    options = {"idempotency_key": "order-42"}
    results = await asyncio.gather(*(rpc.call("sms.send", "", TO, "once", options)
                                     for _ in range(5)))
    assert len(set(results)) == 1
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 1
    # keys are per user
    other = await rpc.call("sms.send", "", TO, "once", options, auth=basic(*BOB))
    assert other != results[0]


async def test_send_batch_fails_items_alone(rpc: RpcClient) -> None:
    results = await rpc.call("sms.send_batch", [
        {"to": "+4915752982212, +4917642111111", "text": "a"},
        {"to": ["+33612345678"], "text": "b", "options": {"urgent": 1}},
        {"to": "nonsense", "text": "c"},
        {"to": "+33612345679", "text": "d", "options": {"send_at": "never"}},
    ])
    assert [r["index"] for r in results] == [0, 0, 1, 2, 3]
    assert [("hash" in r) for r in results] == [True, True, True, False, False]
    assert results[0]["to"] == "+4915752982212" and results[1]["to"] == "+4917642111111"
    assert results[3]["error"]["data"]["field"] == "items[2].to"
    assert results[4]["error"]["data"]["field"] == "items[3].options.send_at"
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 3
    (bad,) = await rpc.call("sms.send_batch", [{"text": "no recipient"}])
    assert bad["error"]["data"]["field"] == "items[0]" and "to" in bad["error"]["data"]["reason"]


async def test_users_see_only_their_own_messages(rpc: RpcClient) -> None:
    sms_hash = await rpc.call("sms.send", "", TO, "alice's", None)
    error = await rpc.error("sms.get", sms_hash, auth=basic(*BOB))
    assert error["message"] == "NOT_FOUND"
    assert (await rpc.call("sms.search", {}, auth=basic(*BOB)))["items"] == []
    error = await rpc.error("sms.cancel", sms_hash, auth=basic(*BOB))
    assert error["message"] == "NOT_FOUND"
    assert (await rpc.call("sms.get", sms_hash))["status"] == "PENDING"


async def test_cancel(rpc: RpcClient) -> None:
    sms_hash = await rpc.call("sms.send", "", TO, "cancel me", None)
    assert await rpc.call("sms.cancel", sms_hash) is True
    sms = await rpc.call("sms.get", sms_hash)
    assert sms["status"] == "CANCELLED" and sms["status_code"] == 101
    assert [h["new_status"] for h in sms["status_history"]] == ["PENDING", "CANCELLED"]
    error = await rpc.error("sms.cancel", sms_hash)
    assert error["message"] == "MESSAGE_NOT_CANCELLABLE"
    assert error["data"]["status"] == "CANCELLED"


async def test_search_filters_and_cursor(rpc: RpcClient) -> None:
    hashes = []
    for i in range(25):
        options: dict[str, Any] = {"customer_id": i % 3}
        if i % 5 == 0:
            options["device_id"] = 7
        hashes.append(await rpc.call("sms.send", "", f"+336123456{i:02d}",
                                     f"message number {i}", options))
    await rpc.call("sms.cancel", hashes[3])
    page = await rpc.call("sms.search", {"limit": 10})
    seen = [s["hash"] for s in page["items"]]
    while page["next_cursor"]:
        page = await rpc.call("sms.search", {"limit": 10, "cursor": page["next_cursor"]})
        seen += [s["hash"] for s in page["items"]]
    assert seen == list(reversed(hashes))  # newest first, each exactly once
    asc = await rpc.call("sms.search", {"order": "asc", "limit": 3})
    assert [s["hash"] for s in asc["items"]] == hashes[:3]
    assert (await rpc.call("sms.search", {"customer_id": 1, "count_only": True}))["count"] == 8
    assert (await rpc.call("sms.search", {"device_id": 7, "count_only": True}))["count"] == 5
    assert (await rpc.call("sms.search", {"status": "CANCELLED"}))["items"][0]["hash"] == \
        hashes[3]
    assert (await rpc.call("sms.search", {"status": 101, "count_only": True}))["count"] == 1
    assert (await rpc.call("sms.search", {"status": [3, "CANCELLED"],
                                          "count_only": True}))["count"] == 25
    found = await rpc.call("sms.search", {"text": "NUMBER 1"})
    assert len(found["items"]) == 11  # 1, 10..19
    assert (await rpc.call("sms.search", {"phone": "+33612345607"}))["items"][0]["hash"] == \
        hashes[7]
    assert (await rpc.call("sms.search", {"type": "IN", "count_only": True}))["count"] == 0
    future = await rpc.call("sms.search", {"date_from": "2999-01-01", "count_only": True})
    assert future["count"] == 0
    error = await rpc.error("sms.search", {"limit": 0})
    assert error["data"]["field"] == "filters.limit"


async def test_get_list_by_dates(rpc: RpcClient) -> None:
    sms_hash = await rpc.call("sms.send", "", TO, "listed", None)
    created = (await rpc.call("sms.get", sms_hash))["date_creation"]
    listed = await rpc.call("sms.get_list", "OUT", created, created)
    assert [s["hash"] for s in listed] == [sms_hash]
    assert await rpc.call("sms.get_list", "IN", "2000-01-01", "2999-01-01") == []
    error = await rpc.error("sms.get_list", "OUT", "2020-01-02", "2020-01-01")
    assert error["data"]["param"] == "to"


async def test_get_with_bad_hash(rpc: RpcClient) -> None:
    assert (await rpc.error("sms.get", "short"))["data"]["param"] == "hash"
    assert (await rpc.error("sms.get", "AAAA_AAA"))["data"]["param"] == "hash"
    assert (await rpc.error("sms.get", "ZZZZZZZZ"))["message"] == "NOT_FOUND"


async def test_endpoints_are_checked(gateway_factory: Any, sqlite_url: str) -> None:
    _, rpc = await gateway_factory(sqlite_url, allow_private_endpoints=False)
    for url in ("http://127.0.0.1/x", "http://10.1.2.3/x", "http://localhost:8080/",
                "http://[::1]/x", "http://169.254.169.254/latest"):
        error = await rpc.error("sms.send", "", TO, "x", {"status_url": url})
        assert error["data"]["field"] == "options.status_url", url
    assert await rpc.call("sms.send", "", TO, "x", {"status_url": "https://example.org/s"})
