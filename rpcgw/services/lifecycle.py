"""Status changes of messages: the one place that writes ``status_history`` and tells
whoever listens (event delivery) in the same transaction.

Every change of a message's status, wherever it happens (``sms.send`` queues a message,
``sms.cancel``, a modem worker claims, sends, gets a status report, a message expires,
an incoming message is stored), goes through :func:`record` inside a database writer
job.  Listeners run in that same transaction, so an event can never be lost between a
committed status change and the outbox row that announces it, nor announced for a
change that was rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from ..db import Database


@dataclass(frozen=True, slots=True)
class Change:
    """One status change of one message, as committed."""

    message_id: int
    user_id: int
    direction: str  # "OUT" or "IN"
    old_status: str
    new_status: str
    at: int  # UTC milliseconds
    error: str = ""


#: Called in the writer thread, inside the transaction, with the changes just written.
#: A listener must only touch the database (the job may be re-run after a rollback).
#: Listeners are registered per database (``Database.status_listeners``), so that two
#: gateways in one process (tests) do not hear each other.
Listener = Callable[[list[Change]], None]


def record(db: "Database", changes: Iterable[Change]) -> list[Change]:
    """Writer thread: store the history rows and notify listeners; returns the changes."""
    batch = list(changes)
    if not batch:
        return batch
    db.insert_rows(
        "status_change", ("message_id", "old_status", "new_status", "at", "error"),
        [(c.message_id, c.old_status, c.new_status, c.at, c.error[:255]) for c in batch])
    for listener in db.status_listeners:
        listener(batch)
    return batch


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """A SIM (or its modem) changed state: online, offline, disabled, circuit_open,
    sim_error.  Announced as the ``device.status_update`` event."""

    device_id: int
    sim: int
    old_state: str
    new_state: str
    at: int
    detail: str = ""


def record_device(db: "Database", changes: Iterable[DeviceChange]) -> list[DeviceChange]:
    """Writer thread: notify device listeners inside the transaction that changed the SIM."""
    batch = list(changes)
    for listener in db.device_listeners:
        listener(batch)
    return batch
