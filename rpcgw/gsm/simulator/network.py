"""The virtual GSM network joining simulated modems.

A submit from a simulated SIM (an SMS-SUBMIT TPDU, TS 23.040 §9.2.2.2) goes through the
*rules* first (a number can be made to fail at submit with a ``+CMS ERROR``, fail later with
a status report carrying a permanent TP-ST, or never get a report).  Then:

* to the number of another attached SIM: after the delivery delay it arrives there as an
  SMS-DELIVER built from the SUBMIT's own PID/DCS/UDH/UD, so a multipart message arrives as
  parts with their concatenation header, like on a real network;
* to any other number: it is "delivered" after the delivery delay.

Either way, when the SUBMIT asked for one (TP-SRR), a STATUS-REPORT (§9.2.2.3) with the
modem's TP-MR goes back to the sending modem.

Everything the network accepted is recorded as *traffic*: one :class:`TrafficRecord` per
message, reassembled from its parts (keyed by sending SIM, recipient and concatenation
reference), with the MRs, times, and counts of duplicate parts, so tests and load runs can
count duplicates and losses from outside the gateway.

Incoming messages from the outside world are created with :meth:`VirtualNetwork.inject`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from rpcgw.gsm import pdu
from rpcgw.gsm.simulator.engine import ModemEngine

__all__ = ["InjectResult", "Rule", "TrafficRecord", "UnknownNumber", "VirtualNetwork"]

log = logging.getLogger("rpcgw.gsm.simulator.network")

#: TS 23.040 §9.2.3.15 TP-ST values the network produces.
ST_DELIVERED = 0x00
ST_INCOMPATIBLE_DESTINATION = 0x41  # permanent error, SC stopped trying
#: 24.011 Annex E-2 RP-causes used for ``+CMS ERROR`` at submit (27.005 §3.2.5).
CMS_UNASSIGNED_NUMBER = 1
CMS_NETWORK_OUT_OF_ORDER = 38

DEFAULT_SMSC = "+15550000000"


class UnknownNumber(LookupError):
    """No attached SIM has the number an injected message is addressed to."""


@dataclass
class Rule:
    """What happens to messages for numbers matching ``pattern``.

    ``pattern``: an exact number, a glob (``+336*``, ``+1555?00*``) or ``re:<regex>``.
    ``action``: ``permanent`` (at ``stage`` ``report``: accepted, then a status report with
    TP-ST ``code`` or 0x41; at ``submit``: ``+CMS ERROR: code`` or 1), ``temporary``
    (``+CMS ERROR: code`` or 38 at submit) or ``no-report`` (delivered, never reported).
    """

    pattern: str
    action: str
    stage: str = "report"
    code: int | None = None

    def __post_init__(self) -> None:
        if self.action not in ("permanent", "temporary", "no-report"):
            raise ValueError(f"unknown rule action {self.action!r}")
        if self.stage not in ("report", "submit"):
            raise ValueError(f"unknown rule stage {self.stage!r}")
        if self.action == "temporary":
            self.stage = "submit"

    def matches(self, number: str) -> bool:
        if self.pattern.startswith("re:"):
            return re.fullmatch(self.pattern[3:], number) is not None
        if any(char in self.pattern for char in "*?["):
            return fnmatch.fnmatchcase(number, self.pattern)
        return number == self.pattern

    @classmethod
    def parse(cls, spec: str, default_action: str = "permanent") -> Rule:
        """Parse ``PATTERN[:permanent|temporary|no-report[:submit|report][:CODE]]``."""
        if spec.startswith("re:"):
            parts = spec[3:].split(":")
            head, rest = "re:" + parts[0], parts[1:]
        else:
            parts = spec.split(":")
            head, rest = parts[0], parts[1:]
        action = rest[0] if rest else default_action
        stage = "report" if action != "temporary" else "submit"
        code: int | None = None
        for item in rest[1:]:
            if item in ("submit", "report"):
                stage = item
            elif item:
                code = int(item, 0)
        return cls(head, action, stage, code)


@dataclass
class TrafficRecord:
    """One message the network accepted from a simulated SIM (all its parts)."""

    id: int
    sim_name: str
    sim_number: str
    sim_imsi: str
    recipient: str
    parts: int
    concat_reference: int | None
    first_at: float
    last_at: float
    status_report: bool
    texts: dict[int, str] = field(default_factory=dict)
    references: list[int] = field(default_factory=list)
    duplicate_parts: int = 0
    #: "pending" until delivered; then "delivered", "failed" or "local" (to another SIM).
    outcome: str = "pending"

    @property
    def parts_received(self) -> int:
        return len(self.texts)

    @property
    def complete(self) -> bool:
        return self.parts_received == self.parts

    @property
    def text(self) -> str:
        """The reassembled text (parts in sequence order; missing parts are left out)."""
        return "".join(self.texts[seq] for seq in sorted(self.texts))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("texts")
        data.update(text=self.text, parts_received=self.parts_received, complete=self.complete)
        return data


@dataclass(frozen=True)
class InjectResult:
    """Where an injected message went."""

    modem: str
    number: str
    parts: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _swap_bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def _address(number: str) -> bytes:
    """TP-OA/TP-DA field: digit count, TOA, swapped BCD (TS 23.040 §9.1.2.5)."""
    digits = number.lstrip("+")
    toa = 0x91 if number.startswith("+") else 0x81
    return bytes([len(digits), toa]) + _swap_bcd(digits)


def _sca(number: str) -> bytes:
    """The SMSC address prefix of a PDU: octet count (TOA included), TOA, BCD (27.005 §4)."""
    digits = number.lstrip("+")
    body = bytes([0x91 if number.startswith("+") else 0x81]) + _swap_bcd(digits)
    return bytes([len(body)]) + body


def _scts(stamp: datetime) -> bytes:
    """TP-SCTS: 7 swapped-BCD octets, time zone in quarter hours (TS 23.040 §9.2.3.11)."""
    offset = stamp.utcoffset()
    quarters = int(offset.total_seconds() // 900) if offset is not None else 0
    text = stamp.strftime("%y%m%d%H%M%S") + f"{abs(quarters):02d}"
    octets = bytearray(_swap_bcd(text))
    if quarters < 0:
        octets[6] |= 0x08
    return bytes(octets)


def submit_to_deliver(tpdu: bytes, sender: str, stamp: datetime) -> bytes:
    """Turn an SMS-SUBMIT TPDU into the SMS-DELIVER TPDU the recipient gets.

    PID, DCS, UDL and UD (with any UDH) are carried over unchanged (TS 23.040 §9.2.2.1/2),
    which is what keeps concatenated parts intact end to end.
    """
    first = tpdu[0]
    digits = tpdu[2]
    position = 4 + (digits + 1) // 2
    pid, dcs = tpdu[position], tpdu[position + 1]
    position += 2
    vpf = (first >> 3) & 0x03
    position += {0: 0, 2: 1}.get(vpf, 7)
    user_data = tpdu[position:]
    # SMS-DELIVER first octet: MTI=00, TP-MMS=1 (no more messages), UDHI copied.
    deliver_first = 0x04 | (first & 0x40)
    return bytes([deliver_first]) + _address(sender) + bytes([pid, dcs]) + _scts(stamp) + user_data


class VirtualNetwork:
    """Joins simulated modems; see the module docstring."""

    def __init__(
        self,
        *,
        delivery_delay: tuple[float, float] | float = (0.5, 1.0),
        smsc: str = DEFAULT_SMSC,
        rules: Iterable[Rule] = (),
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if isinstance(delivery_delay, (int, float)):
            delivery_delay = (float(delivery_delay), float(delivery_delay))
        self.delivery_delay = delivery_delay
        self.smsc = smsc
        self.rules: list[Rule] = list(rules)
        self.rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._sims: dict[str, ModemEngine] = {}
        self._records: list[TrafficRecord] = []
        self._open: dict[tuple[str, str, int, int], TrafficRecord] = {}
        self._ids = itertools.count(1)
        self._concat_refs = itertools.count(self.rng.randrange(256))
        self._round_robin = itertools.count()
        self._timers: set[asyncio.TimerHandle] = set()
        self.rejected = 0
        self.injected: list[dict[str, Any]] = []

    # ----------------------------------------------------------- membership

    def attach(self, engine: ModemEngine) -> None:
        """Make ``engine``'s SIM reachable under its number."""
        self._sims[engine.config.number] = engine
        engine.network = self

    def detach(self, engine: ModemEngine) -> None:
        if self._sims.get(engine.config.number) is engine:
            del self._sims[engine.config.number]

    @property
    def numbers(self) -> list[str]:
        return list(self._sims)

    def close(self) -> None:
        """Cancel pending deliveries and reports."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    # ----------------------------------------------------------------- rules

    def add_rule(self, pattern: str, action: str, *, stage: str | None = None,
                 code: int | None = None) -> Rule:
        rule = Rule(pattern, action, stage or ("submit" if action == "temporary" else "report"),
                    code)
        self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        self.rules.clear()

    def _rule_for(self, number: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(number):
                return rule
        return None

    # --------------------------------------------------------------- timers

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(delay, run)
        self._timers.add(handle)

    def _delay(self) -> float:
        low, high = self.delivery_delay
        return low if high <= low else self.rng.uniform(low, high)

    # ------------------------------------------------------- mobile-originated

    def submit(self, engine: ModemEngine, tpdu: bytes, message_reference: int) -> int | None:
        """Take one SMS-SUBMIT from ``engine``; ``None`` if accepted, else a CMS error code."""
        try:
            message = pdu.decode(b"\x00" + tpdu, has_smsc=True)
        except (pdu.PduError, ValueError, IndexError):
            return 304
        if not isinstance(message, pdu.Submit):
            return 304
        recipient = message.recipient or ""
        rule = self._rule_for(recipient)
        if rule is not None and rule.stage == "submit":
            self.rejected += 1
            default = (CMS_NETWORK_OUT_OF_ORDER if rule.action == "temporary"
                       else CMS_UNASSIGNED_NUMBER)
            return rule.code if rule.code is not None else default
        record = self._record(engine, message, message_reference)
        stamp = self._clock()
        target = self._sims.get(recipient)
        delay = self._delay()

        def deliver() -> None:
            if target is not None and (rule is None or rule.action == "no-report"):
                deliver_tpdu = submit_to_deliver(tpdu, engine.config.number, self._clock())
                full = _sca(self.smsc) + deliver_tpdu
                target.receive(full.hex().upper(), len(deliver_tpdu))
                record.outcome = "local"
            elif rule is not None and rule.action == "permanent":
                record.outcome = "failed"
            else:
                record.outcome = "delivered"
            if not message.status_report or (rule is not None and rule.action == "no-report"):
                return
            status = ST_DELIVERED
            if rule is not None and rule.action == "permanent":
                status = rule.code if rule.code is not None else ST_INCOMPATIBLE_DESTINATION
            report = pdu.encode_status_report(
                message_reference,
                recipient,
                status=status,
                sc_timestamp=stamp,
                discharge_time=self._clock(),
                smsc=self.smsc,
            )
            engine.receive(report.hex, report.tpdu_length, is_report=True)

        self._later(delay, deliver)
        return None

    def _record(self, engine: ModemEngine, message: pdu.Submit, mr: int) -> TrafficRecord:
        now = time.time()
        sim = engine.config
        recipient = message.recipient or ""
        concat = message.concat
        text = message.text or ""
        if concat is None or concat.total <= 1:
            record = self._new_record(sim.name, sim.number, sim.imsi, recipient, 1, None, now,
                                      bool(message.status_report))
            record.texts[1] = text
            record.references.append(mr)
            return record
        key = (sim.imsi, recipient, concat.reference, concat.total)
        existing = self._open.get(key)
        if existing is not None and concat.seq in existing.texts:
            record = existing
            # The same part again: a resend (after an unknown outcome?) of a part we have.
            record.duplicate_parts += 1
            record.references.append(mr)
            record.last_at = now
            return record
        if existing is None:
            record = self._new_record(sim.name, sim.number, sim.imsi, recipient, concat.total,
                                      concat.reference, now, bool(message.status_report))
            self._open[key] = record
        else:
            record = existing
        record.texts[concat.seq] = text
        record.references.append(mr)
        record.last_at = now
        if record.complete:
            self._open.pop(key, None)
        return record

    def _new_record(self, name: str, number: str, imsi: str, recipient: str, parts: int,
                    reference: int | None, now: float, report: bool) -> TrafficRecord:
        record = TrafficRecord(next(self._ids), name, number, imsi, recipient, parts, reference,
                               now, now, report)
        self._records.append(record)
        return record

    def traffic(
        self,
        *,
        recipient: str | None = None,
        sim: str | None = None,
        text: str | None = None,
        since: float | None = None,
        complete: bool | None = None,
    ) -> list[TrafficRecord]:
        """Recorded messages, oldest first, filtered.

        ``sim`` matches the sending SIM's name, number or IMSI; ``text`` is an exact match of
        the reassembled text; ``since`` a ``time.time()`` value compared with ``first_at``.
        """
        found = []
        for record in self._records:
            if recipient is not None and record.recipient != recipient:
                continue
            if sim is not None and sim not in (record.sim_name, record.sim_number,
                                               record.sim_imsi):
                continue
            if text is not None and record.text != text:
                continue
            if since is not None and record.first_at < since:
                continue
            if complete is not None and record.complete != complete:
                continue
            found.append(record)
        return found

    def clear_traffic(self) -> None:
        self._records.clear()
        self._open.clear()

    # ------------------------------------------------------- mobile-terminated

    def inject(
        self,
        sender: str,
        to: str | None,
        text: str,
        *,
        encoding: str | None = None,
        flash: bool = False,
    ) -> InjectResult:
        """Deliver a message from the outside world to the SIM numbered ``to``.

        ``to`` empty or ``None`` picks the attached SIMs in turn.  Long texts become
        multipart SMS-DELIVERs with a concatenation UDH.
        """
        if to:
            target = self._sims.get(to)
            if target is None:
                raise UnknownNumber(f"no simulated SIM has number {to}")
        else:
            if not self._sims:
                raise UnknownNumber("no simulated SIM is attached")
            sims = list(self._sims.values())
            target = sims[next(self._round_robin) % len(sims)]
        parts = pdu.encode_deliver(
            sender,
            text,
            timestamp=self._clock(),
            smsc=self.smsc,
            encoding=encoding,
            concat_reference=next(self._concat_refs) % 256,
            flash=flash,
        )
        for part in parts:
            target.receive(part.hex, part.tpdu_length)
        self.injected.append(
            {"from": sender, "to": target.config.number, "text": text, "parts": len(parts),
             "at": time.time()}
        )
        return InjectResult(target.config.name, target.config.number, len(parts))
