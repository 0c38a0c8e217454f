"""``api-key.*``, ``session.*`` (CALLR) and ``users.*`` (administrators)."""

from __future__ import annotations

from typing import Any

from ..rpc import Context, registry
from ..services import accounts


@registry.method("api-key.create")
async def api_key_create(ctx: Context, name: str) -> dict[str, Any]:
    return await ctx.gw.accounts.create_api_key(ctx.principal, name)


@registry.method("api-key.all")
async def api_key_all(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.gw.accounts.list_api_keys(ctx.principal)


@registry.method("api-key.delete")
async def api_key_delete(ctx: Context, key_id: int) -> bool:
    return await ctx.gw.accounts.delete_api_key(ctx.principal, key_id)


@registry.method("session.create")
async def session_create(ctx: Context) -> dict[str, Any]:
    return await ctx.gw.accounts.create_session(ctx.principal)


@registry.method("session.refresh")
async def session_refresh(ctx: Context, refresh_token: str) -> dict[str, Any]:
    return await ctx.gw.accounts.refresh_session(ctx.principal, refresh_token)


@registry.method("session.all")
async def session_all(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.gw.accounts.list_sessions(ctx.principal)


@registry.method("session.delete")
async def session_delete(ctx: Context, session_id: int | None) -> bool:
    return await ctx.gw.accounts.delete_session(ctx.principal, session_id)


@registry.method("users.create", admin=True)
async def users_create(ctx: Context, login: str, password: str,
                       admin: bool | None) -> dict[str, Any]:
    accounts.check_login(login)
    password_hash = await ctx.gw.auth.run_kdf(accounts.prepare_password, password)
    user = await ctx.gw.db.write(lambda: accounts.create_user(login, password_hash,
                                                              admin=bool(admin)))
    return accounts.user_object(user)


@registry.method("users.get_list", admin=True)
async def users_get_list(ctx: Context) -> list[dict[str, Any]]:
    return await ctx.gw.db.read(accounts.list_users)


@registry.method("users.update", admin=True)
async def users_update(ctx: Context, login: str, fields: dict[str, Any]) -> dict[str, Any]:
    password_hash = None
    if fields.get("password") is not None:
        password_hash = await ctx.gw.auth.run_kdf(accounts.prepare_password,
                                                  fields["password"])
    user = await ctx.gw.db.write(accounts.update_user, login, fields, password_hash)
    ctx.gw.auth.forget_user(user.id)
    return accounts.user_object(user)
