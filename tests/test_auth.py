"""Authentication: Basic with a safe cache, API keys, sessions, Login-As, lockout."""

from __future__ import annotations

import asyncio
from typing import Any

from rpcgw.models import User

from rpcgw.app import GATEWAY

from .conftest import ADMIN, ALICE, BOB, RpcClient, basic, password_hash

TO = "+33612345678"


async def test_api_key_lifecycle(rpc: RpcClient) -> None:
    key = await rpc.call("api-key.create", "ci")
    assert len(key["token"]) == 100 and key["name"] == "ci"
    auth = f"Api-Key {key['token']}"
    sms_hash = await rpc.call("sms.send", "", TO, "via key", None, auth=auth)
    assert (await rpc.call("sms.get", sms_hash))["hash"] == sms_hash  # same user
    listed = await rpc.call("api-key.all")
    assert [k["id"] for k in listed] == [key["id"]] and "token" not in listed[0]
    assert await rpc.call("api-key.all", auth=basic(*BOB)) == []
    assert (await rpc.error("api-key.delete", key["id"], auth=basic(*BOB)))["message"] == \
        "NOT_FOUND"
    assert await rpc.call("api-key.delete", key["id"]) is True
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                      "system.get_timestamp"}, auth=auth)
    assert status == 401 and body["error"]["message"] == "AUTHENTICATION_FAILED"


async def test_session_lifecycle(rpc: RpcClient) -> None:
    session = await rpc.call("session.create")
    assert len(session["token"]) == 40 and session["refresh_token"]
    auth = f"Session {session['token']}"
    assert isinstance(await rpc.call("system.get_timestamp", auth=auth), int)
    listed = await rpc.call("session.all", auth=auth)
    assert [s["current"] for s in listed] == [True]
    renewed = await rpc.call("session.refresh", session["refresh_token"])
    assert renewed["token"] != session["token"]
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"}, auth=auth)
    assert status == 401  # the old token stopped working at once
    new_auth = f"Session {renewed['token']}"
    assert (await rpc.error("session.refresh", session["refresh_token"]))["message"] == \
        "NOT_FOUND"
    assert await rpc.call("session.delete", auth=new_auth) is True
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"}, auth=new_auth)
    assert status == 401


async def test_expired_session_is_refused(gateway_factory: Any, sqlite_url: str) -> None:
    _, rpc = await gateway_factory(sqlite_url, session_seconds=0.5)
    session = await rpc.call("session.create")
    await asyncio.sleep(0.7)
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                      "system.get_timestamp"},
                                     auth=f"Session {session['token']}")
    assert status == 401


async def test_login_as(rpc: RpcClient) -> None:
    admin = basic(*ADMIN)
    for header in ("user.login alice", "User.login alice", "USER.LOGIN alice"):
        sms_hash = await rpc.call("sms.send", "", TO, "on behalf", None, auth=admin,
                                  headers={"callr-login-as": header})
        assert (await rpc.call("sms.get", sms_hash))["hash"] == sms_hash  # alice owns it
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 5, "method": "sms.send",
                                      "params": ["", TO, "x", None]},
                                     headers={"CALLR-Login-As": "user.login bob"})
    assert status == 403 and body["error"]["message"] == "PERMISSION_DENIED"
    assert body["id"] == 5
    status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 5, "method": "sms.send",
                                      "params": ["", TO, "x", None]}, auth=admin,
                                     headers={"CALLR-Login-As": "user.login nobody"})
    assert status == 403
    assert (await rpc.call("sms.search", {"count_only": True}, auth=basic(*BOB)))["count"] == 0


async def test_admin_only_methods(rpc: RpcClient) -> None:
    error = await rpc.error("users.get_list")
    assert error["message"] == "PERMISSION_DENIED"
    users = await rpc.call("users.get_list", auth=basic(*ADMIN))
    assert [u["login"] for u in users] == ["admin", "alice", "bob"]
    created = await rpc.call("users.create", "carol", "carol-password", None,
                             auth=basic(*ADMIN))
    assert created["login"] == "carol" and created["admin"] is False
    assert isinstance(await rpc.call("system.get_timestamp",
                                     auth=basic("carol", "carol-password")), int)
    duplicate = await rpc.error("users.create", "carol", "carol-password",
                                auth=basic(*ADMIN))
    assert duplicate["message"] == "ALREADY_EXISTS"


async def test_password_change_invalidates_the_cache_at_once(rpc: RpcClient) -> None:
    assert isinstance(await rpc.call("system.get_timestamp"), int)  # now cached
    await rpc.call("users.update", "alice", {"password": "a-new-password"},
                   auth=basic(*ADMIN))
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"})
    assert status == 401
    assert await rpc.call("system.get_timestamp", auth=basic("alice", "a-new-password"))
    await rpc.call("users.update", "alice", {"enabled": False}, auth=basic(*ADMIN))
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"},
                                  auth=basic("alice", "a-new-password"))
    assert status == 401


