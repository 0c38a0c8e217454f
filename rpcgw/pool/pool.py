"""The modem pool: every accepted message sent by one SIM, once, in order, with its report.

Theory of operation
-------------------
Each configured port is a **SIM slot** (:class:`SimSlot`) driven by a
:class:`~rpcgw.gsm.modem.ModemSupervisor` that keeps the modem open, resets it when it
wedges and hands over incoming messages and status reports.

One **dispatcher** task decides what is sent where.  It wakes when messages are queued
(``MessageService.on_queued``), when a SIM finishes a send or changes state, when a rate
limit opens, and at least every ``pool_poll_seconds`` (other processes or nodes may have
queued messages).  It lists the SIMs that may send now (modem ready, circuit closed, not
full, within their limits and working hours), and claims one due message per free SIM in
one database job (``store.claim``: priority first, then age; pinned messages only go to
their device/slot; a retry prefers another SIM; otherwise the SIM with the fewest sends in
the last hour, then the best signal).  Each claim starts a send on that SIM.

A **send** encodes the PDUs (all parts on the same SIM, back to back), sends them, and
records the outcome before the SIM is free again, so that a status report, however fast,
finds its parts (a report that still arrives first is parked in ``unmatched_report`` and
applied by ``store.mark_sent``).  The same database job claims that SIM's next message
when it may send again at once, so a busy SIM costs one database round trip per message,
not two (the dispatcher's claim would be the second; measured: 0.81 → 0.95 of the sum
of eight fast modems).  Failures are classified by the GSM layer:

* permanent (bad number, barred): ERROR at once, the SIM is not blamed;
* temporary or the SIM's fault (``+CMS ERROR`` 38/42/331, no network, modem gone, a
  timeout before the PDU was written): back to the queue with backoff, on another SIM if
  there is one, up to ``pool_max_attempts``;
* outcome unknown (the modem stopped answering after the PDU was written): requeued, so a
  message is never lost; it may reach the recipient twice (at-least-once), and the
  history says so;
* our bug (bad PDU): ERROR, never retried unchanged.

SIM-attributable failures in a row open the SIM's **circuit** for a cool-down that
doubles each time; after it one probe send decides.  Every state change of a SIM is
recorded and announced (``device.status_update``).

Incoming messages are committed (``MessageService.store_incoming``; long ones reassembled
in ``incoming_part``) before the driver deletes them from the modem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import status as st
from ..gsm import pdu
from ..gsm.errors import Retry, result_info
from ..gsm.modem import (CommandError, IncomingSms, ModemConfig, ModemError, ModemState,
                         ModemSupervisor, ModemUnavailable, SendUnknown, StateChange,
                         StatusReport)
from ..models import Device, Message, Sim, User, now_ms
from ..services import lifecycle
from ..services.lifecycle import DeviceChange
from ..services.messages import Incoming
from . import store
from .config import DeviceSpec, Limits, PortSpec, RateGate, parse_devices
from .store import Job, SlotView

if TYPE_CHECKING:
    from ..gateway import Gateway
    from ..gsm.simulator import SimulatorHost

log = logging.getLogger("rpcgw.pool")


@dataclass
class SimSlot:
    """Runtime state of one SIM slot."""

    spec: DeviceSpec
    port: PortSpec
    device_id: int
    sim_id: int
    supervisor: ModemSupervisor | None = None
    #: The claimed message waiting for this SIM's worker.
    inbox: asyncio.Queue[Job] = field(default_factory=asyncio.Queue)
    worker: asyncio.Task[None] | None = None
    enabled: bool = True
    state: str = "offline"  # online, offline, disabled, circuit_open, sim_error
    detail: str = ""
    number: str = ""
    signal_dbm: int | None = None
    #: Messages assigned to this SIM and not finished (0 or 1).
    assigned: int = 0
    gate: RateGate = field(default_factory=lambda: RateGate(Limits()))
    failures_in_row: int = 0
    circuit_until: float = 0.0
    circuit_cooldown: float = 0.0
    probing: bool = False
    concat_reference: int = field(default_factory=lambda: random.randrange(256))
    sent: int = 0
    failed: int = 0
    received: int = 0

    @property
    def name(self) -> str:
        return self.spec.name if len(self.spec.ports) == 1 else \
            f"{self.spec.name}.{self.port.slot}"

    def ready(self) -> bool:
        sup = self.supervisor
        return (self.enabled and sup is not None and sup.state is ModemState.READY)

    def next_reference(self) -> int:
        self.concat_reference = (self.concat_reference + 1) % 256
        return self.concat_reference


class ModemPool:
    """Component started by the gateway (``FEATURES``); see the module docstring."""

    def __init__(self, gw: "Gateway") -> None:
        self.gw = gw
        self.db = gw.db
        self.settings = gw.settings
        self.node = self.settings.node_name or socket.gethostname()
        self.slots: dict[int, SimSlot] = {}  # by Sim.id
        self.simulator: "SimulatorHost | None" = None
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._maintainer: asyncio.Task[None] | None = None
        self._stopping = False
        self._owners: dict[int, int] = {}
        self.last_maintenance: dict[str, int] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        specs = parse_devices(self.settings.extra.get("devices"))
        if not specs and self.settings.simulated_modems > 0:
            specs = await self._start_simulator(self.settings.simulated_modems)
        admin_id = await self.db.read(_first_admin_id)
        for spec in specs:
            for port in spec.ports:
                device_id, sim_id, overrides, enabled = await self.db.write(
                    _sync_slot, spec, port, self.node, admin_id)
                slot = SimSlot(spec, port, device_id, sim_id)
                self._apply_overrides(slot, overrides, enabled)
                slot.gate.preload(await self.db.read(_recent_sends, device_id, port.slot))
                self.slots[sim_id] = slot
        self._owners = await self.db.read(_device_owners, admin_id)
        released = await self.db.write(store.release_own_leases, self.db, self.node, now_ms())
        if released:
            log.warning("%d messages this node was sending when it stopped are queued again",
                        released)
        for slot in self.slots.values():
            slot.worker = asyncio.create_task(self._worker(slot), name=f"sim {slot.name}")
            if slot.enabled:
                await self._start_supervisor(slot)
        self.gw.messages.on_queued.append(self.wake)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="pool dispatcher")
        self._maintainer = asyncio.create_task(self._maintain_loop(), name="pool maintenance")

    async def stop(self) -> None:
        self._stopping = True
        if self.wake in self.gw.messages.on_queued:
            self.gw.messages.on_queued.remove(self.wake)
        for task in (self._dispatcher, self._maintainer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # Messages claimed but not started go back to the queue; sends in progress may
        # finish (their outcome must be recorded), briefly.
        for slot in self.slots.values():
            with contextlib.suppress(Exception):
                await self._release_inbox(slot, "the gateway stopped before sending")
        deadline = time.monotonic() + self.settings.pool_stop_seconds
        while any(s.assigned for s in self.slots.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for worker in [s.worker for s in self.slots.values() if s.worker is not None]:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        for slot in self.slots.values():
            if slot.supervisor is not None:
                await slot.supervisor.stop()
        if self.simulator is not None:
            await self.simulator.stop()

    def wake(self) -> None:
        self._wake.set()

    async def _start_simulator(self, count: int) -> list[DeviceSpec]:
        from ..gsm.simulator import SimulatorHost, VirtualNetwork, make_configs
        options = dict(self.settings.extra.get("simulator") or {})
        delay = options.pop("delivery_delay", (0.5, 1.0))
        network = VirtualNetwork(delivery_delay=tuple(delay) if isinstance(delay, list)
                                 else delay)
        accept_delay = float(options.pop("accept_delay", 0.05))
        configs = make_configs(count, accept_delay=accept_delay)
        self.simulator = SimulatorHost(network, configs, transport="pty")
        infos = await self.simulator.start()
        specs = []
        for info in infos:
            specs.append(DeviceSpec(
                name=info.name, title=f"Simulated modem {info.name} ({info.number})",
                ports=(PortSpec(info.url, 0, Limits()),), simulated=True,
                modem_options={"send_timeout": 10.0, "health_interval": 30.0}))
        log.info("started %d simulated modems: %s", len(infos),
                 ", ".join(f"{i.name} {i.number}" for i in infos))
        return specs

    async def _start_supervisor(self, slot: SimSlot) -> None:
        options = dict(slot.spec.modem_options)
        config = ModemConfig(name=slot.name, url=slot.port.url, pin=slot.spec.pin, **options)
        slot.supervisor = ModemSupervisor(
            config,
            on_message=lambda sms, s=slot: self._on_message(s, sms),
            on_status_report=lambda report, s=slot: self._on_report(s, report),
            on_state=lambda change, s=slot: self._on_state(s, change),
            hard_reset=self._hard_reset_for(slot))
        await slot.supervisor.start()

    def _hard_reset_for(self, slot: SimSlot) -> Any:
        if self.simulator is None:
            return None

        async def power_cycle() -> None:
            assert self.simulator is not None
            await self.simulator.power_cycle(slot.spec.name)
        return power_cycle

    def _apply_overrides(self, slot: SimSlot, overrides: dict[str, Any], enabled: bool) -> None:
        slot.enabled = enabled
        sim_overrides = (overrides.get("sims") or {}).get(str(slot.port.slot), {})
        limits = slot.port.limits.merged(overrides.get("limits") or {}).merged(sim_overrides)
        slot.gate.limits = limits

    # -- dispatching ---------------------------------------------------------------------

    def _free_slots(self, now: float) -> tuple[list[SimSlot], float]:
        free, next_check = [], self.settings.pool_poll_seconds
        for slot in self.slots.values():
            if not slot.ready():
                continue
            if slot.circuit_until:
                if now < slot.circuit_until:
                    next_check = min(next_check, slot.circuit_until - now)
                    continue
                slot.probing = True  # half-open: one send decides
            # One message at a time per SIM: claiming ahead would let an OTP queued a
            # moment later wait behind it (measured: no throughput gain either).
            if slot.assigned:
                continue
            wait = slot.gate.wait(now)
            if wait > 0:
                next_check = min(next_check, wait)
                continue
            free.append(slot)
        return free, max(0.01, next_check)

    @staticmethod
    def _view(slot: SimSlot, now: float) -> SlotView:
        return SlotView(slot.sim_id, slot.device_id, slot.port.slot, slot.number,
                        (slot.gate.sent_within(3600, now), -(slot.signal_dbm or -120)))

    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = time.time()
            free, timeout = self._free_slots(now)
            if free:
                views = [self._view(s, now) for s in free]
                lease_ms = int(self.settings.pool_lease_seconds * 1000)
                try:
                    claimed = await self.db.write(store.claim, self.db, self.node, views,
                                                  now_ms(), lease_ms)
                except Exception:  # noqa: BLE001 - the database may be down: try again
                    log.exception("claiming messages failed")
                    claimed = []
                for job, sim_id in claimed:
                    slot = self.slots[sim_id]
                    slot.assigned += 1
                    slot.inbox.put_nowait(job)
                if claimed and len(claimed) == len(free):
                    continue  # every free SIM got work: look again at once
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _worker(self, slot: SimSlot) -> None:
        """Sends the messages claimed for one SIM, one after the other."""
        while True:
            job = await slot.inbox.get()
            try:
                if not slot.ready() or (slot.circuit_until and not slot.probing):
                    await self._record(store.release, self.db, [job], now_ms(),
                                       f"{slot.name} became unavailable before sending")
                    continue
                wait = slot.gate.wait(time.time())
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._send(slot, job)
            finally:
                slot.assigned -= 1
                self.wake()

    async def _release_inbox(self, slot: SimSlot, reason: str) -> None:
        jobs = []
        while not slot.inbox.empty():
            jobs.append(slot.inbox.get_nowait())
        if jobs:
            slot.assigned -= len(jobs)
            await self._record(store.release, self.db, jobs, now_ms(), reason)
            self.wake()

    async def _send(self, slot: SimSlot, job: Job) -> None:
        now = time.time()
        try:
            validity = None
            if job.expires_at:
                validity = max(5, int((job.expires_at / 1000 - now) / 60))
            parts = pdu.encode_submit(job.recipient, job.text, encoding=job.encoding,
                                      status_report=True, validity_minutes=validity,
                                      flash=job.flash,
                                      concat_reference=slot.next_reference())
            assert slot.supervisor is not None
            slot.gate.note_send(now)
            references = await slot.supervisor.send_pdus(parts)
        except CommandError as exc:
            info = exc.info
            blame_sim = info.retry in (Retry.TEMPORARY, Retry.MODEM)
            await self._failed(slot, job, retry=blame_sim, blame_sim=blame_sim,
                               error=f"{info.kind} ERROR {info.code}: {info.description}",
                               code=int(info.status_code), info=result_info(info))
        except SendUnknown as exc:
            await self._failed(slot, job, retry=True, blame_sim=True,
                               error=f"outcome unknown, sent again: {exc}", code=9,
                               info="[9] Outcome unknown")
        except (ModemUnavailable, ModemError) as exc:
            await self._failed(slot, job, retry=True, blame_sim=True,
                               error=f"modem failure before sending: {exc}", code=9,
                               info="[9] Modem failure")
        except Exception as exc:  # noqa: BLE001 - e.g. a text the PDU codec refuses
            log.exception("sending message %d failed", job.id)
            await self._failed(slot, job, retry=False, blame_sim=False,
                               error=f"cannot encode the message: {exc}", code=11,
                               info="[11] Null PDU")
        else:
            # Claim this SIM's next message in the same transaction when it may send again
            # at once (no pause to keep, not a probe, still ready).
            done = time.time()
            chain = (slot.ready() and not slot.probing and not slot.circuit_until
                     and slot.gate.wait(done) == 0 and not self._stopping)
            next_job = await self._record(
                store.mark_sent_and_claim, self.db, job, slot.device_id, slot.port.slot,
                slot.number, references, now_ms(), self.node,
                self._view(slot, done) if chain else None,
                int(self.settings.pool_lease_seconds * 1000))
            slot.sent += 1
            await self._sim_succeeded(slot)
            if next_job is not None:
                slot.assigned += 1
                slot.inbox.put_nowait(next_job)

    async def _record(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """A send's outcome must reach the database: retry while it is unreachable."""
        delay = 0.2
        while True:
            try:
                return await self.db.write(fn, *args, **kwargs)
            except Exception:  # noqa: BLE001
                if self._stopping:
                    raise
                log.exception("recording a send outcome failed; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _failed(self, slot: SimSlot, job: Job, *, retry: bool, blame_sim: bool,
                      error: str, code: int, info: str) -> None:
        s = self.settings
        backoff = min(s.pool_retry_seconds * 2 ** max(0, job.attempts - 1),
                      s.pool_retry_max_seconds)
        outcome = await self._record(store.retry_or_fail, self.db, job, now_ms(),
                                     retry=retry, error=error, error_code=code,
                                     result_info=info, max_attempts=s.pool_max_attempts,
                                     backoff_ms=int(backoff * 1000))
        log.info("message %d on %s: %s (%s)", job.id, slot.name, error, outcome.lower())
        if outcome == st.ERROR:
            slot.failed += 1
        if blame_sim:
            await self._sim_failed(slot, error)

    async def _sim_succeeded(self, slot: SimSlot) -> None:
        slot.failures_in_row = 0
        slot.probing = False
        if slot.circuit_until:
            slot.circuit_until = 0.0
            slot.circuit_cooldown = 0.0
            await self._set_state(slot, "online", "probe send succeeded")

    async def _sim_failed(self, slot: SimSlot, error: str) -> None:
        s = self.settings
        slot.failures_in_row += 1
        if slot.probing or slot.failures_in_row >= s.circuit_failures:
            slot.circuit_cooldown = min(max(s.circuit_cooldown_seconds,
                                            slot.circuit_cooldown * 2),
                                        s.circuit_cooldown_max_seconds)
            slot.circuit_until = time.time() + slot.circuit_cooldown
            slot.probing = False
            await self._set_state(slot, "circuit_open",
                                  f"{slot.failures_in_row} failures in a row, last: {error}; "
                                  f"retried in {slot.circuit_cooldown:.0f} s")
            await self._release_inbox(slot, f"{slot.name} was taken out of rotation")

    # -- events from the modems ----------------------------------------------------------

    async def _on_state(self, slot: SimSlot, change: StateChange) -> None:
        info = change.info
        if info is not None:
            slot.number = info.number or slot.number or self._simulated_number(slot)
            slot.signal_dbm = info.signal_dbm
            await self.db.write(_save_identity, slot.device_id, slot.sim_id, info,
                                slot.number)
        new = {ModemState.READY: "online", ModemState.FAILED: "sim_error"}.get(
            change.new, "offline")
        if not slot.enabled:
            new = "disabled"
        if new == "online" and slot.circuit_until:
            new = "circuit_open"
        await self._set_state(slot, new, change.reason)
        if new != "online":
            await self._release_inbox(slot, f"{slot.name} is {new}")
        self.wake()

    def _simulated_number(self, slot: SimSlot) -> str:
        if self.simulator is None:
            return ""
        modem = self.simulator.modems.get(slot.spec.name)
        return modem.info.number if modem is not None else ""

    async def _set_state(self, slot: SimSlot, state: str, detail: str) -> None:
        if state == slot.state and detail == slot.detail:
            return
        old, slot.state, slot.detail = slot.state, state, detail
        if old != state:
            log.info("%s: %s -> %s (%s)", slot.name, old, state, detail)
        change = DeviceChange(slot.device_id, slot.port.slot, old, state, now_ms(), detail)
        await self._record(_save_state, self.db, slot.sim_id, change,
                           slot.failures_in_row,
                           int(slot.circuit_until * 1000) if slot.circuit_until else None)

    async def _on_report(self, slot: SimSlot, report: StatusReport) -> None:
        # Raising here keeps the report on the modem for the next sweep (never lost).
        await self.db.write(store.apply_report, self.db, slot.device_id, slot.port.slot,
                            report.reference, report.recipient, report.status, now_ms(),
                            pdu_hex=report.pdu)

    async def _on_message(self, slot: SimSlot, sms: IncomingSms) -> None:
        # Committed before the driver deletes it from the SIM; raising keeps it there.
        now = now_ms()
        sc = int(sms.timestamp.timestamp() * 1000) if sms.timestamp else now
        owner = self._owners.get(slot.device_id, 0)
        concat = sms.concat
        encoding = "UNICODE" if sms.encoding == "UNICODE" else "GSM"
        if concat is not None and getattr(concat, "total", 1) > 1:
            await self.db.write(store.store_part, self.db, self.gw.messages, slot.device_id,
                                slot.port.slot, owner, sms.sender, slot.number,
                                concat.reference, concat.total, concat.seq, sms.text,
                                encoding, sc, now)
        else:
            await self.gw.messages.store_incoming(Incoming(
                device_id=slot.device_id, sim=slot.port.slot, owner_id=owner,
                sender=sms.sender, recipient=slot.number, text=sms.text, encoding=encoding,
                parts=1, sc_timestamp=sc, received_at=now))
        slot.received += 1

    # -- upkeep --------------------------------------------------------------------------

    async def _maintain_loop(self) -> None:
        s = self.settings
        while not self._stopping:
            await asyncio.sleep(s.pool_maintenance_seconds)
            try:
                self.last_maintenance = await self.db.write(
                    store.maintain, self.db, self.node, now_ms(),
                    report_timeout_ms=int(s.report_timeout_hours * 3600 * 1000))
                numbers = {(sl.device_id, sl.port.slot): sl.number for sl in self.slots.values()}
                await self.db.write(store.flush_stale_parts, self.db, self.gw.messages,
                                    now_ms() - int(s.reassembly_timeout_seconds * 1000),
                                    self._owners, numbers)
                await self.db.write(_touch, [sl.sim_id for sl in self.slots.values()
                                             if sl.state == "online"], now_ms())
            except Exception:  # noqa: BLE001 - upkeep must go on
                log.exception("pool maintenance failed")

    # -- administration (devices.*) ------------------------------------------------------

    async def update_device(self, device_id: int, fields: dict[str, Any]) -> None:
        """Apply devices.update to the running SIMs."""
        overrides, enabled = await self.db.read(_device_overrides, device_id)
        for slot in [s for s in self.slots.values() if s.device_id == device_id]:
            was = slot.enabled
            self._apply_overrides(slot, overrides, enabled)
            if was and not enabled:
                await self._release_inbox(slot, f"{slot.name} was disabled")
                if slot.supervisor is not None:
                    await slot.supervisor.stop()
                    slot.supervisor = None
                await self._set_state(slot, "disabled", "disabled by an administrator")
            elif enabled and not was:
                await self._start_supervisor(slot)
        self.wake()

    def slot_runtime(self, device_id: int, slot_number: int) -> SimSlot | None:
        for slot in self.slots.values():
            if slot.device_id == device_id and slot.port.slot == slot_number:
                return slot
        return None


