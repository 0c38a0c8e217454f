"""Async driver for one GSM modem (AT commands, PDU mode) and a supervisor that keeps it up.

Theory of operation
-------------------
**One connection** is a :class:`Modem`.  It owns a transport (``transport.py``, any pyserial
URL), a sans-IO :class:`~rpcgw.gsm.at.ATParser`, and two tasks:

* the *reader* feeds every byte to the parser.  Events of the pending command (``Info``,
  ``Prompt``, ``Final``) go to a queue the command is waiting on; ``Urc`` events are routed
  at once (registration, reboot) or queued as jobs for the worker (new message, status
  report).  URCs may arrive anywhere, between the echo, the information lines, the ``> ``
  prompt and the final result (modem.md §3 quirk 2); the parser tells them apart.
* the *worker* runs storage jobs one at a time: read a message announced by ``+CMTI``/
  ``+CDSI``, handle a pushed ``+CMT``/``+CDS``, sweep storage with ``AT+CMGL=4``.  Because
  jobs are serialized, a sweep never races a ``+CMTI`` read, and switching ``+CPMS`` mem1 to
  read status reports from ``SR`` cannot disturb anything else.

Commands are written **one at a time** (an ``asyncio.Lock``) and each has a deadline:
``command_timeout`` for ordinary commands, ``prompt_timeout`` for the ``> `` after
``AT+CMGS`` and ``send_timeout`` for the result after the PDU (27.005 §3.5.1).  Every part
of a multipart message is sent while holding the lock, so parts go back to back on the same
modem.  A timeout or a port error marks the connection *failed*; it refuses further
commands and the supervisor replaces it.

**The outcome of a send is never guessed.** A failure before the PDU was written means the
message was not sent (``ModemTimeout``/``ModemIOError``/``CommandError``).  ``+CMS ERROR``
raises :class:`CommandError` carrying the :class:`~rpcgw.gsm.errors.ErrorInfo` from
:func:`~rpcgw.gsm.errors.classify`.  Once the PDU was written, a timeout or a dead port
raises :class:`SendUnknown`: the network may or may not have the message, and the caller
decides (the references of the parts already confirmed are attached).

**Incoming messages are deleted only after the host has them.** The host's async
``on_message``/``on_status_report`` callback runs first (it commits to its database); the
``AT+CMGD`` (or, for a pushed ``+CMT``/``+CDS`` with ``+CSMS=1``, the ``AT+CNMA``
acknowledgement, 27.005 §3.4.4) is only sent when it returned.  A callback that raises leaves
the message on the SIM for the next sweep.  Hosts should de-duplicate on
:attr:`IncomingSms.key`: a message whose delete failed is delivered again.

**The supervisor** (:class:`ModemSupervisor`) opens the modem, runs the init, sweeps storage
at start-up and periodically (notifications get lost), runs health checks, and on any
failure (timeout, port error, end of file, unexpected reboot) resets the modem: soft reset
(``ATZ``, then ``AT+CFUN=1,1``), close, re-open with exponential backoff, init again.  PIN
problems (wrong PIN, PUK, no PIN configured) are not retried: a wrong PIN tried three times
blocks the SIM.  State changes are reported through ``on_state``; no exception escapes the
supervisor's task.

**Traces.** Each connection keeps the last ``trace_lines`` lines of its AT exchange, with
phone numbers and PDUs masked, and writes them to the ``rpcgw.gsm.modem.<name>`` logger
when something fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from rpcgw.gsm import at, pdu
from rpcgw.gsm.errors import ErrorInfo, classify
from rpcgw.gsm.transport import ModemError, ModemIOError, Transport, open_serial

T = TypeVar("T")

__all__ = [
    "CommandError",
    "IncomingSms",
    "Modem",
    "ModemConfig",
    "ModemError",
    "ModemIOError",
    "ModemInfo",
    "ModemState",
    "ModemSupervisor",
    "ModemTimeout",
    "ModemUnavailable",
    "SendUnknown",
    "SimPinRejected",
    "SimPinRequired",
    "SimPukRequired",
    "StateChange",
    "StatusReport",
    "StoredMessage",
    "mask",
]

# ---------------------------------------------------------------------- errors


class ModemTimeout(ModemError):
    """The modem did not answer a command in time (a wedged modem)."""


class ModemUnavailable(ModemError):
    """The modem is not ready (starting, resetting, failed or stopped)."""


class CommandError(ModemError):
    """A command ended with ``ERROR``, ``+CME ERROR`` or ``+CMS ERROR``.

    ``info`` classifies it (whom to blame, whether to retry).  For a send,
    ``sent_references`` lists the MRs of the parts that were sent before the failure.
    """

    def __init__(self, command: str, final: at.Final) -> None:
        self.command = command
        self.kind = final.result
        self.code = final.code
        self.text = final.text
        kind = {"CME": "CME", "CMS": "CMS"}.get(final.result, final.result)
        self.info: ErrorInfo = classify(kind, final.code, final.text or final.result)
        self.sent_references: list[int | None] = []
        super().__init__(f"{_mask_command(command)}: {self._final_text()}")

    def _final_text(self) -> str:
        if self.kind in ("CME", "CMS"):
            return f"+{self.kind} ERROR: {self.code if self.code is not None else self.text}"
        return self.kind


class SimPinRequired(ModemError):
    """The SIM wants a PIN and none is configured."""


class SimPinRejected(SimPinRequired):
    """The configured PIN was refused; it is never tried again automatically."""


class SimPukRequired(ModemError):
    """The SIM is blocked (PUK needed): the modem is unusable until an operator acts."""


class SendUnknown(ModemError):
    """The PDU was written but no result came: the message may or may not have been sent.

    ``references`` holds the MRs of the parts confirmed before, ``part`` the 1-based number
    of the part whose outcome is unknown.
    """

    def __init__(self, message: str, *, references: Sequence[int | None], part: int) -> None:
        super().__init__(message)
        self.references = list(references)
        self.part = part


# ---------------------------------------------------------------- data classes


class ModemState(str, enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    RESETTING = "resetting"
    #: Needs an operator (wrong PIN, PUK, no PIN configured): not retried.
    FAILED = "failed"


@dataclass(frozen=True)
class ModemConfig:
    """How to reach and drive one modem.  Times are seconds."""

    name: str
    url: str
    pin: str | None = None
    baudrate: int = 115200
    command_timeout: float = 5.0
    prompt_timeout: float = 5.0
    send_timeout: float = 30.0
    #: SMSC put in the PDU; ``None`` = ``00``, the SIM's own (27.005 §4).
    smsc: str | None = None
    #: Preferred message storage for ``+CPMS`` (27.005 §3.2.2).
    storage: str = "SM"
    #: ``"store"``: ``+CNMI=2,1,0,2,0`` (``+CMTI``/``+CDSI``, messages stay on the SIM
    #: until the host has them); ``"direct"``: ``+CSMS=1`` and ``+CNMI=2,2,0,1,0``
    #: (``+CMT``/``+CDS`` pushed and acknowledged with ``+CNMA`` after the callback).
    receive_mode: str = "store"
    #: With ``receive_mode="store"``: ``"store"`` keeps status reports in ``SR`` memory
    #: (``+CDSI``, read then deleted after the host has them: nothing is lost while the
    #: host is down) or ``"direct"`` pushes them as ``+CDS`` (``ds=1``): two fewer AT
    #: exchanges per message, but a report pushed while the host is not listening is lost.
    report_mode: str = "store"
    health_interval: float = 30.0
    sweep_interval: float = 60.0
    reset_backoff: float = 1.0
    reset_backoff_max: float = 60.0
    #: Consecutive failed re-opens after which the supervisor calls its ``hard_reset`` hook.
    hard_reset_after: int = 3
    #: Retries of ``+CME ERROR: 515/14`` (busy) with ``transient_delay`` × attempt waits.
    transient_retries: int = 3
    transient_delay: float = 0.2
    trace_lines: int = 200


REGISTRATION = {0: "not-registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown",
                5: "roaming"}  # 27.007 §7.2 <stat>


@dataclass
class ModemInfo:
    """Identity and health of a modem as last seen."""

    name: str
    url: str
    manufacturer: str | None = None
    model: str | None = None
    revision: str | None = None
    imei: str | None = None
    imsi: str | None = None
    iccid: str | None = None
    number: str | None = None
    operator: str | None = None
    registration: str = "unknown"
    rssi: int | None = None
    signal_dbm: int | None = None
    smsc: str | None = None
    storage: str | None = None
    cnmi: str | None = None
    csms: int = 0
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class IncomingSms:
    """One received SMS-DELIVER (one part of a concatenated message: see ``concat``).

    ``route`` is ``"stored"`` (``+CMTI``), ``"direct"`` (``+CMT``) or ``"sweep"``.
    Multipart reassembly is the host's job (it has the database that survives restarts).
    """

    modem: str
    imsi: str | None
    sender: str
    text: str
    timestamp: datetime | None
    smsc: str | None
    encoding: str | None
    concat: Any
    message_class: int | None
    pdu: str
    route: str
    storage: str | None = None
    index: int | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        """Stable identity for de-duplication (the same PDU on the same SIM)."""
        return hashlib.sha256(f"{self.imsi}|{self.pdu}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class StatusReport:
    """One SMS-STATUS-REPORT (TS 23.040 §9.2.2.3), to correlate on (modem, reference, recipient)."""

    modem: str
    imsi: str | None
    reference: int
    recipient: str | None
    status: int
    #: ``pdu.status_outcome``: "delivered", "pending" or "failed".
    outcome: str
    sc_timestamp: datetime | None
    discharge_time: datetime | None
    pdu: str
    route: str
    storage: str | None = None
    index: int | None = None
    received_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class StoredMessage:
    """A ``+CMGL``/``+CMGR`` record: index, ``<stat>`` and PDU (27.005 §4.1/§4.2)."""

    storage: str
    index: int
    stat: int
    pdu: str


@dataclass(frozen=True)
class StateChange:
    modem: str
    old: ModemState
    new: ModemState
    reason: str
    info: ModemInfo | None


MessageCallback = Callable[[IncomingSms], Awaitable[None]]
ReportCallback = Callable[[StatusReport], Awaitable[None]]
StateCallback = Callable[[StateChange], Awaitable[None]]
TransportFactory = Callable[[str], Awaitable[Transport]]

# --------------------------------------------------------------------- masking

#: Stored messages and reports waiting to be read at which a submit waits for them all
#: (``Modem.send_pdus``): far below any SIM's report memory (20–50 entries).
STORAGE_BACKLOG = 4
_PDU_RE = re.compile(r"\b[0-9A-Fa-f]{24,}\b")
_NUMBER_RE = re.compile(r"\+?\d{6,}")


def _mask_number(match: re.Match[str]) -> str:
    value = match.group(0)
    return value[:4] + "*" * (len(value) - 6) + value[-2:]


def mask(text: str) -> str:
    """Mask PDUs (they hold numbers and texts) and phone-number-like digit runs."""
    text = _PDU_RE.sub(lambda m: f"<pdu {len(m.group(0)) // 2} octets>", text)
    return _NUMBER_RE.sub(_mask_number, text)


def _mask_command(command: str) -> str:
    return mask(command)


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _fields(line: str) -> list[str]:
    """Parameters of ``+NAME: a,"b",,c`` split on commas outside quotes (V.250 §5.7.2)."""
    body = line.split(":", 1)[1] if ":" in line else line
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in body:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


_DEAD = object()


class Modem:
    """One open connection to a modem (see the module docstring)."""

    def __init__(
        self,
        config: ModemConfig,
        *,
        transport_factory: TransportFactory | None = None,
        on_message: MessageCallback | None = None,
        on_status_report: ReportCallback | None = None,
    ) -> None:
        self.config = config
        self.log = logging.getLogger(f"rpcgw.gsm.modem.{config.name}")
        self._transport_factory = transport_factory or (
            lambda url: open_serial(url, baudrate=config.baudrate))
        self.on_message = on_message
        self.on_status_report = on_status_report
        self.info = ModemInfo(config.name, config.url)
        self._transport: Transport | None = None
        self._parser = at.ATParser()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._jobs: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] = (
            asyncio.Queue())
        self._tasks: list[asyncio.Task[None]] = []
        self._trace: deque[str] = deque(maxlen=config.trace_lines)
        self.failure: asyncio.Future[ModemError] = asyncio.get_running_loop().create_future()
        self._ready = False
        self._mem1 = config.storage
        self._current_mem1 = config.storage
        self._sweep_memories: list[str] = [config.storage]
        self._cnmi: str | None = None
        self._concat_reference = random.randrange(256)
        self._undecodable: set[str] = set()

    # ------------------------------------------------------------ life cycle

    async def open(self, *, sweep: bool = True) -> ModemInfo:
        """Open the port, initialise the modem and (by default) sweep its storage."""
        self._trace_line(f"open {self.config.url}")
        self._transport = await self._transport_factory(self.config.url)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"modem-reader {self.config.name}"),
            asyncio.create_task(self._work_loop(), name=f"modem-worker {self.config.name}"),
        ]
        await self._initialize()
        self._ready = True
        if sweep:
            await self.sweep()
        return self.info

    async def close(self) -> None:
        """Stop the tasks and close the port; idempotent."""
        self._ready = False
        self._fail(ModemUnavailable("closed"))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._transport is not None:
            with contextlib.suppress(ModemError):
                await self._transport.close()
            self._transport = None

    @property
    def failed(self) -> bool:
        return self.failure.done()

    def _fail(self, error: ModemError) -> None:
        """Mark the connection unusable; wake whoever waits for an answer."""
        if not self.failure.done():
            self.failure.set_result(error)
            self._events.put_nowait(_DEAD)

    def dump_trace(self, reason: str, level: int = logging.WARNING) -> None:
        """Write the recent (masked) AT exchange to the log."""
        self.log.log(level, "%s; last %d lines of the AT exchange:\n%s", reason,
                     len(self._trace), "\n".join(self._trace))

    def _trace_line(self, text: str) -> None:
        line = f"{time.monotonic():.3f} {mask(text)}"
        self._trace.append(line)
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("%s", line)

    # ----------------------------------------------------------------- input

    async def _read_loop(self) -> None:
        assert self._transport is not None
        try:
            while True:
                data = await self._transport.read()
                for event in self._parser.feed(data):
                    self._dispatch(event)
        except ModemError as exc:
            self._trace_line(f"port failed: {exc}")
            self._fail(exc if isinstance(exc, ModemIOError) else ModemIOError(str(exc)))

    def _dispatch(self, event: at.Event) -> None:
        if isinstance(event, at.Urc):
            self._trace_line(f"<< urc {event.text}" + (f" | {event.pdu}" if event.pdu else ""))
            self._on_urc(event)
        elif isinstance(event, at.Noise):
            self._trace_line(f"<< noise {len(event.data)} bytes")
        else:
            if isinstance(event, at.Info):
                self._trace_line(f"<< {event.text}")
            elif isinstance(event, at.Final):
                self._trace_line(f"<< {event.result} {event.code if event.code is not None else ''}"
                                 .rstrip())
            else:
                self._trace_line("<< prompt")
            self._events.put_nowait(event)

    def _on_urc(self, urc: at.Urc) -> None:
        """Route an unsolicited result code (27.005 §3.4.1, 27.007 §7.2)."""
        name, _, rest = urc.text.partition(":")
        name = name.strip().upper()
        if name in ("+CMTI", "+CDSI"):
            fields = _fields(urc.text)
            if len(fields) >= 2 and fields[1].isdigit():
                memory, index = _unquote(fields[0]).upper(), int(fields[1])
                self._enqueue(lambda: self._read_stored(memory, index, "stored"))
        elif name == "+CMT" and urc.pdu:
            pdu_hex = urc.pdu
            self._enqueue(lambda: self._handle_direct(pdu_hex))
        elif name == "+CDS" and urc.pdu:
            pdu_hex = urc.pdu
            self._enqueue(lambda: self._handle_direct(pdu_hex))
        elif name == "+CREG":
            fields = _fields(urc.text)
            if fields and fields[0].isdigit():
                self.info.registration = REGISTRATION.get(int(fields[0]), "unknown")
        elif self._ready and (urc.text.upper() in ("RDY", "+CFUN: 1")
                              or urc.text.upper().startswith("+CPIN: SIM")):
            # The modem rebooted behind our back: its settings (CNMI, CMGF...) are gone.
            self._fail(ModemIOError(f"modem restarted ({urc.text})"))

    def _enqueue(self, job: Callable[[], Awaitable[Any]]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait((job, future))
        return future

    async def _work_loop(self) -> None:
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            job, future = await self._jobs.get()
            try:
                await self._run_job(job, future)
            finally:
                self._jobs.task_done()  # send_pdus may wait for the queue to drain

    async def _run_job(self, job: Callable[[], Awaitable[Any]],
                       future: asyncio.Future[Any]) -> None:
        if self.failed:
            if not future.done():
                future.set_exception(ModemUnavailable("connection failed"))
                future.exception()
            return
        try:
            result = await job()
        except ModemError as exc:
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved: callers may have gone
        except Exception as exc:  # a bug: keep the worker alive, say it loudly
            self.log.exception("storage job failed")
            if not future.done():
                future.set_exception(exc)
                future.exception()
        else:
            if not future.done():
                future.set_result(result)

    # -------------------------------------------------------------- commands

    async def _write(self, data: bytes, shown: str) -> None:
        assert self._transport is not None
        self._trace_line(f">> {shown}")
        try:
            await self._transport.write(data)
        except ModemIOError as exc:
            self._fail(exc)
            raise

    async def _next_event(self, deadline: float, command: str) -> at.Event:
        timeout = deadline - asyncio.get_running_loop().time()
        try:
            if timeout <= 0:
                raise asyncio.TimeoutError
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation
            # that races with the queue item arriving.
            async with asyncio.timeout(timeout):
                event = await self._events.get()
        except asyncio.TimeoutError:
            self._parser.end()
            error = ModemTimeout(f"{self.config.name}: no answer to {_mask_command(command)}")
            self._fail(error)
            raise error from None
        if event is _DEAD:
            self._events.put_nowait(_DEAD)
            raise self._failure_error()
        return event  # type: ignore[no-any-return]

    def _failure_error(self) -> ModemError:
        error = self.failure.result()
        if isinstance(error, ModemTimeout):
            return ModemTimeout(str(error))
        return ModemIOError(str(error)) if not isinstance(error, ModemUnavailable) else error

    def _check_usable(self) -> None:
        if self.failed:
            raise self._failure_error()
        if self._transport is None:
            raise ModemUnavailable(f"{self.config.name} is not open")

    async def _exchange(self, command: str, timeout: float) -> tuple[list[str], at.Final]:
        """Write one command line and collect its information lines and final result."""
        self._check_usable()
        while not self._events.empty():
            stale = self._events.get_nowait()
            if stale is _DEAD:
                self._events.put_nowait(_DEAD)
                raise self._failure_error()
        self._parser.begin(command)
        deadline = asyncio.get_running_loop().time() + timeout
        await self._write(command.encode("latin-1") + b"\r", command)
        lines: list[str] = []
        while True:
            event = await self._next_event(deadline, command)
            if isinstance(event, at.Info):
                lines.append(event.text)
            elif isinstance(event, at.Final):
                return lines, event

    async def command(self, command: str, *, timeout: float | None = None) -> list[str]:
        """Run one AT command; return its information lines.

        Raises :class:`CommandError` on an error result (after retrying the transient
        ``+CME ERROR: 515/14`` a few times), :class:`ModemTimeout`, :class:`ModemIOError`.
        """
        timeout = timeout or self.config.command_timeout
        attempt = 0
        while True:
            async with self._lock:
                lines, final = await self._exchange(command, timeout)
            if final.result in ("OK",):
                return lines
            if (final.result == "CME" and final.code in (14, 515)
                    and attempt < self.config.transient_retries):
                attempt += 1
                await asyncio.sleep(self.config.transient_delay * attempt)
                continue
            raise CommandError(command, final)

    async def _optional(self, command: str) -> list[str] | None:
        """A command the modem may not support: ``None`` instead of an error."""
        try:
            return await self.command(command)
        except CommandError as exc:
            self._trace_line(f"optional {command} unsupported: {exc.kind} {exc.code}")
            return None

    # ------------------------------------------------------------------ init

    async def _initialize(self) -> None:
        """Start-up sequence (modem.md §5): echo off, errors, SIM, PDU mode, routing, identity."""
        await self._sync()
        await self.command("ATE0")  # V.250 §6.2.4
        await self._optional("AT+CMEE=1")  # 27.007 §9.1: numeric +CME ERROR
        await self._unlock_sim()
        await self._identify()
        await self.command("AT+CMGF=0")  # 27.005 §3.2.3: PDU mode, always
        await self._select_storage()
        await self._set_routing()
        csca = await self._optional("AT+CSCA?")  # 27.005 §3.3.1
        if csca:
            fields = _fields(csca[0])
            self.info.smsc = _unquote(fields[0]) if fields else None
        await self.refresh_health()

    async def _sync(self) -> None:
        """Abort a pending ``> `` prompt (ESC) and wait until ``AT`` answers ``OK``."""
        assert self._transport is not None
        await self._write(b"\x1b\r", "ESC")
        short = min(self.config.command_timeout, 2.0)
        for _ in range(2):
            async with self._lock:
                self._check_usable()
                self._parser.begin("AT")
                deadline = asyncio.get_running_loop().time() + short
                await self._write(b"AT\r", "AT")
                while True:
                    event = await self._wait_quietly(deadline)
                    if event is None:
                        break
                    if isinstance(event, at.Final):
                        if event.result == "OK":
                            return
                        break
        self._parser.end()
        error = ModemTimeout(f"{self.config.name}: no answer to AT")
        self._fail(error)
        raise error

    async def _wait_quietly(self, deadline: float) -> at.Event | None:
        """Like :meth:`_next_event` but a timeout is not (yet) a failure."""
        timeout = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(timeout, 0.001)):
                event = await self._events.get()
        except asyncio.TimeoutError:
            self._parser.end()
            return None
        if event is _DEAD:
            self._events.put_nowait(_DEAD)
            raise self._failure_error()
        return event  # type: ignore[no-any-return]

    async def _unlock_sim(self) -> None:
        """27.007 §8.3: enter the configured PIN once; never retry a refused one."""
        state = await self._cpin_state()
        if state == "READY":
            return
        if state == "SIM PIN":
            if not self.config.pin:
                raise SimPinRequired(f"{self.config.name}: the SIM needs a PIN, none configured")
            try:
                await self.command(f'AT+CPIN="{self.config.pin}"')
            except CommandError as exc:
                if exc.code == 16 or exc.kind == "ERROR":
                    raise SimPinRejected(f"{self.config.name}: the SIM refused the PIN") from exc
                raise
            for attempt in range(10):
                state = await self._cpin_state()
                if state == "READY":
                    return
                if state in ("SIM PIN", "SIM PUK"):
                    break
                await asyncio.sleep(0.2 * (attempt + 1))
            if state == "SIM PIN":
                raise SimPinRejected(f"{self.config.name}: the SIM still asks for its PIN")
        if state == "SIM PUK":
            raise SimPukRequired(f"{self.config.name}: the SIM is blocked (PUK required)")
        raise SimPinRequired(f"{self.config.name}: SIM not ready ({state})")

    async def _cpin_state(self) -> str:
        try:
            lines = await self.command("AT+CPIN?")
        except CommandError as exc:
            if exc.kind == "CME" and exc.code in (11, 12):
                return "SIM PIN" if exc.code == 11 else "SIM PUK"
            raise
        for line in lines:
            if line.upper().startswith("+CPIN:"):
                return line.split(":", 1)[1].strip().upper()
        return "READY"

    async def _identify(self) -> None:
        info = self.info
        for command, attribute in (("AT+CGMI", "manufacturer"), ("AT+CGMM", "model"),
                                   ("AT+CGMR", "revision")):
            lines = await self._optional(command)
            if lines:
                setattr(info, attribute, " ".join(line.split(":", 1)[-1].strip()
                                                  if line.startswith("+") else line
                                                  for line in lines).strip())
        lines = await self._optional("AT+CGSN")  # 27.007 §5.4
        info.imei = self._digits(lines, 14, 17)
        lines = await self._optional("AT+CIMI")  # 27.007 §5.6
        info.imsi = self._digits(lines, 6, 15)
        info.iccid = await self._read_iccid()
        lines = await self._optional("AT+CNUM")  # 27.007 §7.1: often empty
        info.number = None
        for line in lines or ():
            fields = _fields(line)
            if len(fields) >= 2 and _unquote(fields[1]):
                info.number = _unquote(fields[1])
                break

    @staticmethod
    def _digits(lines: list[str] | None, low: int, high: int) -> str | None:
        for line in lines or ():
            match = re.search(rf"\d{{{low},{high}}}", line)
            if match:
                return match.group(0)
        return None

    async def _read_iccid(self) -> str | None:
        """Vendor ICCID commands, then EF_ICCID via ``+CRSM`` (27.007 §8.18, nibble swapped)."""
        for command in ("AT+CCID", "AT+QCCID", "AT^ICCID?"):
            lines = await self._optional(command)
            for line in lines or ():
                match = re.search(r"[0-9]{18,20}[0-9Ff]?", _unquote(line.split(":")[-1]))
                if match:
                    return match.group(0).rstrip("Ff")
        lines = await self._optional("AT+CRSM=176,12258,0,0,10")
        for line in lines or ():
            fields = _fields(line)
            if len(fields) >= 3 and fields[0] == "144":
                raw = _unquote(fields[2])
                swapped = "".join(raw[i + 1] + raw[i] for i in range(0, len(raw) - 1, 2))
                return swapped.rstrip("Ff") or None
        return None

    async def _select_storage(self) -> None:
        """27.005 §3.2.2: preferred storage for mem1/2/3; else what ``=?`` lists."""
        wanted = self.config.storage
        test = await self._optional("AT+CPMS=?")
        lists: list[list[str]] = []
        if test:
            lists = [re.findall(r'"([A-Z]{2})"', group)
                     for group in re.findall(r"\(([^)]*)\)", test[0])]
        if lists:
            self._sweep_memories = [mem for mem in lists[0] if mem in ("SM", "ME", "SR")]
        choice = [wanted] * 3
        if lists and len(lists) >= 3:
            choice = [wanted if wanted in options else options[0] if options else wanted
                      for options in lists[:3]]
        try:
            await self.command("AT+CPMS=" + ",".join(f'"{mem}"' for mem in choice))
        except CommandError:
            try:
                await self.command(f'AT+CPMS="{choice[0]}"')
                choice = [choice[0]] * 3
            except CommandError:
                self._trace_line("storage selection not supported; using the modem's default")
        self._mem1 = self._current_mem1 = choice[0]
        self.info.storage = choice[0]
        if self._mem1 not in self._sweep_memories:
            self._sweep_memories.insert(0, self._mem1)

    async def _set_routing(self) -> None:
        """27.005 §3.4.1 ``+CNMI`` with fallbacks; ``+CSMS=1`` for acknowledged pushes."""
        store = ["2,1,0,2,0", "2,1,0,1,0", "1,1,0,2,0", "1,1,0,1,0", "2,1,0,0,0", "1,1,0,0,0"]
        if self.config.report_mode == "direct":
            store = ["2,1,0,1,0", "1,1,0,1,0", *store]
        candidates = store
        self.info.csms = 0
        if self.config.receive_mode == "direct":
            lines = await self._optional("AT+CSMS=1")  # 27.005 §3.2.1
            self.info.csms = 1 if lines is not None else 0
            candidates = ["2,2,0,1,0", "1,2,0,1,0", *store]
        else:
            await self._optional("AT+CSMS=0")
        for values in candidates:
            if await self._optional(f"AT+CNMI={values}") is not None:
                self._cnmi = values
                self.info.cnmi = values
                return
        self._cnmi = None
        self.info.cnmi = None
        self.log.warning("%s: no +CNMI setting accepted; relying on storage sweeps",
                         self.config.name)

    async def refresh_health(self) -> ModemInfo:
        """Signal, registration and operator; re-apply ``+CNMI`` if the modem dropped it."""
        info = self.info
        lines = await self._optional("AT+CSQ")  # 27.007 §8.5
        if lines:
            fields = _fields(lines[0])
            if fields and fields[0].isdigit():
                rssi = int(fields[0])
                info.rssi = rssi
                info.signal_dbm = None if rssi == 99 else -113 + 2 * min(rssi, 31)
        lines = await self._optional("AT+CREG?")  # 27.007 §7.2
        if lines:
            fields = _fields(lines[0])
            stat = fields[1] if len(fields) >= 2 else fields[0] if fields else ""
            if stat.isdigit():
                info.registration = REGISTRATION.get(int(stat), "unknown")
        lines = await self._optional("AT+COPS?")  # 27.007 §7.3
        if lines:
            fields = _fields(lines[0])
            info.operator = _unquote(fields[2]) if len(fields) >= 3 else None
        if self._cnmi is not None:
            lines = await self._optional("AT+CNMI?")
            current = ",".join(_fields(lines[0])) if lines else None
            if current is not None and not current.startswith(self._cnmi[:7]):
                # After an unacknowledged +CMT the ME sets mt=ds=0 (27.005 §3.4.4).
                self._trace_line(f"+CNMI was reset to {current}; applying {self._cnmi} again")
                await self._optional(f"AT+CNMI={self._cnmi}")
        info.updated_at = time.time()
        return info

    async def soft_reset(self, timeout: float = 2.0) -> bool:
        """``ATZ``, or ``AT+CFUN=1,1`` if that fails (V.250 §6.1.1, 27.007 §8.2)."""
        if self._transport is None:
            return False
        if self.failed and not isinstance(self.failure.result(), ModemTimeout):
            return False
        for command in ("ATZ", "AT+CFUN=1,1"):
            try:
                async with self._lock:
                    # A timed-out connection is "failed"; this last try bypasses that check.
                    while not self._events.empty():
                        self._events.get_nowait()
                    self._parser.end()
                    self._parser.begin(command)
                    deadline = asyncio.get_running_loop().time() + timeout
                    await self._write(command.encode() + b"\r", command)
                    while True:
                        event = await self._wait_quietly(deadline)
                        if event is None:
                            break
                        if isinstance(event, at.Final):
                            if event.result == "OK":
                                return True
                            break
            except ModemError:
                return False
        return False

    # ------------------------------------------------------------------ send

    def next_concat_reference(self) -> int:
        self._concat_reference = (self._concat_reference + 1) % 256
        return self._concat_reference

    async def send_sms(
        self,
        number: str,
        text: str,
        *,
        status_report: bool = True,
        encoding: str | None = None,
        validity_minutes: int | None = None,
        flash: bool = False,
    ) -> list[int | None]:
        """Encode and send a message (all parts); return the TP-MRs from ``+CMGS``."""
        parts = pdu.encode_submit(
            number,
            text,
            encoding=encoding,
            smsc=self.config.smsc,
            status_report=status_report,
            validity_minutes=validity_minutes,
            flash=flash,
            concat_reference=self.next_concat_reference(),
        )
        return await self.send_pdus(parts)

    async def send_pdus(self, parts: Sequence[pdu.EncodedPdu]) -> list[int | None]:
        """Send the parts back to back while holding the command lock (27.005 §3.5.1)."""
        references: list[int | None] = []
        # Stored status reports and messages must not pile up: reading one takes several
        # commands and a submit one, so a SIM sending back to back would read reports
        # slower than they arrive until its report memory is full, and the network drops
        # what does not fit.  Once a few wait, they are all read (and handed to the
        # host) before the next submit; below that they are read between submits, and
        # a submit does not wait for the database commit of each report.  Bounded, so
        # that a wedged storage job cannot stop sending.
        if self._jobs.qsize() >= STORAGE_BACKLOG:
            with contextlib.suppress(asyncio.TimeoutError):
                async with asyncio.timeout(self.config.command_timeout):
                    await self._jobs.join()
        async with self._lock:
            for number, part in enumerate(parts, start=1):
                try:
                    references.append(await self._send_one(part, number))
                except SendUnknown as exc:
                    exc.references = list(references)
                    self.dump_trace(f"send: outcome of part {number} unknown ({exc})")
                    raise
                except CommandError as exc:
                    exc.sent_references = list(references)
                    self.dump_trace(f"send: part {number} refused ({exc})", logging.INFO)
                    raise
        return references

    async def _send_one(self, part: pdu.EncodedPdu, number: int) -> int | None:
        command = f"AT+CMGS={part.tpdu_length}"
        attempt = 0
        while True:
            self._check_usable()
            self._parser.begin(command, prompt=True)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.prompt_timeout
            await self._write(command.encode() + b"\r", command)
            try:
                while True:
                    event = await self._next_event(deadline, command)
                    if isinstance(event, at.Prompt):
                        break
                    if isinstance(event, at.Final):
                        if (event.result == "CME" and event.code in (14, 515)
                                and attempt < self.config.transient_retries):
                            break
                        raise CommandError(command, event)
            except ModemTimeout:
                # Nothing was written but the command: abort a late prompt, never send.
                with contextlib.suppress(ModemError):
                    await self._write(b"\x1b", "ESC")
                raise
            if isinstance(event, at.Prompt):
                break
            attempt += 1
            await asyncio.sleep(self.config.transient_delay * attempt)
        # From here on the outcome of a failure is unknown.
        deadline = loop.time() + self.config.send_timeout
        try:
            await self._write(part.hex.encode() + b"\x1a", f"{part.hex}^Z")
            reference: int | None = None
            while True:
                event = await self._next_event(deadline, command)
                if isinstance(event, at.Info) and event.text.upper().startswith("+CMGS:"):
                    value = event.text.split(":", 1)[1].split(",")[0].strip()
                    reference = int(value) if value.isdigit() else None
                elif isinstance(event, at.Final):
                    if event.result == "OK":
                        if reference is None:
                            self.log.warning("%s: +CMGS gave OK without a reference",
                                             self.config.name)
                        return reference
                    raise CommandError(command, event)
        except (ModemTimeout, ModemIOError) as exc:
            raise SendUnknown(f"{self.config.name}: part {number}: {exc}", references=[],
                              part=number) from exc

    # --------------------------------------------------------------- storage

    @contextlib.asynccontextmanager
    async def _memory(self, memory: str) -> AsyncIterator[None]:
        """Point mem1 at ``memory`` for the commands in the block (27.005 §3.2.2).

        mem1 is left there afterwards: every command that reads or deletes stored
        messages runs inside this context, which selects the memory it needs, so
        switching back would only cost a command per stored report (status reports
        often live in ``SR`` while incoming messages live in ``SM``)."""
        if memory != self._current_mem1:
            await self.command(f'AT+CPMS="{memory}"')
            self._current_mem1 = memory
        yield

    async def _storage(self, job: Callable[[], Awaitable[T]]) -> T:
        """Run ``job`` in the storage worker, after the jobs queued before it.

        Storage commands come in pairs (``AT+CPMS`` to choose mem1, then the read, list
        or delete): run anywhere else, another caller's ``AT+CPMS`` could slip between
        the two and the command would act on the wrong memory."""
        if self.failed or not self._tasks:
            raise ModemUnavailable(f"{self.config.name}: not open")
        result: T = await self._enqueue(job)
        return result

    async def list_stored(self, memory: str | None = None) -> list[StoredMessage]:
        """``AT+CMGL=4``: every message in ``memory`` (27.005 §4.1)."""
        return await self._storage(lambda: self._list_stored(memory or self._mem1))

    async def _list_stored(self, memory: str) -> list[StoredMessage]:
        async with self._memory(memory):
            lines = await self.command("AT+CMGL=4")
        return self._parse_listing(memory, lines)

    @staticmethod
    def _parse_listing(memory: str, lines: list[str]) -> list[StoredMessage]:
        found = []
        header: re.Match[str] | None = None
        for line in lines:
            match = re.match(r"\+CMGL:\s*(\d+)\s*,\s*(\d+)", line)
            if match:
                header = match
                continue
            if header is not None and re.fullmatch(r"[0-9A-Fa-f]+", line):
                found.append(StoredMessage(memory, int(header.group(1)), int(header.group(2)),
                                           line.upper()))
            header = None
        return found

    async def read_stored(self, index: int, memory: str | None = None) -> StoredMessage | None:
        """``AT+CMGR=<index>`` (27.005 §4.2); ``None`` for an empty slot (``+CMS ERROR: 321``)."""
        return await self._storage(lambda: self._read_one(index, memory or self._mem1))

    async def _read_one(self, index: int, memory: str) -> StoredMessage | None:
        async with self._memory(memory):
            try:
                lines = await self.command(f"AT+CMGR={index}")
            except CommandError as exc:
                if exc.kind == "CMS" and exc.code == 321:
                    return None
                raise
        stat = 0
        for line in lines:
            match = re.match(r"\+CMGR:\s*(\d*)", line)
            if match:
                stat = int(match.group(1) or 0)
            elif re.fullmatch(r"[0-9A-Fa-f]+", line):
                return StoredMessage(memory, index, stat, line.upper())
        return None

    async def delete_stored(self, index: int, memory: str | None = None) -> None:
        """``AT+CMGD=<index>`` (27.005 §3.5.4)."""
        await self._storage(lambda: self._delete_one(index, memory or self._mem1))

    async def _delete_one(self, index: int, memory: str) -> None:
        async with self._memory(memory):
            await self.command(f"AT+CMGD={index}")

    async def sweep(self) -> int:
        """Hand every stored message and report to the host; return how many were handled."""
        future = self._enqueue(self._sweep)
        result: int = await future
        return result

    async def _sweep(self) -> int:
        handled = 0
        for memory in self._sweep_memories:
            try:
                async with self._memory(memory):
                    lines = await self.command("AT+CMGL=4")
                    for stored in self._parse_listing(memory, lines):
                        if await self._handle_stored(stored, "sweep"):
                            handled += 1
            except CommandError as exc:
                self._trace_line(f"sweep of {memory} failed: {exc}")
        return handled

    async def _read_stored(self, memory: str, index: int, route: str) -> None:
        async with self._memory(memory):
            stored = await self._read_one(index, memory)
            if stored is not None:
                await self._handle_stored(stored, route)

    async def _handle_stored(self, stored: StoredMessage, route: str) -> bool:
        """Decode, hand to the host, delete when the host's callback returned."""
        event = self._decode(stored.pdu, route, stored.storage, stored.index)
        if event is None:
            return False
        if not await self._deliver(event):
            return False
        await self.command(f"AT+CMGD={stored.index}")
        return True

    async def _handle_direct(self, pdu_hex: str) -> None:
        """A pushed ``+CMT``/``+CDS``: callback first, then ``+CNMA`` if ``+CSMS=1``."""
        event = self._decode(pdu_hex, "direct", None, None)
        delivered = event is not None and await self._deliver(event)
        if self.info.csms == 1 and delivered:
            await self._optional("AT+CNMA")  # 27.005 §3.4.4
        elif not delivered and self.info.csms != 1:
            self.log.error("%s: a pushed message could not be handed over and the modem "
                           "already acknowledged it (+CSMS=0): it is lost", self.config.name)

    def _decode(self, pdu_hex: str, route: str, storage: str | None,
                index: int | None) -> IncomingSms | StatusReport | None:
        try:
            message = pdu.decode(pdu_hex, has_smsc=True)
        except (pdu.PduError, ValueError, IndexError) as exc:
            if pdu_hex not in self._undecodable:
                self._undecodable.add(pdu_hex)
                self.log.warning("%s: undecodable PDU at %s/%s left in storage: %s",
                                 self.config.name, storage, index, exc)
            return None
        if isinstance(message, pdu.Deliver):
            return IncomingSms(
                modem=self.config.name, imsi=self.info.imsi, sender=message.sender,
                text=message.text, timestamp=message.timestamp, smsc=message.smsc,
                encoding=message.encoding, concat=message.concat,
                message_class=message.message_class, pdu=pdu_hex.upper(), route=route,
                storage=storage, index=index,
            )
        if isinstance(message, pdu.StatusReport):
            return StatusReport(
                modem=self.config.name, imsi=self.info.imsi, reference=message.reference,
                recipient=message.recipient, status=message.status,
                outcome=pdu.status_outcome(message.status), sc_timestamp=message.sc_timestamp,
                discharge_time=message.discharge_time, pdu=pdu_hex.upper(), route=route,
                storage=storage, index=index,
            )
        return None  # a stored SMS-SUBMIT (our own drafts): not ours to touch

    async def _deliver(self, event: IncomingSms | StatusReport) -> bool:
        """Run the host callback; ``False`` (and the message stays) if it raised."""
        try:
            if isinstance(event, IncomingSms):
                if self.on_message is None:
                    return False
                await self.on_message(event)
            else:
                if self.on_status_report is None:
                    return False
                await self.on_status_report(event)
        except Exception:
            self.log.exception("%s: host callback failed; message kept for the next sweep",
                               self.config.name)
            return False
        return True


