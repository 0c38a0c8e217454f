"""The modem pool: devices, SIMs, the send queue, reports and incoming messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pool import ModemPool, SimSlot

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["ModemPool", "SimSlot", "attach"]


class _Absent:
    """API-only processes (role ``api``) run no modems."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def attach(gw: "Gateway") -> "ModemPool | _Absent":
    if gw.settings.role != "all":
        return _Absent()
    gw.pool = ModemPool(gw)
    return gw.pool