# -- database helpers (reader/writer threads) ----------------------------------------------

def _first_admin_id() -> int:
    user = User.select(User.id).where(User.is_admin == True).order_by(User.id).first()  # noqa: E712
    return user.id if user else 0


def _sync_slot(spec: DeviceSpec, port: PortSpec, node: str,
               admin_id: int) -> tuple[int, int, dict[str, Any], bool]:
    device = Device.get_or_none(Device.name == spec.name)
    if device is None:
        device = Device.create(name=spec.name, title=spec.title, simulated=spec.simulated,
                               owner=_owner_id(spec.owner) or admin_id or None)
    else:
        changed = False
        if spec.title and not device.title:
            device.title, changed = spec.title, True
        if device.owner_id is None and (admin_id or spec.owner):
            device.owner, changed = _owner_id(spec.owner) or admin_id, True
        if changed:
            device.save()
    sim = Sim.get_or_none(Sim.device == device.id, Sim.slot == port.slot)
    if sim is None:
        sim = Sim.create(device=device.id, slot=port.slot, port=port.url, node=node)
    else:
        Sim.update(port=port.url, node=node).where(Sim.id == sim.id).execute()
    return device.id, sim.id, orjson.loads(device.overrides or "{}"), device.enabled


def _owner_id(login: str | None) -> int | None:
    if not login:
        return None
    user = User.get_or_none(User.login == login)
    return user.id if user else None