class ModemSupervisor:
    """Keeps one modem open and healthy (see the module docstring).

    Callbacks are async and optional; exceptions they raise are logged, never propagated.
    ``hard_reset`` (e.g. toggling a USB hub port, or ``SimulatorHost.power_cycle``) is
    awaited after ``config.hard_reset_after`` consecutive failed starts.
    """

    def __init__(
        self,
        config: ModemConfig,
        *,
        on_message: MessageCallback | None = None,
        on_status_report: ReportCallback | None = None,
        on_state: StateCallback | None = None,
        transport_factory: TransportFactory | None = None,
        hard_reset: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.log = logging.getLogger(f"rpcgw.gsm.modem.{config.name}")
        self.on_message = on_message
        self.on_status_report = on_status_report
        self.on_state = on_state
        self._transport_factory = transport_factory
        self._hard_reset = hard_reset
        self.state = ModemState.STOPPED
        self.reason = ""
        self.modem: Modem | None = None
        self.info: ModemInfo | None = None
        self.resets = 0
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._restart = asyncio.Event()
        self._sweep_now = asyncio.Event()

    # ------------------------------------------------------------ public API

    async def start(self) -> None:
        """Start supervising (returns at once; see :meth:`wait_ready`)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"supervisor {self.config.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.modem is not None:
            await self.modem.close()
            self.modem = None
        await self._set_state(ModemState.STOPPED, "stopped")

    def restart(self) -> None:
        """Leave the FAILED state (after the operator fixed the PIN or the SIM)."""
        self._restart.set()

    async def wait_state(self, *states: ModemState, timeout: float | None = None) -> ModemState:
        """Wait until the state is one of ``states``."""
        async def wait() -> ModemState:
            async with self._changed:
                await self._changed.wait_for(lambda: self.state in states)
                return self.state

        return await asyncio.wait_for(wait(), timeout)

    async def wait_ready(self, timeout: float | None = None) -> ModemInfo:
        await self.wait_state(ModemState.READY, timeout=timeout)
        assert self.info is not None
        return self.info

    def _usable(self) -> Modem:
        modem = self.modem
        if self.state is not ModemState.READY or modem is None or modem.failed:
            raise ModemUnavailable(f"{self.config.name} is {self.state.value}")
        return modem

    async def send_sms(self, number: str, text: str, **options: Any) -> list[int | None]:
        """Send through the current connection (see :meth:`Modem.send_sms`).

        Raises :class:`ModemUnavailable` when not READY, so the caller can pick another
        modem; :class:`SendUnknown` when the outcome is unknown.
        """
        return await self._usable().send_sms(number, text, **options)

    async def send_pdus(self, parts: Sequence[pdu.EncodedPdu]) -> list[int | None]:
        return await self._usable().send_pdus(parts)

    async def sweep(self) -> int:
        return await self._usable().sweep()

    # ------------------------------------------------------------- internals

    async def _set_state(self, state: ModemState, reason: str) -> None:
        if state is self.state and reason == self.reason:
            return
        old, self.state, self.reason = self.state, state, reason
        self.log.info("%s: %s -> %s (%s)", self.config.name, old.value, state.value, reason)
        async with self._changed:
            self._changed.notify_all()
        if self.on_state is not None:
            try:
                await self.on_state(StateChange(self.config.name, old, state, reason, self.info))
            except Exception:
                self.log.exception("%s: on_state callback failed", self.config.name)

    async def _run(self) -> None:
        backoff = self.config.reset_backoff
        failures = 0
        while True:
            await self._set_state(ModemState.STARTING, "opening")
            modem = Modem(self.config, transport_factory=self._transport_factory,
                          on_message=self.on_message, on_status_report=self.on_status_report)
            self.modem = modem
            try:
                self.info = await modem.open()
            except (SimPinRequired, SimPukRequired) as exc:
                await modem.close()
                self.modem = None
                await self._set_state(ModemState.FAILED, str(exc))
                self._restart.clear()
                await self._restart.wait()
                continue
            except Exception as exc:
                failures += 1
                reason = f"start failed: {type(exc).__name__}: {exc}"
                await self._recover(modem, reason, exc, failures)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.reset_backoff_max)
                continue
            failures = 0
            backoff = self.config.reset_backoff
            await self._set_state(ModemState.READY, "initialised")
            error = await self._watch(modem)
            self.resets += 1
            await self._recover(modem, f"{type(error).__name__}: {error}", error, 0)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.config.reset_backoff_max)

    async def _recover(self, modem: Modem, reason: str, error: BaseException,
                       failures: int) -> None:
        """Soft reset, close, maybe hard reset; never raises."""
        await self._set_state(ModemState.RESETTING, reason)
        try:
            modem.dump_trace(f"{self.config.name}: {reason}")
            if failures == 0 and not isinstance(error, ModemIOError):
                # A soft reset once per incident; the port is gone after an I/O error.
                await modem.soft_reset(timeout=min(self.config.command_timeout, 2.0))
            await modem.close()
            if self._hard_reset is not None and failures >= self.config.hard_reset_after:
                self.log.warning("%s: %d failed starts, hard reset", self.config.name, failures)
                await self._hard_reset()
        except Exception:
            self.log.exception("%s: error while resetting", self.config.name)
        finally:
            if self.modem is modem:
                self.modem = None

    async def _watch(self, modem: Modem) -> BaseException:
        """Health checks and sweeps until the connection fails; return why it failed."""
        loop = asyncio.get_running_loop()
        next_health = loop.time() + self.config.health_interval
        next_sweep = loop.time() + self.config.sweep_interval
        while True:
            wait = max(0.0, min(next_health, next_sweep) - loop.time())
            done, _ = await asyncio.wait({modem.failure}, timeout=wait)
            if done:
                return modem.failure.result()
            try:
                if loop.time() >= next_health:
                    self.info = await modem.refresh_health()
                    next_health = loop.time() + self.config.health_interval
                if loop.time() >= next_sweep:
                    await modem.sweep()
                    next_sweep = loop.time() + self.config.sweep_interval
            except ModemError as exc:
                if modem.failed:
                    return modem.failure.result()
                return exc
            except Exception as exc:
                self.log.exception("%s: health check failed unexpectedly", self.config.name)
                return exc
