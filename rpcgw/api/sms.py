"""``sms.*``: CALLR's SMS service plus SmsGateway24's batch and search."""

from __future__ import annotations

from typing import Any

from .. import errors
from ..rpc import Context, registry


@registry.method("sms.send")
async def send(ctx: Context, sender: str, to: str, text: str, options: Any) -> str:
    service = ctx.gw.messages
    return await service.send(service.build(ctx.principal, sender, to, text, options))


@registry.method("sms.send_batch")
async def send_batch(ctx: Context, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per recipient, in order; a failed item does not fail the others."""
    service = ctx.gw.messages
    results: list[dict[str, Any]] = []
    accepted: list[tuple[int, Any]] = []
    check_item = ctx.gw.dispatcher.batch_item
    for index, item in enumerate(items):
        try:
            check_item(item, param="items", field=f"items[{index}]")
        except errors.InvalidParams as exc:
            to = item.get("to")
            results.append({"index": index, "to": to if isinstance(to, str) else "",
                            "error": exc.to_error()})
            continue
        recipients = item["to"]
        if isinstance(recipients, str):
            recipients = [r for r in recipients.split(",") if r.strip()]
        if not recipients:
            results.append({"index": index, "to": "", "error": errors.InvalidParams(
                "no recipient", param="items", field=f"items[{index}].to").to_error()})
        for to in recipients:
            slot = len(results)
            results.append({"index": index, "to": to})
            try:
                message = service.build(ctx.principal, item.get("from", ""), to,
                                        item["text"], item.get("options"))
            except errors.RpcgwError as exc:
                if isinstance(exc, errors.InvalidParams):
                    inner = exc.data.get("field") or exc.data.get("param")
                    exc.data["param"] = "items"
                    exc.data["field"] = f"items[{index}].{inner}"
                results[slot]["error"] = exc.to_error()
                continue
            results[slot]["to"] = message.recipient
            accepted.append((slot, message))
    if len(results) > ctx.gw.settings.max_batch_calls:
        raise errors.InvalidParams(
            f"at most {ctx.gw.settings.max_batch_calls} messages per batch", param="items")
    if accepted:
        hashes = await service.send_many([m for _, m in accepted])
        for (slot, _), sms_hash in zip(accepted, hashes):
            results[slot]["hash"] = sms_hash
    return results


@registry.method("sms.get")
async def get(ctx: Context, sms_hash: str) -> dict[str, Any]:
    return await ctx.gw.messages.get(ctx.principal, sms_hash)


@registry.method("sms.get_list")
async def get_list(ctx: Context, sms_type: str, date_from: str,
                   date_to: str) -> list[dict[str, Any]]:
    return await ctx.gw.messages.get_list(ctx.principal, sms_type, date_from, date_to)


@registry.method("sms.search")
async def search(ctx: Context, filters: dict[str, Any] | None) -> dict[str, Any]:
    return await ctx.gw.messages.search(ctx.principal, filters or {})


@registry.method("sms.cancel")
async def cancel(ctx: Context, sms_hash: str) -> bool:
    return await ctx.gw.messages.cancel(ctx.principal, sms_hash)


@registry.method("sms.get_count_for_body")
async def get_count_for_body(ctx: Context, text: str,
                             force_encoding: str | None) -> dict[str, Any]:
    return ctx.gw.messages.count_for_body(text, force_encoding)
