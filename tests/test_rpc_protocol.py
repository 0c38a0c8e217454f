"""Wire rules that CALLR's SDKs and plain JSON-RPC 2.0 clients depend on."""

from __future__ import annotations

from typing import Any

import pytest

from rpcgw import errors

from .conftest import RpcClient, basic


def assert_rpc_error(body: dict[str, Any], code: int, message: str | None = None,
                     request_id: Any = None) -> dict[str, Any]:
    """The one shape every error answer has."""
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == request_id and type(body["id"]) is type(request_id)
    assert "result" not in body
    error = body["error"]
    assert isinstance(error["code"], int) and error["code"] == code
    assert error["message"].isupper() and " " not in error["message"]
    if message is not None:
        assert error["message"] == message
    assert set(error) <= {"code", "message", "data"}
    return error


SEND = ["", "+33612345678", "Hello", None]


@pytest.mark.parametrize("path", ["/json-rpc/v1.1/", "/json-rpc/v1.1", "/"])
async def test_every_path_answers_without_redirect(rpc: RpcClient, path: str) -> None:
    url = rpc.url.replace("/json-rpc/v1.1/", path)
    async with rpc.session.post(url, data=b'{"jsonrpc":"2.0","id":1,"method":'
                                b'"system.get_timestamp","params":[]}',
                                headers={"Authorization": rpc.auth},
                                allow_redirects=False) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json-rpc; charset=utf-8"
        body = await resp.json(content_type=None)
    assert isinstance(body["result"], int)


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded",  # CALLR's Ruby SDK
    "text/plain", "", "application/json"])
async def test_body_is_json_whatever_the_content_type(rpc: RpcClient, content_type: str) -> None:
    status, body, _ = await rpc.post(None, raw=b'{"jsonrpc":"2.0","id":"a","method":'
                                     b'"sms.send","params":["","+33612345678","hi",null]}',
                                     headers={"Content-Type": content_type, "Expect": ""})
    assert status == 200
    assert len(body["result"]) == 8 and body["id"] == "a"


@pytest.mark.parametrize("request_id", [7, "seven", 9007199254740993, None, 1.5,
                                        2 ** 70])
async def test_id_is_echoed_with_its_json_type(rpc: RpcClient, request_id: Any) -> None:
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": request_id,
                                      "method": "system.get_timestamp", "params": []})
    assert status == 200
    assert body["id"] == request_id and type(body["id"]) is type(request_id)
    assert "error" not in body


async def test_result_is_never_null(rpc: RpcClient) -> None:
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "session.create",
                                      "params": []})
    token = body["result"]["token"]
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 2, "method": "session.delete",
                                      "params": []}, auth=f"Session {token}")
    assert body == {"jsonrpc": "2.0", "id": 2, "result": True}


async def test_malformed_json_is_a_parse_error(rpc: RpcClient) -> None:
    status, body, _ = await rpc.post(None, raw=b'{"jsonrpc": "2.0", "method": ')
    assert status == 200
    error = assert_rpc_error(body, -32700, "PARSE_ERROR")
    assert "JSON" in error["data"]["reason"]


@pytest.mark.parametrize("payload, field", [
    ({"jsonrpc": "1.0", "id": 1, "method": "system.get_timestamp"}, "jsonrpc"),
    ({"id": 1, "method": "system.get_timestamp"}, "jsonrpc"),
    ({"jsonrpc": "2.0", "id": 1, "method": 5}, "method"),
    ({"jsonrpc": "2.0", "id": 1, "method": "sms.get", "params": "8242D945"}, "params"),
    ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "system.get_timestamp"}, "id"),
    ({"jsonrpc": "2.0", "id": 1, "method": "system.get_timestamp", "extra": 1}, "extra"),
])
async def test_invalid_requests(rpc: RpcClient, payload: dict[str, Any], field: str) -> None:
    status, body, _ = await rpc.post(payload)
    assert status == 200
    rid = payload["id"] if isinstance(payload.get("id"), int) else None
    error = assert_rpc_error(body, -32600, "INVALID_REQUEST", rid)
    assert error["data"]["field"] == field


async def test_unknown_method(rpc: RpcClient) -> None:
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 3, "method": "sms.explode",
                                      "params": []})
    error = assert_rpc_error(body, -32601, "METHOD_NOT_FOUND", 3)
    assert error["data"]["method"] == "sms.explode"


async def test_wrong_parameter_count(rpc: RpcClient) -> None:
    error = await rpc.error("sms.send", "", "+33612345678")
    assert error["code"] == -32602 and error["message"] == "WRONG_PARAM_COUNT"
    assert error["data"]["param"] == "text"
    error = await rpc.error("sms.get", "8242D945", "extra")
    assert error["code"] == -32602 and "at most 1" in error["data"]["reason"]


@pytest.mark.parametrize("params, param, field", [
    (["", 33612345678, "hi", None], "to", "to"),
    (["", "+33612345678", ["hi"], None], "text", "text"),
    (["", "+33612345678", "hi", "fast"], "options", "options"),
    (["", "+33612345678", "hi", {"send_at": 5}], "options", "options.send_at"),
    (["", "+33612345678", "hi", {"nature": "SPAM"}], "options", "options.nature"),
    (["", "+33612345678", "hi", {"bogus": 1}], "options", "options"),
    (["", "+33612345678", "hi", {"webhook": {}}], "options", "options.webhook"),
    (["", "+33612345678", "hi", {"send_at": "tomorrow"}], "options", "options.send_at"),
    (["", "not a number", "hi", None], "to", None),
    (["", "+33612345678", "hi", {"webhook": {"endpoint": "ftp://x"}}], "options",
     "options.webhook.endpoint"),
])
async def test_bad_params_name_the_field_and_change_nothing(
        rpc: RpcClient, params: list[Any], param: str, field: str | None) -> None:
    error = await rpc.error("sms.send", *params)
    assert error["code"] == errors.InvalidParams.code
    assert error["message"] == "INVALID_PARAM"
    assert error["data"]["param"] == param
    if field is not None:
        assert error["data"]["field"] == field
    assert error["data"]["reason"]
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 0


