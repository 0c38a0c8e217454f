"""The modem pool: devices, SIMs, the send queue, reports and incoming messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pool import ModemPool, SimSlot

if TYPE_CHECKING:
    from ..gateway import Gateway

__all__ = ["ModemPool", "SimSlot", "attach"]


def attach(gw: "Gateway") -> ModemPool:
    gw.pool = ModemPool(gw)
    return gw.pool