async def test_cached_logins_skip_scrypt_and_a_wrong_password_does_not_evict(
        gw_rpc: Any) -> None:
    gw, rpc = gw_rpc
    await rpc.call("system.get_timestamp")
    hashed = gw.auth.kdf_calls
    for _ in range(20):
        await rpc.call("system.get_timestamp")
    assert gw.auth.kdf_calls == hashed  # scrypt ran once, not per call
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"}, auth=basic("alice", "guess"))
    assert status == 401 and gw.auth.kdf_calls == hashed + 1
    assert isinstance(await rpc.call("system.get_timestamp"), int)
    assert gw.auth.kdf_calls == hashed + 1


async def test_repeated_failures_lock_the_login(gw_rpc: Any) -> None:
    gw, rpc = gw_rpc
    wrong = basic("bob", "wrong-password")
    statuses = []
    for _ in range(7):
        status, body, resp = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                             "system.get_timestamp"}, auth=wrong)
        statuses.append(status)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    assert body["error"]["message"] == "ACCOUNT_LOCKED"
    # Locked: even the right password is refused until the lock ends ...
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"}, auth=basic(*BOB))
    assert status == 429
    # ... but alice, already authenticated, is not affected by bob's lock.
    assert await rpc.call("system.get_timestamp")
    # Unknown logins are throttled the same way, without revealing they do not exist.
    unknown = [(await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "system.get_timestamp"},
                               auth=basic("mallory", "x")))[0] for _ in range(6)]
    assert unknown == [401] * 5 + [429]
    assert await gw.db.read(lambda: User.select().where(User.login == "mallory").count()) == 0


async def test_lock_expires(gateway_factory: Any, sqlite_url: str) -> None:
    _, rpc = await gateway_factory(sqlite_url, login_max_failures=2, login_lock_seconds=0.3)
    for _ in range(2):
        await rpc.post({"jsonrpc": "2.0", "id": 1, "method": "system.get_timestamp"},
                       auth=basic("bob", "nope"))
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"}, auth=basic(*BOB))
    assert status == 429
    await asyncio.sleep(0.4)
    assert await rpc.call("system.get_timestamp", auth=basic(*BOB))


async def test_malformed_authorization_headers(rpc: RpcClient) -> None:
    for header in ("Basic !!!", "Basic " + "YWxpY2U=", "Digest abc", "Api-Key ", "Session x",
                   "Basic " + "OnBhc3M="):
        status, body, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                          "system.get_timestamp"}, auth=header)
        assert status == 401, header
        assert body["error"]["message"] == "AUTHENTICATION_FAILED"


async def test_passwords_are_stored_as_scrypt_hashes(gw_rpc: Any) -> None:
    gw, _ = gw_rpc
    stored = await gw.db.read(lambda: User.get(User.login == ALICE[0]).password_hash)
    assert stored.startswith("scrypt$") and ALICE[1] not in stored


async def test_concurrent_first_calls_share_one_scrypt(gw_rpc: Any) -> None:
    gw, rpc = gw_rpc
    before = gw.auth.kdf_calls
    results = await asyncio.gather(*(rpc.call("system.get_timestamp", auth=basic(*BOB))
                                     for _ in range(30)))
    assert all(isinstance(r, int) for r in results)
    assert gw.auth.kdf_calls == before + 1


async def test_an_expired_entry_is_renewed_without_scrypt_unless_the_user_changed(
        gateway_factory: Any, sqlite_url: str) -> None:
    app, rpc = await gateway_factory(sqlite_url, auth_cache_seconds=0.2)
    gw = app[GATEWAY]
    assert await rpc.call("system.get_timestamp")
    hashed = gw.auth.kdf_calls
    for _ in range(3):
        await asyncio.sleep(0.25)  # expired: renewed by one read, not by scrypt
        results = await asyncio.gather(*(rpc.call("system.get_timestamp") for _ in range(10)))
        assert all(isinstance(r, int) for r in results)
    assert gw.auth.kdf_calls == hashed
    # Another node changes alice's password (the same database, not this process's
    # cache): once the entry expires the old password is checked again, and refused.
    new_hash = password_hash("changed-elsewhere")
    await gw.db.write(lambda: User.update(password_hash=new_hash,
                                          auth_version=User.auth_version + 1)
                      .where(User.login == "alice").execute())
    await asyncio.sleep(0.25)
    status, _, _ = await rpc.post({"jsonrpc": "2.0", "id": 1, "method":
                                   "system.get_timestamp"})
    assert status == 401 and gw.auth.kdf_calls == hashed + 1
    assert await rpc.call("system.get_timestamp", auth=basic("alice", "changed-elsewhere"))