async def test_options_may_be_null_object_or_empty_array(rpc: RpcClient) -> None:
    for options in (None, {}, []):
        sms_hash = await rpc.call("sms.send", "", "+33612345678", "hi", options)
        assert (await rpc.call("sms.get", sms_hash))["options"] is None
    error = await rpc.error("sms.send", "", "+33612345678", "hi", [1])
    assert error["data"]["param"] == "options"


async def test_named_params_are_accepted(rpc: RpcClient) -> None:
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "sms.send",
                                      "params": {"from": "", "to": "+33612345678",
                                                 "text": "named"}})
    assert len(body["result"]) == 8
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "sms.send",
                                      "params": {"to": "+33612345678", "txt": "x"}})
    assert_rpc_error(body, -32602, "WRONG_PARAM_COUNT", 1)


async def test_batch_answers_each_call_in_order(rpc: RpcClient) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "sms.send", "params": SEND},
        {"jsonrpc": "2.0", "method": "sms.send", "params": SEND},  # notification
        {"jsonrpc": "2.0", "id": "x", "method": "no.such", "params": []},
        {"jsonrpc": "1.0", "id": 4, "method": "sms.send", "params": SEND},
        {"jsonrpc": "2.0", "id": 5, "method": "sms.send", "params": ["", "bad", "t", None]},
        {"jsonrpc": "2.0", "id": 6, "method": "system.get_timestamp"},
    ]
    status, body, _ = await rpc.post(batch)
    assert status == 200
    assert [r["id"] for r in body] == [1, "x", 4, 5, 6]
    assert len(body[0]["result"]) == 8
    assert body[1]["error"]["code"] == -32601
    assert body[2]["error"]["code"] == -32600
    assert body[3]["error"]["code"] == -32602
    assert isinstance(body[4]["result"], int)
    # the notification was executed although not answered
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 2


async def test_batch_of_notifications_gets_no_body(rpc: RpcClient) -> None:
    status, body, _ = await rpc.post([{"jsonrpc": "2.0", "method": "sms.send",
                                       "params": SEND}] * 3)
    assert status == 204 and body is None
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 3


async def test_empty_and_oversized_batches(gateway_factory: Any, sqlite_url: str) -> None:
    _, rpc = await gateway_factory(sqlite_url, max_batch_calls=3)
    status, body, _ = await rpc.post([])
    assert_rpc_error(body, -32600, "INVALID_REQUEST")
    status, body, _ = await rpc.post([{"jsonrpc": "2.0", "id": i, "method": "sms.send",
                                       "params": SEND} for i in range(4)])
    assert_rpc_error(body, -32600, "BATCH_TOO_LARGE")
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 0


async def test_body_size_limit(gateway_factory: Any, sqlite_url: str) -> None:
    _, rpc = await gateway_factory(sqlite_url, max_request_bytes=2048)
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "sms.send",
                                      "params": ["", "+33612345678", "x" * 5000, None]})
    assert status == 413
    assert_rpc_error(body, -32600, "REQUEST_TOO_LARGE")


@pytest.mark.parametrize("raw", [
    b"", b"null", b"42", b'"str"', b"[1,2]", b"\xff\xfe\x00", b"{" * 100000,
    b'{"jsonrpc":"2.0","id":1,"method":"sms.send","params":[null,null,null,null]}',
    b'{"jsonrpc":"2.0","id":1,"method":"sms.search","params":[{"cursor":"!!"}]}',
    b'{"jsonrpc":"2.0","id":1,"method":"sms.get","params":["\\ud800\\udc00zzzzzz"]}',
    b'{"jsonrpc":"2.0","id":1,"method":"sms.send","params":["","+33612345678",'
    b'"\\ud800",null]}',
    b'[' + b'{"jsonrpc":"2.0","id":1,"method":"rpc.discover"},' * 10 + b'null]',
])
async def test_garbage_never_crashes_the_server(rpc: RpcClient, raw: bytes) -> None:
    status, body, _ = await rpc.post(None, raw=raw)
    assert status == 200
    answers = body if isinstance(body, list) else [body]
    for answer in answers:
        assert answer["jsonrpc"] == "2.0"
        assert ("result" in answer) != ("error" in answer)
        if "error" in answer:
            assert answer["error"]["code"] != -32603, answer
    assert isinstance(await rpc.call("system.get_timestamp"), int)


async def test_authentication_failure_is_http_401_with_an_error_body(rpc: RpcClient) -> None:
    status, body, resp = await rpc.post({"jsonrpc": "2.0", "id": 9, "method": "sms.send",
                                         "params": SEND}, auth=basic("alice", "wrong"))
    assert status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert_rpc_error(body, 101, "AUTHENTICATION_FAILED", 9)
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 9, "method": "sms.send",
                                      "params": SEND}, auth=None)
    assert status == 401
    assert (await rpc.call("sms.search", {"count_only": True}))["count"] == 0


async def test_internal_errors_leak_nothing(gw_rpc: Any, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    gw, rpc = gw_rpc

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail /etc/shadow")
    monkeypatch.setattr(gw.messages, "count_for_body", explode)
    error = await rpc.error("sms.get_count_for_body", "hello")
    assert error["code"] == -32603 and error["message"] == "INTERNAL_ERROR"
    assert "secret" not in str(error)
    assert error["data"]["incident"] in caplog.text
    assert isinstance(await rpc.call("system.get_timestamp"), int)
