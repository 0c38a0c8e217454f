"""Devices and their SIMs as the API shows them (SmsGateway24's device list fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from peewee import fn

from .. import errors, status as st
from ..models import Device, Message, Sim, now_ms
from ..pool.config import LIMIT_KEYS, ConfigError, Limits
from ..timefmt import fmt_ms

if TYPE_CHECKING:
    from ..gateway import Gateway


def _midnight_ms() -> int:
    now = now_ms()
    return now - now % 86_400_000


def _counters(device_id: int) -> dict[tuple[int, str], int]:
    """Per (slot, kind) counts since midnight UTC: sent, failed, received."""
    since = _midnight_ms()
    counts: dict[tuple[int, str], int] = {}
    rows = (Message.select(Message.sent_sim, Message.direction, Message.status,
                           fn.COUNT(Message.id).alias("n"))
            .where(Message.sent_device_id == device_id, Message.updated_at >= since)
            .group_by(Message.sent_sim, Message.direction, Message.status).tuples())
    for slot, direction, status, n in rows:
        if direction == "IN":
            kind = "received"
        elif status in (st.SENT, st.DELIVERED):
            kind = "sent"
        elif status in (st.FAILED, st.ERROR):
            kind = "failed"
        else:
            continue
        counts[(slot, kind)] = counts.get((slot, kind), 0) + n
    return counts


def _queue_depth(device_id: int) -> int:
    return Message.select().where(Message.status == st.PENDING,
                                  (Message.device_id == device_id)).count()


def device_objects(gw: "Gateway", device_id: int | None = None) -> list[dict[str, Any]]:
    """Reader thread: the device list, with runtime state from the pool when it runs."""
    query = Device.select().order_by(Device.id)
    if device_id is not None:
        query = query.where(Device.id == device_id)
    pool = gw.pool
    out = []
    for device in query:
        sims = list(Sim.select().where(Sim.device == device.id).order_by(Sim.slot))
        counters = _counters(device.id)
        overrides = orjson.loads(device.overrides or "{}")
        siminfo = []
        for sim in sims:
            runtime = pool.slot_runtime(device.id, sim.slot) if pool is not None else None
            limits = runtime.gate.limits.as_dict() if runtime is not None else \
                Limits().merged(overrides.get("limits") or {}).as_dict()
            siminfo.append({
                "slot": sim.slot, "iccid": sim.iccid, "imsi": sim.imsi, "number": sim.number,
                "operator": sim.operator, "country": sim.country, "roaming": sim.roaming,
                "signal": sim.signal_dbm, "registration": sim.registration,
                "state": runtime.state if runtime is not None else sim.state,
                "state_detail": runtime.detail if runtime is not None else sim.state_detail,
                "port": sim.port, "limits": limits,
                "sent_today": counters.get((sim.slot, "sent"), 0),
                "failed_today": counters.get((sim.slot, "failed"), 0),
                "received_today": counters.get((sim.slot, "received"), 0),
                "last_seen": fmt_ms(sim.last_seen_at),
            })
        states = {s["state"] for s in siminfo}
        state = ("disabled" if not device.enabled else "online" if "online" in states
                 else "circuit_open" if "circuit_open" in states else "offline")
        out.append({
            "id": device.id, "name": device.name, "title": device.title,
            "imei": device.imei, "serialnumber": device.serial_number,
            "manufacturer": device.manufacturer, "model": device.model,
            "firmware": device.firmware, "simulated": device.simulated,
            "enabled": device.enabled, "state": state,
            "created": fmt_ms(device.created_at), "lastseen": fmt_ms(device.last_seen_at),
            "siminfo": siminfo, "queue_depth": _queue_depth(device.id),
            "sent_today": sum(s["sent_today"] for s in siminfo),
            "failed_today": sum(s["failed_today"] for s in siminfo),
            "received_today": sum(s["received_today"] for s in siminfo),
        })
    return out


def update_device(device_id: int, fields: dict[str, Any]) -> None:
    """Writer thread: store title, enabled and limit overrides (they win over the file)."""
    device = Device.get_or_none(Device.id == device_id)
    if device is None:
        raise errors.NotFound(f"no device {device_id}", param="id")
    overrides = orjson.loads(device.overrides or "{}")
    if "title" in fields:
        device.title = fields["title"]
    if "enabled" in fields:
        device.enabled = bool(fields["enabled"])
    if "limits" in fields:
        limits = {k: v for k, v in (fields["limits"] or {}).items() if k in LIMIT_KEYS}
        try:
            Limits().merged(limits)
        except ConfigError as exc:
            raise errors.InvalidParams(str(exc), param="fields", field="fields.limits") from None
        overrides["limits"] = {**overrides.get("limits", {}), **limits}
    device.overrides = orjson.dumps(overrides).decode()
    device.save()
