"""AT command engine of one simulated GSM modem (SIM800-class), without any I/O.

Theory of operation
-------------------
A :class:`ModemEngine` is a state machine fed with the bytes a client wrote
(:meth:`ModemEngine.feed`) and producing an *outbox* of items to send back: ``bytes`` to
write, or a ``float`` meaning "pause this many seconds before writing what follows".  The
host (``host.py``) drains the outbox in order, so a slow answer or the time a modem takes to
accept a submit is modelled without the engine ever sleeping, and the engine can be driven
by a unit test synchronously.  Timers the engine needs (``+CNMA`` acknowledgement timeout,
wedge duration) go through an injected ``schedule(delay, callback)`` function.

Input is split the way a V.250 modem does it: in *command state* bytes are collected up to
S3 (CR), LF is ignored, and anything before ``AT`` is dropped (that is how gammu's leading
``ESC CR`` is tolerated).  With echo on (the power-up default, V.250 §6.2.4 ``E``) every
byte is echoed as it arrives.  A command line is a chain of basic commands (``E0``, ``V1``,
``Z``, ``&F``, ``I``, ``S<n>=``) and extended commands (``+CMGF=0``) separated by ``;``
(V.250 §5.2.1); the chain stops at the first error.  ``AT+CMGS``/``AT+CMGW`` switch to
*message state* (TS 27.005 §3.5.1/§4.3): the engine answers ``\\r\\n> `` with no newline,
collects the body until Ctrl-Z (send) or ESC (abort, answer ``OK``); in text mode a CR in
the body yields another prompt.

SMS storage follows TS 27.005 §3.2.2: one :class:`Store` per memory (``SM``, ``ME``,
``SR``); ``mem1`` is where ``+CMGL``/``+CMGR``/``+CMGD`` act, ``mem2`` where ``+CMGW``
writes, ``mem3`` where received messages go.  How new messages and status reports reach the
client follows ``+CNMI`` (§3.4.1): ``mt=0`` store silently, ``mt=1`` store and push
``+CMTI``, ``mt=2`` push ``+CMT`` (acknowledged with ``+CNMA`` when ``+CSMS=1``, §3.4.4);
``ds=1`` push ``+CDS``, ``ds=2`` store and push ``+CDSI``.  While ``+CNMI`` mode is 0
(power-up) indications are buffered in the TA and flushed when mode becomes 1–3.

A PIN-locked SIM only lets through commands that do not need the SIM (``AT``, ``ATE``,
``+CFUN``, ``+CSCS``, ``+CGMx``, ``+CMEE``, ``+CPIN`` ...): gammu stops its init with
``SECURITYERROR`` if ``AT+CFUN=1`` fails before it gets to ``AT+CPIN`` (modem.md §0).

Faults (slow answers, wedge, injected ``+CMS ERROR``, garbage bytes) live in
:class:`Faults` and are applied here; the port-level ones (hang-up, URC storm) are applied
by the host.
"""

from __future__ import annotations

import logging
import random
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from rpcgw.gsm import alphabet, pdu

__all__ = [
    "CmsFault",
    "Faults",
    "ModemEngine",
    "NetworkPort",
    "Output",
    "SimModemConfig",
    "Store",
    "StoredSms",
    "WedgeFault",
]

log = logging.getLogger("rpcgw.gsm.simulator")

#: An outbox item: bytes to write, or seconds to wait before writing the next item.
Output = bytes | float

CTRL_Z = 0x1A
ESC = 0x1B
CR = 0x0D
LF = 0x0A

MEMORIES = ("SM", "ME", "SR")

# TS 27.005 §3.1 <stat> values and their text-mode names.
STAT_NAMES = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT", 4: "ALL"}
STAT_BY_NAME = {name: number for number, name in STAT_NAMES.items()}

# TS 27.007 §9.2.1 / TS 27.005 §3.2.5 codes used by the engine.
CME_OPERATION_NOT_ALLOWED = 3
CME_NOT_SUPPORTED = 4
CME_SIM_PIN_REQUIRED = 11
CME_SIM_PUK_REQUIRED = 12
CME_INCORRECT_PASSWORD = 16
CME_INVALID_INDEX = 21
CME_INVALID_CHARACTERS = 25
CMS_OPERATION_NOT_ALLOWED = 302
CMS_OPERATION_NOT_SUPPORTED = 303
CMS_INVALID_PDU_PARAMETER = 304
CMS_INVALID_TEXT_PARAMETER = 305
CMS_SIM_PIN_REQUIRED = 311
CMS_SIM_PUK_REQUIRED = 316
CMS_INVALID_MEMORY_INDEX = 321
CMS_MEMORY_FULL = 322
CMS_NO_NETWORK = 331
CMS_NO_CNMA_EXPECTED = 340

CME_TEXT = {
    3: "operation not allowed",
    4: "operation not supported",
    11: "SIM PIN required",
    12: "SIM PUK required",
    16: "incorrect password",
    21: "invalid index",
    25: "invalid characters in text string",
    100: "unknown",
}

# Commands a PIN-locked SIM still answers (27.007 §8.3 and modem.md §4.2: gammu needs
# +CFUN, +CSCS and +CGMx before it ever sends +CPIN).
PIN_FREE = frozenset(
    {
        "+CFUN", "+CSCS", "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CMEE", "+CPIN", "+CSQ",
        "+GMI", "+GMM", "+GMR", "+GSN", "+CLAC", "+CPAS", "+CBC", "+CREG", "+IPR", "+CCLK",
    }
)
# 27.005 commands answer a locked SIM with +CMS ERROR: 311/316 instead of +CME ERROR.
SMS_COMMANDS = frozenset(
    {
        "+CMGF", "+CSMS", "+CPMS", "+CSCA", "+CSMP", "+CSDH", "+CNMI", "+CNMA", "+CMGS",
        "+CMGW", "+CMGL", "+CMGR", "+CMGD", "+CMSS",
    }
)


class NetworkPort(Protocol):
    """What the engine needs from the virtual network (see ``network.py``)."""

    def submit(self, engine: ModemEngine, tpdu: bytes, message_reference: int) -> int | None:
        """Take one SMS-SUBMIT from ``engine``; return ``None`` if accepted or a CMS code."""


