"""``contacts.*``: contact lists (SmsGateway24's tags), contacts, imports and opt-outs."""

from __future__ import annotations

from typing import Any

from ..contacts import contacts_of
from ..rpc import Context, registry


@registry.method("contacts.lists.create")
async def create_list(ctx: Context, title: str) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.create_list(ctx.principal, title)


@registry.method("contacts.lists.get_list")
async def get_lists(ctx: Context) -> list[dict[str, Any]]:
    return await contacts_of(ctx.gw).contacts.get_lists(ctx.principal)


@registry.method("contacts.lists.update")
async def update_list(ctx: Context, list_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.update_list(ctx.principal, list_id, fields)


@registry.method("contacts.lists.delete")
async def delete_list(ctx: Context, list_id: int) -> bool:
    return await contacts_of(ctx.gw).contacts.delete_list(ctx.principal, list_id)


@registry.method("contacts.create")
async def create(ctx: Context, contact: dict[str, Any]) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.create(ctx.principal, contact)


@registry.method("contacts.update")
async def update(ctx: Context, contact_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.update(ctx.principal, contact_id, fields)


@registry.method("contacts.get")
async def get(ctx: Context, contact_id: int) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.get(ctx.principal, contact_id)


@registry.method("contacts.search")
async def search(ctx: Context, filters: dict[str, Any] | None) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.search(ctx.principal, filters or {})


@registry.method("contacts.delete")
async def delete(ctx: Context, contact_id: int) -> bool:
    return await contacts_of(ctx.gw).contacts.delete(ctx.principal, contact_id)


@registry.method("contacts.import")
async def import_rows(ctx: Context, list_id: int,
                      rows: list[dict[str, Any]]) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.import_rows(ctx.principal, list_id, rows)


@registry.method("contacts.optouts.get_list")
async def get_optouts(ctx: Context) -> list[dict[str, Any]]:
    return await contacts_of(ctx.gw).contacts.get_optouts(ctx.principal)


@registry.method("contacts.optouts.create")
async def create_optout(ctx: Context, phone: str) -> dict[str, Any]:
    return await contacts_of(ctx.gw).contacts.opt_out(ctx.principal, phone)


@registry.method("contacts.optouts.delete")
async def delete_optout(ctx: Context, phone: str) -> bool:
    return await contacts_of(ctx.gw).contacts.opt_in(ctx.principal, phone)