def _device_owners(admin_id: int) -> dict[int, int]:
    return {d.id: d.owner_id or admin_id for d in Device.select(Device.id, Device.owner)}


def _device_overrides(device_id: int) -> tuple[dict[str, Any], bool]:
    device = Device.get_by_id(device_id)
    return orjson.loads(device.overrides or "{}"), device.enabled


def _recent_sends(device_id: int, slot: int) -> list[float]:
    since = now_ms() - 86400 * 1000
    return [m.sent_at / 1000 for m in Message.select(Message.sent_at).where(
        Message.sent_device_id == device_id, Message.sent_sim == slot,
        Message.sent_at >= since)]


def _save_identity(device_id: int, sim_id: int, info: Any, number: str) -> None:
    now = now_ms()
    Device.update(imei=info.imei or "", manufacturer=info.manufacturer or "",
                  model=info.model or "", firmware=info.revision or "",
                  serial_number=info.imei or "", last_seen_at=now).where(
        Device.id == device_id).execute()
    operator = info.operator or ""
    Sim.update(iccid=info.iccid or "", imsi=info.imsi or "", number=number or "",
               operator=operator, roaming=info.registration == "roaming",
               registration=info.registration or "", signal_dbm=info.signal_dbm,
               country=_country(info.imsi), last_seen_at=now).where(Sim.id == sim_id).execute()


def _country(imsi: str | None) -> str:
    """Country of the SIM from its IMSI's mobile country code (a few common ones)."""
    mcc = (imsi or "")[:3]
    return {"001": "test", "208": "fr", "262": "de", "234": "gb", "310": "us", "311": "us",
            "214": "es", "222": "it", "204": "nl", "206": "be", "228": "ch", "232": "at",
            "240": "se", "260": "pl", "268": "pt", "302": "ca", "404": "in", "460": "cn",
            "505": "au", "655": "za", "724": "br"}.get(mcc, "")


def _save_state(db: Any, sim_id: int, change: DeviceChange, failures: int,
                circuit_until: int | None) -> None:
    Sim.update(state=change.new_state, state_detail=change.detail[:255],
               failures_in_row=failures, circuit_open_until=circuit_until).where(
        Sim.id == sim_id).execute()
    if change.old_state != change.new_state:
        lifecycle.record_device(db, [change])


def _touch(sim_ids: list[int], now: int) -> None:
    if sim_ids:
        Sim.update(last_seen_at=now).where(Sim.id.in_(sim_ids)).execute()
        Device.update(last_seen_at=now).where(Device.id.in_(
            Sim.select(Sim.device).where(Sim.id.in_(sim_ids)))).execute()