@dataclass
class SimModemConfig:
    """Identity and behaviour of one simulated modem and its SIM."""

    name: str = "sim0"
    number: str = "+15550001000"
    imei: str = "490154203237518"
    imsi: str = "001010123456789"
    iccid: str = "89014103211118510720"
    pin: str | None = None
    puk: str = "12345678"
    manufacturer: str = "SIMULATOR"
    model: str = "SIM800-SIM"
    revision: str = "Revision:SIM-1.0"
    #: Vendor ICCID commands this firmware knows; ``AT+CRSM=176,12258,...`` always works.
    iccid_commands: tuple[str, ...] = ("+CCID",)
    #: Whether the MSISDN is written on the SIM (``+CNUM`` answers it, else just ``OK``).
    knows_number: bool = True
    smsc: str = "+15550000000"
    operator: str = "SimNet"
    rssi: int = 21
    registration: int = 1
    capacities: dict[str, int] = field(default_factory=lambda: {"SM": 30, "ME": 50, "SR": 30})
    #: Where ``+CNMI`` ds=2 stores status reports (``SR``; ``SM`` on many modems).
    status_report_memory: str = "SR"
    #: Seconds the modem takes to accept a submit (pacing for load tests).
    accept_delay: float = 0.05
    #: Seconds between a reset (``AT+CFUN=1,1``/power cycle) and the boot URCs.
    boot_delay: float = 0.1
    #: Seconds the TE has to answer a pushed ``+CMT``/``+CDS`` with ``+CNMA`` (+CSMS=1).
    cnma_timeout: float = 10.0
    #: ``False`` makes ``AT+CMGF=0`` fail, for clients that fall back to text mode.
    pdu_mode: bool = True
    #: ``False`` rejects ``+CNMI`` ds=2, for drivers that must fall back to ds=1.
    supports_ds2: bool = True


@dataclass
class WedgeFault:
    """The modem stops answering: from now on, or right after it gets the next SMS body."""

    trigger: str = "now"  # "now" | "pdu"
    until: str = "power"  # "power" (power cycle / hang-up) | "reset" (also ATZ, AT+CFUN=1,1)
    #: For trigger "pdu": whether the swallowed message still reaches the network.
    deliver: bool = True
    #: Seconds after which the firmware recovers by itself (watchdog), ``None`` = never.
    duration: float | None = None


@dataclass
class CmsFault:
    """Answer ``+CMS ERROR: code`` to submits: all, the next ``count``, or at random."""

    code: int = 38
    count: int | None = None
    probability: float = 1.0


@dataclass
class Faults:
    """Behaviour faults the engine applies (the host applies hang-ups and URC storms)."""

    delay: float = 0.0
    wedge: WedgeFault | None = None
    cms: CmsFault | None = None
    garbage: float = 0.0
    urc_storm: float = 0.0


@dataclass
class StoredSms:
    """One record of a message store (TS 27.005 §3.1 ``<stat>``, the PDU with its SCA)."""

    stat: int
    pdu_hex: str
    tpdu_length: int


class Store:
    """One memory (``SM``, ``ME`` or ``SR``): indices 1..capacity."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.records: dict[int, StoredSms] = {}

    @property
    def used(self) -> int:
        return len(self.records)

    def add(self, record: StoredSms) -> int | None:
        """Store ``record`` in the lowest free index; ``None`` when the memory is full."""
        for index in range(1, self.capacity + 1):
            if index not in self.records:
                self.records[index] = record
                return index
        return None


@dataclass
class _Reply:
    """The outcome of one command of a chain."""

    lines: list[str] = field(default_factory=list)
    error: str | None = None  # the full final line, e.g. "+CMS ERROR: 304"
    prompt: bool = False
    #: Run after the final result is written (a reboot, flushing buffered indications).
    after: Callable[[], None] | None = None


class _ParseError(Exception):
    """Syntax error in a command's parameters: answered with plain ``ERROR``."""


