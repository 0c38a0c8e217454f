"""CALLR's own Python SDK (PyPI ``callr`` 2.1.0), unchanged, against a live gateway."""

from __future__ import annotations

import asyncio
import gc
import re
from typing import Any, Iterator

import callr
import pytest

from .conftest import ALICE, RpcClient

# The SDK never closes urllib's HTTPError response (401 answers): its leak, not ours.
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(autouse=True)
def collect_sdk_leaks() -> Iterator[None]:
    """Finalise the SDK's leaked sockets now, under this module's warning filter, not
    in whichever later test the garbage collector happens to run."""
    yield
    gc.collect()


def sdk(rpc: RpcClient, login: str = ALICE[0], password: str = ALICE[1]) -> callr.Api:
    api = callr.Api(login, password)
    api.set_api_url(rpc.url)
    return api


async def in_thread(fn: Any, *args: Any) -> Any:
    """The SDK blocks (urllib); the gateway runs on this test's event loop."""
    return await asyncio.to_thread(fn, *args)


async def test_send_and_get(rpc: RpcClient) -> None:
    api = sdk(rpc)
    sms_hash = await in_thread(api.call, "sms.send", "SMS", "+33612345678",
                               "Hello, world", {"user_data": "42"})
    assert re.fullmatch(r"[0-9A-Z]{8}", sms_hash)
    sms = await in_thread(api.call, "sms.get", sms_hash)
    assert sms["hash"] == sms_hash
    assert sms["type"] == "OUT" and sms["from"] == "SMS" and sms["to"] == "+33612345678"
    assert sms["text"] == "Hello, world" and sms["user_data"] == "42"
    assert sms["encoding"] == "GSM" and sms["parts"] == 1
    assert sms["status"] == "PENDING"
    assert sms["status_history"][0]["old_status"] == "CREATED"
    assert sms["date_sent"] == "0000-00-00 00:00:00"


async def test_send_with_null_options_and_array_form(rpc: RpcClient) -> None:
    api = sdk(rpc)
    first = await in_thread(api.call, "sms.send", "", "+447890123456", "Hi", None)
    second = await in_thread(api.send, "sms.send", ["", "+447890123456", "Hi", None])
    assert first != second
    listed = await in_thread(api.call, "sms.get_list", "OUT", "2000-01-01 00:00:00",
                             "2999-01-01 00:00:00")
    assert {s["hash"] for s in listed} == {first, second}


async def test_application_error_reaches_the_sdk_as_code_and_message(rpc: RpcClient) -> None:
    api = sdk(rpc)
    with pytest.raises(callr.CallrException) as info:
        await in_thread(api.call, "sms.get", "ZZZZZZZZ")
    assert info.value.code == 110 and info.value.msg == "NOT_FOUND"
    with pytest.raises(callr.CallrException) as info:
        await in_thread(api.call, "sms.send", "", "12", "x", None)
    assert info.value.code == -32602 and info.value.msg == "INVALID_PARAM"


async def test_authentication_failure_is_an_http_error_for_the_sdk(rpc: RpcClient) -> None:
    api = sdk(rpc, password="not-the-password")
    with pytest.raises(callr.CallrException) as info:
        await in_thread(api.call, "sms.send", "", "+33612345678", "x", None)
    # As with CALLR itself: the SDK reports HTTP_CODE_ERROR with the HTTP status.
    assert info.value.msg == "HTTP_CODE_ERROR"
    assert info.value.data["http_code"] == 401


async def test_unicode_text_round_trips(rpc: RpcClient) -> None:
    api = sdk(rpc)
    sms_hash = await in_thread(api.call, "sms.send", "", "+33612345678",
                               "Привет €, 😀 ok", None)
    sms = await in_thread(api.call, "sms.get", sms_hash)
    assert sms["text"] == "Привет €, 😀 ok" and sms["encoding"] == "UNICODE"


async def test_system_timestamp_as_every_sdk_pings(rpc: RpcClient) -> None:
    import time
    stamp = await in_thread(sdk(rpc).call, "system.get_timestamp")
    assert abs(stamp - time.time()) < 5
