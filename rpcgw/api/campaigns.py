"""``campaigns.*``: SmsGateway24's newsletters, with progress, pause, resume and cancel."""

from __future__ import annotations

from typing import Any

from ..contacts import contacts_of
from ..rpc import Context, registry


@registry.method("campaigns.create")
async def create(ctx: Context, campaign: dict[str, Any]) -> dict[str, Any]:
    return await contacts_of(ctx.gw).campaigns.create(ctx.principal, campaign)


@registry.method("campaigns.get")
async def get(ctx: Context, campaign_id: int) -> dict[str, Any]:
    return await contacts_of(ctx.gw).campaigns.get(ctx.principal, campaign_id)


@registry.method("campaigns.get_list")
async def get_list(ctx: Context) -> list[dict[str, Any]]:
    return await contacts_of(ctx.gw).campaigns.get_list(ctx.principal)


@registry.method("campaigns.pause")
async def pause(ctx: Context, campaign_id: int) -> dict[str, Any]:
    return await contacts_of(ctx.gw).campaigns.pause(ctx.principal, campaign_id)


@registry.method("campaigns.resume")
async def resume(ctx: Context, campaign_id: int) -> dict[str, Any]:
    return await contacts_of(ctx.gw).campaigns.resume(ctx.principal, campaign_id)


@registry.method("campaigns.cancel")
async def cancel(ctx: Context, campaign_id: int) -> dict[str, Any]:
    return await contacts_of(ctx.gw).campaigns.cancel(ctx.principal, campaign_id)