def _split_args(text: str) -> list[str]:
    """Split a parameter list on commas outside double quotes (V.250 §5.3.1)."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise _ParseError("unterminated string")
    args.append("".join(current).strip())
    return args


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _int_arg(args: list[str], index: int, default: int | None = None) -> int:
    if index >= len(args) or args[index] == "":
        if default is None:
            raise _ParseError("missing parameter")
        return default
    try:
        return int(args[index])
    except ValueError:
        raise _ParseError(f"not a number: {args[index]!r}") from None


def _scts_text(stamp: datetime) -> str:
    """Text-mode time stamp ``yy/MM/dd,hh:mm:ss±zz`` (27.005 §3.3.2, quarter hours)."""
    offset = stamp.utcoffset()
    quarters = int(offset.total_seconds() // 900) if offset is not None else 0
    sign = "+" if quarters >= 0 else "-"
    return stamp.strftime("%y/%m/%d,%H:%M:%S") + f"{sign}{abs(quarters):02d}"


def _toa(number: str) -> int:
    return 145 if number.startswith("+") else 129


class ModemEngine:
    """The AT command engine of one simulated modem (see the module docstring)."""

    def __init__(
        self,
        config: SimModemConfig,
        *,
        network: NetworkPort | None = None,
        rng: random.Random | None = None,
        schedule: Callable[[float, Callable[[], None]], Any] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.network = network
        self.rng = rng or random.Random()
        self._schedule = schedule
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self.faults = Faults()
        self.on_output: Callable[[], None] | None = None
        self.outbox: deque[Output] = deque()
        self.stores = {
            mem: Store(mem, config.capacities.get(mem, 30)) for mem in MEMORIES
        }
        self.message_reference = 0
        self.commands_seen = 0
        self._pin_attempts = 3
        self.sim_state = "READY"
        self._cnma_pending: deque[tuple[int, str, int, bool]] = deque()
        self._cnma_serial = 0
        self._power_on_defaults()
        if config.pin:
            self.sim_state = "SIM PIN"

    # ------------------------------------------------------------------ state

    def _power_on_defaults(self) -> None:
        """Settings a reset restores (V.250 §6.1.1 ``Z``, 27.005 defaults)."""
        self.echo = True
        self.cmee = 0
        self.cmgf = 0
        self.cscs = "IRA"
        self.csms = 0
        self.cnmi = [0, 0, 0, 0, 0]
        self.cpms = ["SM", "SM", "SM"]
        self.csmp = [17, 167, 0, 0]
        self.csdh = 0
        self.creg_mode = 0
        self.smsc = self.config.smsc
        self.cfun = 1
        self._line = bytearray()
        self._body: bytearray | None = None
        self._body_command: tuple[str, list[str]] | None = None
        self._buffered_urcs: deque[str] = deque(maxlen=64)
        # Whatever was pushed but not acknowledged is stored instead of lost (27.005 §3.4.4).
        while self._cnma_pending:
            _, pdu_hex, tpdu_length, is_report = self._cnma_pending.popleft()
            self._store_unrouted(pdu_hex, tpdu_length, is_report)

    def power_cycle(self) -> None:
        """Power off and on: settings lost, SIM locked again if it has a PIN, wedge cleared.

        Stored messages survive (they are on the SIM), like the MR counter (EF_SMSS).
        """
        self._power_on_defaults()
        self._pin_attempts = 3
        self.sim_state = "SIM PIN" if self.config.pin else "READY"
        self.faults.wedge = None
        self._boot_urcs()

    def _boot_urcs(self) -> None:
        """What a SIMCom module prints after booting (modem.md §3, quirk 7)."""
        self._pause(self.config.boot_delay)
        urcs = ["RDY", "+CFUN: 1", f"+CPIN: {self.sim_state}"]
        if self.sim_state == "READY":
            urcs += ["Call Ready", "SMS Ready"]
        for text in urcs:
            self._write_line(text)

    @property
    def wedged(self) -> bool:
        wedge = self.faults.wedge
        return wedge is not None and wedge.trigger == "now"

    def set_wedge(self, wedge: WedgeFault | None) -> None:
        self.faults.wedge = wedge
        if wedge is not None and wedge.trigger == "now":
            self._arm_wedge_timer(wedge)

    def _arm_wedge_timer(self, wedge: WedgeFault) -> None:
        if wedge.duration is None or self._schedule is None:
            return

        def recover() -> None:
            if self.faults.wedge is wedge:
                log.info("%s: wedge over after %.1fs", self.config.name, wedge.duration)
                self.faults.wedge = None
                self._line.clear()

        self._schedule(wedge.duration, recover)

    def lock_sim(self, pin: str | None) -> None:
        """Make the SIM ask for ``pin`` (from now on and after each power cycle)."""
        self.config.pin = pin
        self._pin_attempts = 3
        self.sim_state = "SIM PIN" if pin else "READY"
        if pin:
            self._write_line("+CPIN: SIM PIN")

    # ----------------------------------------------------------------- output

    def _notify(self) -> None:
        if self.on_output is not None:
            self.on_output()

    def _put(self, data: bytes) -> None:
        garbage = self.faults.garbage
        if garbage > 0 and data.startswith(b"\r\n") and self.rng.random() < garbage:
            # Line noise between lines; never CR, LF, '>' or Ctrl-Z so framing survives.
            noise = bytes(self.rng.choice(_NOISE_BYTES) for _ in range(self.rng.randint(1, 8)))
            self.outbox.append(noise)
        self.outbox.append(data)
        self._notify()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.outbox.append(float(seconds))

    def _write_line(self, text: str) -> None:
        self._put(b"\r\n" + text.encode("latin-1", "replace") + b"\r\n")

    def take_output(self) -> list[Output]:
        """Everything produced so far, in order (the host writes it)."""
        items = list(self.outbox)
        self.outbox.clear()
        return items

    def urc(self, text: str, data: str | None = None) -> None:
        """Emit an unsolicited result code now (with an optional second line, e.g. a PDU)."""
        if self.wedged:
            return
        self._put(b"\r\n" + text.encode("latin-1", "replace") + b"\r\n")
        if data is not None:
            self._put(data.encode("latin-1", "replace") + b"\r\n")

    def _indication(self, text: str, data: str | None = None) -> None:
        """Route an SMS indication according to ``+CNMI`` mode (27.005 §3.4.1)."""
        if self.cnmi[0] == 0:
            self._buffered_urcs.append(text if data is None else f"{text}\n{data}")
            return
        self.urc(text, data)

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes) -> None:
        """Process bytes written by the client."""
        for byte in data:
            self._feed_byte(byte)

    def _feed_byte(self, byte: int) -> None:
        if self.faults.wedge is not None and self.wedged:
            self._feed_wedged(byte)
            return
        if self._body is not None:
            self._feed_body(byte)
            return
        if self.echo:
            self._put(bytes([byte]))
        if byte == CR:
            line = self._line.decode("latin-1")
            self._line.clear()
            self._command_line(line)
        elif byte == LF:
            return
        elif byte == 0x08 and self._line:
            self._line.pop()
        elif len(self._line) < 1024:
            self._line.append(byte)

    def _feed_wedged(self, byte: int) -> None:
        """Swallow input; a reset command gets through only for ``until="reset"``."""
        if byte != CR:
            if len(self._line) < 1024 and byte != LF:
                self._line.append(byte)
            return
        line = self._line.decode("latin-1").upper().replace(" ", "")
        self._line.clear()
        wedge = self.faults.wedge
        if wedge is not None and wedge.until == "reset" and ("ATZ" in line or "+CFUN=1,1" in line):
            log.info("%s: wedge cleared by %s", self.config.name, line)
            self.power_cycle()

    def _feed_body(self, byte: int) -> None:
        assert self._body is not None
        if byte == CTRL_Z:
            body = bytes(self._body)
            self._body = None
            self._finish_body(body)
        elif byte == ESC:
            # 27.005 §3.5.1: ESC aborts the message and the modem answers OK.
            self._body = None
            self._body_command = None
            self._final(_Reply())
        elif byte == CR and self.cmgf == 1:
            # Text mode: CR inside the body is kept and the modem prompts again.
            if self.echo:
                self._put(b"\r")
            self._body.append(LF)
            self._put(b"\r\n> ")
        elif len(self._body) > 2048:
            self._body = None
            self._final(_Reply(error=self._cms_line(CMS_INVALID_PDU_PARAMETER)))
        else:
            if self.echo:
                self._put(bytes([byte]))
            if byte != LF or self.cmgf == 1:
                self._body.append(byte)

    # --------------------------------------------------------------- commands

    def _command_line(self, line: str) -> None:
        """Run one command line: ``AT`` followed by a chain of commands (V.250 §5.2)."""
        start = line.upper().find("AT")
        if start < 0:
            return
        self.commands_seen += 1
        rest = line[start + 2:].strip()
        lines: list[str] = []
        error: str | None = None
        try:
            commands = self._split_chain(rest)
        except _ParseError:
            commands = []
            error = "ERROR"
        afters: list[Callable[[], None]] = []
        for name, params in commands:
            try:
                reply = self._execute(name, params)
            except _ParseError:
                reply = _Reply(error="ERROR")
            lines.extend(reply.lines)
            if reply.error is not None:
                error = reply.error
                break
            if reply.after is not None:
                afters.append(reply.after)
            if reply.prompt:
                for text in lines:
                    self._write_line(text)
                self._put(b"\r\n> ")
                return
        for text in lines:
            self._write_line(text)
        self._final(_Reply(error=error))
        for after in afters:
            after()

    def _final(self, reply: _Reply) -> None:
        self._pause(self.faults.delay)
        self._write_line(reply.error or "OK")

    def _split_chain(self, rest: str) -> list[tuple[str, str]]:
        """Split ``E0V1+CMEE=1;+CREG=2`` into (name, params) pairs (V.250 §5.2.1)."""
        commands: list[tuple[str, str]] = []
        i = 0
        while i < len(rest):
            char = rest[i]
            if char in " ;":
                i += 1
                continue
            if char in "+^$*%#!":
                j = i + 1
                quoted = False
                while j < len(rest) and (quoted or rest[j] != ";"):
                    if rest[j] == '"':
                        quoted = not quoted
                    j += 1
                body = rest[i:j]
                match = re.match(r"([+^$*%#!][A-Za-z0-9]+)(.*)$", body, re.S)
                if not match:
                    raise _ParseError(body)
                commands.append((match.group(1).upper(), match.group(2).strip()))
                i = j
            elif char == "&":
                match = re.match(r"&([A-Za-z])(\d*)", rest[i:])
                if not match:
                    raise _ParseError(rest[i:])
                commands.append(("&" + match.group(1).upper(), match.group(2)))
                i += match.end()
            elif char.upper() == "S":
                match = re.match(r"[sS](\d+)(\?|=\d*)?", rest[i:])
                if not match:
                    raise _ParseError(rest[i:])
                commands.append(("S", match.group(1) + (match.group(2) or "")))
                i += match.end()
            elif char.upper() == "D":
                commands.append(("D", rest[i + 1:]))
                break
            elif char.isalpha():
                match = re.match(r"([A-Za-z])(\d*)", rest[i:])
                assert match
                commands.append((match.group(1).upper(), match.group(2)))
                i += match.end()
            else:
                raise _ParseError(rest[i:])
        return commands

    def _cme(self, code: int) -> _Reply:
        """``+CME ERROR`` as ``+CMEE`` asks for it (27.007 §9.1)."""
        if self.cmee == 0:
            return _Reply(error="ERROR")
        if self.cmee == 2:
            return _Reply(error=f"+CME ERROR: {CME_TEXT.get(code, 'unknown')}")
        return _Reply(error=f"+CME ERROR: {code}")

    def _cms_line(self, code: int) -> str:
        """``+CMS ERROR`` is given whatever ``+CMEE`` says (27.005 §3.2.5)."""
        return f"+CMS ERROR: {code}"

    def _cms(self, code: int) -> _Reply:
        return _Reply(error=self._cms_line(code))

    def _execute(self, name: str, params: str) -> _Reply:
        if not name.startswith(("+", "^", "$", "*", "%", "#", "!")):
            return self._basic(name, params)
        if params.startswith("=?"):
            form, args = "test", params[2:]
        elif params.startswith("?"):
            form, args = "read", params[1:]
        elif params.startswith("="):
            form, args = "set", params[1:]
        else:
            form, args = "exec", params
        if self.sim_state != "READY" and name not in PIN_FREE and name in _KNOWN:
            if name in SMS_COMMANDS:
                locked = (CMS_SIM_PIN_REQUIRED if self.sim_state == "SIM PIN"
                          else CMS_SIM_PUK_REQUIRED)
                return self._cms(locked)
            return self._cme(
                CME_SIM_PIN_REQUIRED if self.sim_state == "SIM PIN" else CME_SIM_PUK_REQUIRED
            )
        handler = getattr(self, "_cmd_" + name[1:].lower(), None) if name[0] == "+" else None
        if name == "^ICCID" and "^ICCID" in self.config.iccid_commands:
            return _Reply([f"^ICCID: {self.config.iccid}"])
        if handler is None:
            return self._cme(CME_NOT_SUPPORTED)
        result: _Reply = handler(form, _split_args(args) if args else [])
        return result

    # V.250 basic commands -------------------------------------------------

    def _basic(self, name: str, params: str) -> _Reply:
        value = int(params) if params.isdigit() else 0
        if name == "E":  # V.250 §6.2.4
            if value not in (0, 1):
                return _Reply(error="ERROR")
            self.echo = value == 1
            return _Reply()
        if name in ("Z", "&F"):  # V.250 §6.1.1 / §6.1.2
            self._power_on_defaults()
            return _Reply()
        if name == "V":
            return _Reply() if value == 1 else _Reply(error="ERROR")
        if name in ("Q", "X", "&C", "&D", "&W", "&K", "H", "L", "M"):
            return _Reply()
        if name == "I":
            return _Reply([f"{self.config.manufacturer} {self.config.model}", self.config.revision])
        if name == "S":
            if params.endswith("?") or "=" not in params:
                register = int(re.match(r"\d+", params).group(0))  # type: ignore[union-attr]
                return _Reply([f"{ {3: 13, 4: 10, 5: 8}.get(register, 0):03d}"])
            return _Reply()
        if name in ("D", "A"):
            return _Reply(error="NO CARRIER")
        return _Reply(error="ERROR")

    # 27.007 general commands ---------------------------------------------

    def _simple_info(self, form: str, text: str) -> _Reply:
        return _Reply() if form == "test" else _Reply([text])

    def _cmd_cgmi(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.1
        return self._simple_info(form, self.config.manufacturer)

    def _cmd_cgmm(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.2
        return self._simple_info(form, self.config.model)

    def _cmd_cgmr(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.3
        return self._simple_info(form, self.config.revision)

    def _cmd_cgsn(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.4
        return self._simple_info(form, self.config.imei)

    _cmd_gmi = _cmd_cgmi
    _cmd_gmm = _cmd_cgmm
    _cmd_gmr = _cmd_cgmr
    _cmd_gsn = _cmd_cgsn

    def _cmd_cimi(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.6
        return self._simple_info(form, self.config.imsi)

    def _cmd_ccid(self, form: str, args: list[str]) -> _Reply:
        """Vendor ICCID (SIMCom, u-blox); not in 27.007."""
        if "+CCID" not in self.config.iccid_commands:
            return self._cme(CME_NOT_SUPPORTED)
        return self._simple_info(form, f"+CCID: {self.config.iccid}")

    def _cmd_qccid(self, form: str, args: list[str]) -> _Reply:
        """Quectel ICCID."""
        if "+QCCID" not in self.config.iccid_commands:
            return self._cme(CME_NOT_SUPPORTED)
        return self._simple_info(form, f"+QCCID: {self.config.iccid}")

    def _cmd_crsm(self, form: str, args: list[str]) -> _Reply:
        """Restricted SIM access (27.007 §8.18); only READ BINARY of EF_ICCID (0x2FE2)."""
        if form == "test":
            return _Reply()
        if form != "set" or len(args) < 2 or args[:2] != ["176", "12258"]:
            return self._cme(CME_OPERATION_NOT_ALLOWED)
        digits = self.config.iccid + "F" * (len(self.config.iccid) % 2)
        swapped = "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))
        return _Reply([f'+CRSM: 144,0,"{swapped}"'])

    def _cmd_cnum(self, form: str, args: list[str]) -> _Reply:  # 27.007 §7.1
        if form == "test" or not self.config.knows_number:
            return _Reply()
        number = self.config.number
        return _Reply([f'+CNUM: "","{number}",{_toa(number)}'])

    def _cmd_cmee(self, form: str, args: list[str]) -> _Reply:  # 27.007 §9.1
        if form == "read":
            return _Reply([f"+CMEE: {self.cmee}"])
        if form == "test":
            return _Reply(["+CMEE: (0-2)"])
        value = _int_arg(args, 0, 0)
        if value not in (0, 1, 2):
            return self._cme(CME_OPERATION_NOT_ALLOWED)
        self.cmee = value
        return _Reply()

    def _cmd_cpin(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.3
        if form == "read":
            return _Reply([f"+CPIN: {self.sim_state}"])
        if form == "test":
            return _Reply()
        if form != "set" or not args:
            raise _ParseError("CPIN needs a value")
        if self.sim_state == "READY":
            return self._cme(CME_OPERATION_NOT_ALLOWED)
        code = _unquote(args[0])
        if self.sim_state == "SIM PIN":
            if code == self.config.pin:
                self.sim_state = "READY"
                self._pin_attempts = 3
                return _Reply()
            self._pin_attempts -= 1
            if self._pin_attempts <= 0:
                self.sim_state = "SIM PUK"
            return self._cme(CME_INCORRECT_PASSWORD)
        if code == self.config.puk and len(args) > 1:
            self.config.pin = _unquote(args[1])
            self.sim_state = "READY"
            self._pin_attempts = 3
            return _Reply()
        return self._cme(CME_INCORRECT_PASSWORD)

    def _cmd_cfun(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.2
        if form == "read":
            return _Reply([f"+CFUN: {self.cfun}"])
        if form == "test":
            return _Reply(["+CFUN: (0,1,4),(0,1)"])
        if form != "set":
            raise _ParseError("CFUN")
        fun = _int_arg(args, 0)
        reset = _int_arg(args, 1, 0)
        if fun not in (0, 1, 4) or reset not in (0, 1):
            return self._cme(CME_OPERATION_NOT_ALLOWED)
        if reset == 1:
            # Answer OK, then reboot: everything after this is a new life of the modem.
            return _Reply(after=self.power_cycle)
        self.cfun = fun
        return _Reply()

    def _cmd_cscs(self, form: str, args: list[str]) -> _Reply:  # 27.007 §5.5
        if form == "read":
            return _Reply([f'+CSCS: "{self.cscs}"'])
        if form == "test":
            return _Reply(['+CSCS: ("IRA","GSM","UCS2")'])
        value = _unquote(args[0]).upper() if args else ""
        if value not in ("IRA", "GSM", "UCS2"):
            return self._cme(CME_OPERATION_NOT_ALLOWED)
        self.cscs = value
        return _Reply()

    def _cmd_csq(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.5
        if form == "test":
            return _Reply(["+CSQ: (0-31,99),(0-7,99)"])
        return _Reply([f"+CSQ: {self.config.rssi},99"])

    def _cmd_creg(self, form: str, args: list[str]) -> _Reply:  # 27.007 §7.2
        if form == "test":
            return _Reply(["+CREG: (0-2)"])
        if form == "set":
            mode = _int_arg(args, 0, 0)
            if mode not in (0, 1, 2):
                return self._cme(CME_OPERATION_NOT_ALLOWED)
            self.creg_mode = mode
            return _Reply()
        stat = self.config.registration if self.sim_state == "READY" and self.cfun == 1 else 0
        extra = ',"1A2B","00C3"' if self.creg_mode == 2 and stat in (1, 5) else ""
        return _Reply([f"+CREG: {self.creg_mode},{stat}{extra}"])

    def _cmd_cops(self, form: str, args: list[str]) -> _Reply:  # 27.007 §7.3
        if form == "test":
            return _Reply([f'+COPS: (2,"{self.config.operator}","SimNet","00101",7),,(0-4),(0-2)'])
        if form == "set":
            return _Reply()
        if self.config.registration not in (1, 5):
            return _Reply(["+COPS: 0"])
        return _Reply([f'+COPS: 0,0,"{self.config.operator}",7'])

    def _cmd_cpas(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.1
        return _Reply(["+CPAS: (0-5)"] if form == "test" else ["+CPAS: 0"])

    def _cmd_cbc(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.4
        return _Reply() if form == "test" else _Reply(["+CBC: 0,100,4200"])

    def _cmd_clac(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.37
        return _Reply(sorted("AT" + name for name in _KNOWN))

    def _cmd_cclk(self, form: str, args: list[str]) -> _Reply:  # 27.007 §8.15
        if form == "read":
            return _Reply([f'+CCLK: "{_scts_text(self._clock())}"'])
        return _Reply()

    # 27.005 SMS commands -------------------------------------------------

    def _cmd_cmgf(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.2.3
        if form == "read":
            return _Reply([f"+CMGF: {self.cmgf}"])
        if form == "test":
            return _Reply(["+CMGF: (0,1)" if self.config.pdu_mode else "+CMGF: (1)"])
        value = _int_arg(args, 0, 0)
        if value not in (0, 1) or (value == 0 and not self.config.pdu_mode):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        self.cmgf = value
        return _Reply()

    def _cmd_csms(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.2.1
        if form == "test":
            return _Reply(["+CSMS: (0,1)"])
        if form == "read":
            return _Reply([f"+CSMS: {self.csms},1,1,1"])
        value = _int_arg(args, 0)
        if value not in (0, 1):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        self.csms = value
        return _Reply(["+CSMS: 1,1,1"])

    def _cpms_counts(self, memories: Iterable[str]) -> list[str]:
        parts = []
        for mem in memories:
            store = self.stores[mem]
            parts += [str(store.used), str(store.capacity)]
        return parts

    def _cmd_cpms(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.2.2
        if form == "test":
            return _Reply(['+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")'])
        if form == "read":
            fields = []
            for mem in self.cpms:
                store = self.stores[mem]
                fields += [f'"{mem}"', str(store.used), str(store.capacity)]
            return _Reply(["+CPMS: " + ",".join(fields)])
        wanted = [_unquote(arg).upper() for arg in args if arg]
        if not 1 <= len(wanted) <= 3:
            raise _ParseError("CPMS")
        allowed = (("SM", "ME", "SR"), ("SM", "ME"), ("SM", "ME"))
        for position, mem in enumerate(wanted):
            if mem not in allowed[position]:
                return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        for position, mem in enumerate(wanted):
            self.cpms[position] = mem
        return _Reply(["+CPMS: " + ",".join(self._cpms_counts(self.cpms))])

    def _cmd_csca(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.3.1
        if form == "read":
            return _Reply([f'+CSCA: "{self.smsc}",{_toa(self.smsc)}'])
        if form == "test":
            return _Reply()
        if not args:
            raise _ParseError("CSCA")
        number = _unquote(args[0])
        if self.cscs == "UCS2" and re.fullmatch(r"(?:[0-9A-Fa-f]{4})+", number):
            number = alphabet.decode_ucs2(bytes.fromhex(number))
        self.smsc = number
        return _Reply()

    def _cmd_csmp(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.3.2
        if form == "read":
            return _Reply(["+CSMP: " + ",".join(str(v) for v in self.csmp)])
        if form == "test":
            return _Reply()
        for position, arg in enumerate(args[:4]):
            if arg != "":
                self.csmp[position] = _int_arg(args, position)
        return _Reply()

    def _cmd_csdh(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.3.3
        if form == "read":
            return _Reply([f"+CSDH: {self.csdh}"])
        if form == "test":
            return _Reply(["+CSDH: (0,1)"])
        self.csdh = _int_arg(args, 0, 0)
        return _Reply()

    def _cmd_cnmi(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.4.1
        if form == "read":
            return _Reply(["+CNMI: " + ",".join(str(v) for v in self.cnmi)])
        if form == "test":
            ds_range = "(0-2)" if self.config.supports_ds2 else "(0,1)"
            return _Reply([f"+CNMI: (0-3),(0-3),(0-3),{ds_range},(0,1)"])
        values = list(self.cnmi)
        for position in range(min(len(args), 5)):
            values[position] = _int_arg(args, position, values[position])
        mode, mt, bm, ds, bfr = values
        ds_max = 2 if self.config.supports_ds2 else 1
        if not (0 <= mode <= 3 and 0 <= mt <= 3 and 0 <= bm <= 3 and 0 <= ds <= ds_max
                and bfr in (0, 1)):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        self.cnmi = values
        if mode != 0:
            buffered = list(self._buffered_urcs)
            self._buffered_urcs.clear()
            if bfr == 0:
                # Flushed after the OK of this command (27.005 §3.4.1 <bfr>=0).
                def flush() -> None:
                    for item in buffered:
                        text, _, data = item.partition("\n")
                        self.urc(text, data or None)

                return _Reply(after=flush)
        return _Reply()

    def _cmd_cnma(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.4.4
        if form == "test":
            return _Reply(["+CNMA: (0-2)"])
        if self.csms != 1 or not self._cnma_pending:
            return self._cms(CMS_NO_CNMA_EXPECTED)
        self._cnma_pending.popleft()
        return _Reply()

    def _cmd_cmgs(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.5.1 / §4.3
        if form == "test":
            return _Reply()
        if form != "set" or not args or args[0] == "":
            raise _ParseError("CMGS")
        if self.cmgf == 0:
            length = _int_arg(args, 0)
            if not 7 <= length <= 175:
                return self._cms(CMS_INVALID_PDU_PARAMETER)
        self._body = bytearray()
        self._body_command = ("+CMGS", args)
        return _Reply(prompt=True)

    def _cmd_cmgw(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.5.3 / §4.4
        if form == "test":
            return _Reply()
        if self.cmgf == 0 and (not args or not args[0].isdigit()):
            raise _ParseError("CMGW")
        self._body = bytearray()
        self._body_command = ("+CMGW", args)
        return _Reply(prompt=True)

    def _finish_body(self, body: bytes) -> None:
        assert self._body_command is not None
        command, args = self._body_command
        self._body_command = None
        if self.cmgf == 0:
            tpdu = self._parse_pdu_body(body, _int_arg(args, 0))
        else:
            tpdu = self._text_body_to_tpdu(body, args)
        if tpdu is None:
            self._final(self._cms(CMS_INVALID_PDU_PARAMETER if self.cmgf == 0
                                  else CMS_INVALID_TEXT_PARAMETER))
            return
        if command == "+CMGW":
            self._store_written(tpdu, args)
            return
        self._submit(tpdu)

    def _parse_pdu_body(self, body: bytes, length: int) -> bytes | None:
        """Check the hex PDU against ``AT+CMGS=<length>`` (TPDU octets, SCA excluded)."""
        text = body.decode("latin-1").strip()
        if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text):
            return None
        octets = bytes.fromhex(text)
        sca_length = octets[0]
        tpdu = octets[1 + sca_length:]
        if len(tpdu) != length or not tpdu:
            return None
        try:
            pdu.decode(octets, has_smsc=True)
        except (pdu.PduError, ValueError, IndexError):
            return None
        return tpdu

    def _text_body_to_tpdu(self, body: bytes, args: list[str]) -> bytes | None:
        """Build the SMS-SUBMIT a text-mode ``+CMGS`` describes (+CSMP fo/vp/pid/dcs)."""
        if not args:
            return None
        number = _unquote(args[0])
        raw = body.decode("latin-1")
        try:
            if self.cscs == "UCS2":
                number = alphabet.decode_ucs2(bytes.fromhex(number)) if re.fullmatch(
                    r"(?:[0-9A-Fa-f]{4})+", number) else number
                text = alphabet.decode_ucs2(bytes.fromhex(raw.replace("\n", "")))
            else:
                text = raw
            fo, vp, _pid, dcs = self.csmp
            encoding = "ucs2" if dcs & 0x0C == 0x08 else None
            parts = pdu.encode_submit(
                number,
                text,
                encoding=encoding,
                status_report=bool(fo & 0x20),
                validity_minutes=None,
            )
        except (pdu.PduError, ValueError):
            return None
        if len(parts) != 1:
            return None
        octets = bytes.fromhex(parts[0].hex)
        return octets[1 + octets[0]:]

    def _store_written(self, tpdu: bytes, args: list[str]) -> None:
        stat = 2
        if self.cmgf == 0 and len(args) > 1 and args[1] != "":
            stat = _int_arg(args, 1)
        elif self.cmgf == 1 and len(args) > 2:
            stat = STAT_BY_NAME.get(_unquote(args[2]).upper(), 2)
        record = StoredSms(stat, "00" + tpdu.hex().upper(), len(tpdu))
        index = self.stores[self.cpms[1]].add(record)
        if index is None:
            self._final(self._cms(CMS_MEMORY_FULL))
            return
        self._write_line(f"+CMGW: {index}")
        self._final(_Reply())

    def _submit(self, tpdu: bytes) -> None:
        """Hand a SUBMIT to the network and answer ``+CMGS: <mr>`` (27.005 §3.5.1)."""
        wedge = self.faults.wedge
        mr = self.message_reference
        if wedge is not None and wedge.trigger == "pdu":
            self.message_reference = (mr + 1) % 256
            if wedge.deliver and self.network is not None:
                self.network.submit(self, tpdu, mr)
            wedge.trigger = "now"
            self._arm_wedge_timer(wedge)
            return
        cms = self.faults.cms
        if cms is not None and (cms.probability >= 1.0 or self.rng.random() < cms.probability):
            if cms.count is not None:
                cms.count -= 1
                if cms.count <= 0:
                    self.faults.cms = None
            self._pause(self.config.accept_delay)
            self._final(self._cms(cms.code))
            return
        if self.config.registration not in (1, 5) or self.cfun != 1 or self.network is None:
            self._final(self._cms(CMS_NO_NETWORK))
            return
        self.message_reference = (mr + 1) % 256
        code = self.network.submit(self, tpdu, mr)
        self._pause(self.config.accept_delay)
        if code is not None:
            self._final(self._cms(code))
            return
        self._write_line(f"+CMGS: {mr}")
        self._final(_Reply())

    # storage -------------------------------------------------------------

    def _stat_filter(self, args: list[str]) -> int:
        if self.cmgf == 1:
            name = _unquote(args[0]).upper() if args and args[0] else "REC UNREAD"
            if name not in STAT_BY_NAME:
                raise _ParseError(name)
            return STAT_BY_NAME[name]
        stat = _int_arg(args, 0, 0)
        if stat not in STAT_NAMES:
            raise _ParseError(str(stat))
        return stat

    def _cmd_cmgl(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.4.2 / §4.1
        if form == "test":
            if self.cmgf == 1:
                return _Reply(['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")'])
            return _Reply(["+CMGL: (0-4)"])
        stat = self._stat_filter(args)
        store = self.stores[self.cpms[0]]
        lines: list[str] = []
        for index in sorted(store.records):
            record = store.records[index]
            if stat != 4 and record.stat != stat:
                continue
            lines += self._listing(index, record, "+CMGL")
            if record.stat == 0:
                record.stat = 1
        return _Reply(lines)

    def _cmd_cmgr(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.4.3 / §4.2
        if form == "test":
            return _Reply()
        index = _int_arg(args, 0)
        store = self.stores[self.cpms[0]]
        record = store.records.get(index)
        if record is None:
            return self._cms(CMS_INVALID_MEMORY_INDEX)
        lines = self._listing(index, record, "+CMGR")
        if record.stat == 0:
            record.stat = 1
        return _Reply(lines)

    def _cmd_cmgd(self, form: str, args: list[str]) -> _Reply:  # 27.005 §3.5.4
        if form == "test":
            store = self.stores[self.cpms[0]]
            return _Reply([f"+CMGD: ({','.join(map(str, sorted(store.records)))}),(0-4)"])
        index = _int_arg(args, 0)
        flag = _int_arg(args, 1, 0)
        store = self.stores[self.cpms[0]]
        if flag == 0:
            if not 1 <= index <= store.capacity:
                return self._cms(CMS_INVALID_MEMORY_INDEX)
            store.records.pop(index, None)
            return _Reply()
        # delflag 1: read; 2: read+sent; 3: read+sent+unsent; 4: everything.
        doomed = {1: {1}, 2: {1, 3}, 3: {1, 2, 3}, 4: {0, 1, 2, 3}}.get(flag)
        if doomed is None:
            raise _ParseError("delflag")
        for key in [key for key, rec in store.records.items() if rec.stat in doomed]:
            del store.records[key]
        return _Reply()

    def _listing(self, index: int, record: StoredSms, prefix: str) -> list[str]:
        """Header and data lines of one stored message for +CMGL/+CMGR."""
        where = f"{index}," if prefix == "+CMGL" else ""
        if self.cmgf == 0:
            return [f"{prefix}: {where}{record.stat},,{record.tpdu_length}", record.pdu_hex]
        try:
            message = pdu.decode(record.pdu_hex, has_smsc=True)
        except (pdu.PduError, ValueError, IndexError):
            return [f'{prefix}: {where}"{STAT_NAMES[record.stat]}"', ""]
        stat = f'"{STAT_NAMES[record.stat]}"'
        if isinstance(message, pdu.StatusReport):
            # 27.005 §3.4.3 text mode, SMS-STATUS-REPORT:
            # <stat>,<fo>,<mr>,[<ra>],[<tora>],<scts>,<dt>,<st>
            recipient = message.recipient or ""
            return [
                f'{prefix}: {where}{stat},6,{message.reference},"{recipient}",'
                f'{_toa(recipient)},"{_scts_text(message.sc_timestamp)}",'
                f'"{_scts_text(message.discharge_time)}",{message.status}'
            ]
        if isinstance(message, pdu.Deliver):
            stamp = _scts_text(message.timestamp)
            header = f'{prefix}: {where}{stat},"{message.sender}",,"{stamp}"'
            if self.csdh:
                header += (f",{message.sender_toa},4,{message.pid},{message.dcs},"
                           f'"{message.smsc or ""}",145,{record.tpdu_length}')
            return [header, self._text_out(message.text, message.encoding)]
        recipient = getattr(message, "recipient", "") or ""
        return [f'{prefix}: {where}{stat},"{recipient}",',
                self._text_out(message.text, message.encoding)]

    def _text_out(self, text: str | None, encoding: str | None) -> str:
        """Message text as a text-mode client expects it for the current +CSCS."""
        text = text or ""
        if self.cscs == "UCS2" or (encoding or "GSM").upper() in ("UNICODE", "UCS2", "UCS-2"):
            return alphabet.encode_ucs2(text).hex().upper()
        return text

    # ------------------------------------------------ from the virtual network

    def receive(self, pdu_hex: str, tpdu_length: int, *, is_report: bool = False) -> None:
        """A DELIVER (or a STATUS-REPORT if ``is_report``) reaches this modem.

        ``pdu_hex`` includes the SCA.  Routing follows ``+CNMI`` (27.005 §3.4.1).
        """
        mt, ds = self.cnmi[1], self.cnmi[3]
        if is_report:
            if ds == 1:
                self._push(f"+CDS: {tpdu_length}", pdu_hex, tpdu_length, True)
                return
            if ds == 2:
                mem = self.config.status_report_memory
                index = self.stores[mem].add(StoredSms(0, pdu_hex, tpdu_length))
                if index is None:
                    log.warning("%s: %s full, status report dropped", self.config.name, mem)
                else:
                    self._indication(f'+CDSI: "{mem}",{index}')
            # ds=0: 27.005 says no status report is routed to the TE; it is dropped.
            return
        if mt in (2, 3):
            self._push(f"+CMT: ,{tpdu_length}", pdu_hex, tpdu_length, False)
            return
        self.store_incoming(pdu_hex, tpdu_length, notify=mt == 1)

    def store_incoming(self, pdu_hex: str, tpdu_length: int, *, notify: bool) -> int | None:
        mem = self.cpms[2]
        index = self.stores[mem].add(StoredSms(0, pdu_hex, tpdu_length))
        if index is None:
            log.warning("%s: %s full, incoming message dropped", self.config.name, mem)
            return None
        if notify:
            self._indication(f'+CMTI: "{mem}",{index}')
        return index

    def _push(self, header: str, pdu_hex: str, tpdu_length: int, is_report: bool) -> None:
        """Route ``+CMT``/``+CDS`` to the TE (text-mode variants per 27.005 §3.4.1)."""
        if self.cmgf == 1:
            header, data = self._text_push(pdu_hex, is_report)
        else:
            data = pdu_hex
        if self.wedged:
            # Not routable to the TE: the network falls back to storing it.
            self._store_unrouted(pdu_hex, tpdu_length, is_report)
            return
        self._indication(header, data)
        if self.csms == 1:
            self._cnma_serial += 1
            serial = self._cnma_serial
            self._cnma_pending.append((serial, pdu_hex, tpdu_length, is_report))
            if self._schedule is not None:
                self._schedule(self.config.cnma_timeout, lambda: self._cnma_expired(serial))

    def _cnma_expired(self, serial: int) -> None:
        """No ``+CNMA`` in time: routing to the TE is disabled (mt=ds=0, 27.005 §3.4.4).

        The network then delivers the message again; here it goes straight to storage, so a
        driver that failed to acknowledge finds it with its next ``AT+CMGL`` sweep.
        """
        for item in self._cnma_pending:
            if item[0] == serial:
                self._cnma_pending.remove(item)
                self.cnmi[1] = 0
                self.cnmi[3] = 0
                self._store_unrouted(item[1], item[2], item[3])
                return

    def _store_unrouted(self, pdu_hex: str, tpdu_length: int, is_report: bool) -> None:
        if is_report:
            self.stores[self.config.status_report_memory].add(StoredSms(0, pdu_hex, tpdu_length))
        else:
            self.store_incoming(pdu_hex, tpdu_length, notify=False)

    def _text_push(self, pdu_hex: str, is_report: bool) -> tuple[str, str | None]:
        message = pdu.decode(pdu_hex, has_smsc=True)
        if is_report and isinstance(message, pdu.StatusReport):
            recipient = message.recipient or ""
            return (f'+CDS: 6,{message.reference},"{recipient}",{_toa(recipient)},'
                    f'"{_scts_text(message.sc_timestamp)}","{_scts_text(message.discharge_time)}",'
                    f"{message.status}", None)
        assert isinstance(message, pdu.Deliver)
        header = f'+CMT: "{message.sender}",,"{_scts_text(message.timestamp)}"'
        return header, self._text_out(message.text, message.encoding)


_NOISE_BYTES = bytes([0x00, 0x11, 0x13, 0x7F] + list(range(0x80, 0x100)))

#: Extended commands the engine knows (the PIN gate only guards known commands).
_KNOWN = frozenset(
    {"+" + name[5:].upper() for name in dir(ModemEngine) if name.startswith("_cmd_")}
    | {"^ICCID"}
)
