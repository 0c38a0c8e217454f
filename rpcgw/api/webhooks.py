"""``webhooks.*``: CALLR's webhook subscriptions, plus delivery history, redelivery and
test deliveries."""

from __future__ import annotations

from typing import Any

from ..events import events_of
from ..rpc import Context, registry


@registry.method("webhooks.subscribe")
async def subscribe(ctx: Context, event_type: str, endpoint: str,
                    options: Any) -> dict[str, Any]:
    return await events_of(ctx.gw).service.subscribe(ctx.principal, event_type, endpoint,
                                                     options)


@registry.method("webhooks.unsubscribe")
async def unsubscribe(ctx: Context, webhook_hash: str) -> bool:
    return await events_of(ctx.gw).service.unsubscribe(ctx.principal, webhook_hash)


@registry.method("webhooks.get")
async def get(ctx: Context, webhook_hash: str) -> dict[str, Any]:
    return await events_of(ctx.gw).service.get_webhook(ctx.principal, webhook_hash)


@registry.method("webhooks.get_list")
async def get_list(ctx: Context) -> list[dict[str, Any]]:
    return await events_of(ctx.gw).service.list_webhooks(ctx.principal)


@registry.method("webhooks.update")
async def update(ctx: Context, webhook_hash: str, fields: dict[str, Any]) -> dict[str, Any]:
    return await events_of(ctx.gw).service.update_webhook(ctx.principal, webhook_hash,
                                                          fields)


@registry.method("webhooks.get_event_types")
async def get_event_types(ctx: Context) -> list[str]:
    return events_of(ctx.gw).service.event_types()


@registry.method("webhooks.get_deliveries")
async def get_deliveries(ctx: Context, filters: dict[str, Any] | None) -> dict[str, Any]:
    return await events_of(ctx.gw).service.get_deliveries(ctx.principal, filters or {})


@registry.method("webhooks.redeliver")
async def redeliver(ctx: Context, event_id: str) -> int:
    return await events_of(ctx.gw).service.redeliver(ctx.principal, event_id)


@registry.method("webhooks.test")
async def test(ctx: Context, endpoint: str, event_type: str,
               options: Any) -> dict[str, Any]:
    return await events_of(ctx.gw).service.test_webhook(ctx.principal, endpoint, event_type,
                                                        options)
