"""Sans-IO parser for AT command responses (3GPP TS 27.007 §4, ITU-T V.250 §5.7 framing).

Theory of operation
-------------------
The parser does no I/O. The driver tells it what it wrote (:meth:`ATParser.begin`) and hands
it whatever bytes the serial port produced (:meth:`ATParser.feed`); it returns events:

* :class:`Info` -- an information line that answers the pending command;
* :class:`Final` -- the final result code that ends it (``OK``, ``ERROR``, ``+CME ERROR: n``...);
* :class:`Prompt` -- the ``"> "`` after ``AT+CMGS`` (27.005 §3.5.1: CR LF ``>`` SPACE, *no*
  trailing newline, so it is matched on bytes, not lines);
* :class:`Urc` -- an unsolicited result code, possibly with its second (PDU) line attached;
* :class:`Noise` -- bytes that are not text (line noise, NULs, a stray ESC): reported, never
  raised.

Rules, in the order they are applied (each one handles a quirk from modem.md §3):

1. Framing. Any run of CR and LF ends a line, so ``\\r\\n``, ``\\r\\r\\n`` (Huawei), a lone
   ``\\r`` or a lone ``\\n`` all work and empty lines vanish. Bytes are buffered until a line
   is complete, so events never depend on how the input was split.
2. Echo (quirk 1). After ``begin()``, bytes at a line start that spell the command (case
   insensitively) are dropped, whatever follows them (``\\r``, ``\\r\\n`` or nothing). The echo
   is expected until it is seen or until the command gets an Info/Prompt/Final, so the same
   parser works with ``ATE0`` and ``ATE1``.
3. Prompt (quirk 3). Only while ``begin(..., prompt=True)`` is pending, a line starting with
   ``>`` followed by a space or a line end is a Prompt; the rest of that line is the echo of
   the PDU body. After the prompt, text ending in Ctrl-Z (0x1A) or ESC (0x1B) and lines of hex
   digits are the echoed body and are dropped.
4. Final results are whole lines matched against an explicit table (``OKAY`` is not ``OK``,
   STYLE.md §2.3). A final result ends the pending command by itself, so a bare line after it
   is never taken for that command's Info; ``end()`` is only needed to give up on a command
   that never got one (Wavecom's ``+CPIN: READY`` without ``OK``, quirk 5).
5. While a command is pending, a line carrying one of its response prefixes (``AT+CSQ`` ->
   ``+CSQ:``; chained ``AT+CMEE=1;+CREG=2`` -> both) is Info; otherwise a line in the URC table
   is a Urc (quirk 2: URCs arrive between echo, info lines, prompt and result); any other line
   is Info (IMEI digits, PDU lines of ``+CMGL``/``+CMGR``).
6. With no command pending, every line is a Urc -- including a late ``OK`` from a command the
   driver gave up on (quirk 9, Kannel-style lag), which therefore can never be mistaken for the
   answer to the next command.
7. Two-line URCs (27.005 §3.4.1): ``+CMT:`` always has a second line (the PDU in PDU mode, the
   text in text mode); ``+CDS: <length>`` and ``+CBM: <length>`` (PDU mode) carry a PDU. The
   Urc is emitted once its second line arrives; if a PDU was expected and the next line is not
   hex, the Urc is emitted without it and the line is processed normally.

Numeric result codes (``ATV0``) are not supported: the driver always sets ``ATV1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

from rpcgw.gsm.errors import code_for_text

__all__ = [
    "ATParser",
    "ATProtocolError",
    "Event",
    "Final",
    "FINAL_RESULTS",
    "Info",
    "Noise",
    "Prompt",
    "Urc",
    "response_prefixes",
]


class ATProtocolError(Exception):
    """Raised only for misuse of the parser by the driver (never for modem output)."""


@dataclass(frozen=True)
class Info:
    """An information line belonging to the pending command."""

    text: str


@dataclass(frozen=True)
class Final:
    """The final result code of the pending command.

    ``result`` is one of :data:`FINAL_RESULTS`. For ``CME``/``CMS``, ``code`` is the numeric
    error (also when the modem gave a known verbose text, which is then kept in ``text``);
    an unknown verbose text gives ``code=None`` and the text.
    """

    result: str
    code: int | None = None
    text: str = ""


@dataclass(frozen=True)
class Prompt:
    """The ``"> "`` prompt: the driver may now write the message body and Ctrl-Z."""


@dataclass(frozen=True)
class Urc:
    """An unsolicited result code. ``pdu`` is the second line of a two-line URC
    (``+CMT``, ``+CDS``, ``+CBM``): the hex PDU in PDU mode, the text in text mode."""

    text: str
    pdu: str | None = None


@dataclass(frozen=True)
class Noise:
    """Bytes that could not be framed as text (reported, never raised)."""

    data: bytes


Event = Union[Info, Final, Prompt, Urc, Noise]

#: Result values a :class:`Final` can carry.
FINAL_RESULTS: frozenset[str] = frozenset(
    {"OK", "ERROR", "CME", "CMS", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE",
     "COMMAND NOT SUPPORT"}
)

# Whole-line final result codes (V.250 §5.7.1 Table 1; 27.007 §9.2; Huawei's non-standard
# "COMMAND NOT SUPPORT" from python-gsmmodem's fake E1752). Compared after stripping blanks.
_FINAL_LINES: dict[str, str] = {
    "OK": "OK",
    "ERROR": "ERROR",
    "NO CARRIER": "NO CARRIER",
    "BUSY": "BUSY",
    "NO ANSWER": "NO ANSWER",
    "NO DIALTONE": "NO DIALTONE",
    "NO DIAL TONE": "NO DIALTONE",
    "COMMAND NOT SUPPORT": "COMMAND NOT SUPPORT",
}
# "+CME ERROR: <err>" (27.007 §9.2) and "+CMS ERROR: <err>" (27.005 §3.2.5).
_CMX_ERROR = re.compile(r"\+CM([ES]) ERROR:\s*(.*)")

# URCs whose line starts with a "<name>:" token (upper-cased for comparison).
_URC_NAMES: frozenset[str] = frozenset(
    {
        # 27.005 §3.4.1 (+CNMI) new message / report / cell broadcast indications
        "+CMTI", "+CMT", "+CDSI", "+CDS", "+CBMI", "+CBM",
        # 27.007: calls (§6.11 +CRING, §7.6 +CLIP, §7.12 +CCWA, §7.17 +CSSI/+CSSU),
        # registration (§7.2 +CREG, §10.1.20 +CGREG, §10.1.22 +CEREG), USSD (§7.15),
        # indicators (§8.10 +CIEV), time zone (§7.30 +CTZV/+CTZE), packet events (+CGEV)
        "+CRING", "+CLIP", "+CCWA", "+CSSI", "+CSSU", "+CREG", "+CGREG", "+CEREG", "+CUSD",
        "+CIEV", "+CTZV", "+CTZE", "+CTZU", "+CGEV", "+CUSATP", "+CUSATEND", "+STIN",
        # after a reboot (modem.md §3 quirk 7), when not the pending command's answer
        "+CFUN", "+CPIN", "+PACSP",
        # Huawei (modem.md §3: ^RSSI, call progress ^ORIG/^CONF/^CONN/^CEND)
        "^RSSI", "^BOOT", "^MODE", "^SIMST", "^SRVST", "^HCSQ", "^SYSINFOEX", "^ORIG", "^CONF",
        "^CONN", "^CEND", "^STIN", "^NDISSTAT", "^DSFLOWRPT",
        # ZTE / Qualcomm (python-gsmmodem fake M6280)
        "+ZPAS", "+ZDONR", "+ZPASR", "+ZUSIMR", "+ZEND",
        # Wavecom, Quectel, SIMCom, Cinterion, u-blox, Telit
        "+WIND", "+QIND", "+QUSIM", "+QSTK", "*PSUTTZ", "*PSNWID", "DST",
        "^SYSSTART", "+UUSIMSTAT", "+UUPSDD", "#QSS",
    }
)
# URCs that are a whole line (upper-cased for comparison).
_URC_LINES: frozenset[str] = frozenset(
    {
        "RING", "RDY", "SMS READY", "SMS DONE", "CALL READY", "PB DONE", "+PBREADY",
        "NORMAL POWER DOWN", "POWERED DOWN", "^SYSSTART", "^SHUTDOWN",
    }
)
# URCs recognised by how the line starts (SIMCom voltage warnings, spelled "WARNNING" too).
_URC_LINE_PREFIXES: tuple[str, ...] = ("UNDER-VOLTAGE", "OVER-VOLTAGE")

# Prefixes that stay URCs even while the pending command is a *set* command with that name:
# AT+CUSD=1,"*100#" answers OK at once and the network reply comes later as a +CUSD URC
# (27.007 §7.15); AT+CUSD? still gets its +CUSD: line as Info.
_URC_EVEN_FOR_SET: frozenset[str] = frozenset({"+CUSD"})

# "<+^$%*#><letter>..." command/response names (V.250 §5.4.1 extended syntax plus vendors).
_NAME = re.compile(r"([+^$%*#][A-Z][A-Z0-9_]*)(=\?|=|\?)?")
_QUOTED = re.compile(r'"[^"]*"?')
_HEX_LINE = re.compile(r"[0-9A-Fa-f]+")
# +CMT in PDU mode: "+CMT: [<alpha>],<length>" (27.005 §3.4.1); some firmwares omit <alpha>.
_CMT_PDU_PARAMS = re.compile(r'\s*(?:"[^"]*"|[^,"]*)\s*,\s*\d+\s*|\s*\d+\s*')
_SINGLE_INT = re.compile(r"\s*\d+\s*")

_SUB, _ESC = 0x1A, 0x1B
_LINE_ENDS = b"\r\n"
_LINE_END_RE = re.compile(rb"[\r\n]")
# After the prompt, Ctrl-Z (send) and ESC (abort) also end the echoed body (27.005 §3.5.1).
_BODY_END_RE = re.compile(rb"[\r\n\x1a\x1b]")
#: Longest line kept while waiting for its end (Huawei's one-line +CLAC is a few KiB).
MAX_LINE = 64 * 1024


def response_prefixes(command: str) -> frozenset[str]:
    """Return the response prefixes (upper-cased names) a command line's Info lines carry.

    ``AT+CMEE=1;+CREG=2`` -> ``{"+CMEE", "+CREG"}``. Quoted arguments are skipped so
    ``AT+CUSD=1,"*100#"`` does not yield ``*100``.
    """
    body = command.strip()
    if body[:2].upper() == "AT":
        body = body[2:]
    body = _QUOTED.sub('""', body).upper()
    names: set[str] = set()
    for match in _NAME.finditer(body):
        name, op = match.group(1), match.group(2)
        if name in _URC_EVEN_FOR_SET and op == "=":
            continue
        names.add(name)
    return frozenset(names)


def _line_name(text: str) -> str:
    """The upper-cased ``<name>`` of a ``<name>: ...`` line, or '' for a bare line."""
    if not text or text[0] not in "+^$%*#":
        head = text.split(":", 1)[0].strip().upper() if ":" in text else ""
        return head if head in _URC_NAMES else ""
    return text.split(":", 1)[0].strip().upper()


def _is_urc(text: str, name: str) -> bool:
    upper = text.upper()
    return (
        (bool(name) and name in _URC_NAMES)
        or upper in _URC_LINES
        or upper.startswith(_URC_LINE_PREFIXES)
    )


def _parse_final(text: str) -> Final | None:
    """Match a stripped line against the final-result table (whole line only)."""
    result = _FINAL_LINES.get(text)
    if result is not None:
        return Final(result)
    match = _CMX_ERROR.fullmatch(text)
    if match is None:
        return None
    kind = "CM" + match.group(1)
    arg = match.group(2).strip()
    if arg.isdigit():
        return Final(kind, int(arg))
    return Final(kind, code_for_text(kind, arg) if arg else None, arg)


def _two_line_kind(name: str, text: str) -> int:
    """0: single-line URC; 1: a hex PDU line follows; 2: any text line follows."""
    params = text.split(":", 1)[1] if ":" in text else ""
    if name == "+CMT":
        return 1 if _CMT_PDU_PARAMS.fullmatch(params) else 2
    if name in ("+CDS", "+CBM"):
        if _SINGLE_INT.fullmatch(params):
            return 1
        return 2 if name == "+CBM" else 0
    return 0


def _clean(raw: bytes) -> tuple[str, bytes]:
    """Split a framed line into its text and the noise bytes removed from it.

    Noise is any C0 control but TAB, DEL, and bytes that are not valid UTF-8.
    """
    decoded = raw.decode("utf-8", "surrogateescape")
    text: list[str] = []
    noise = bytearray()
    for ch in decoded:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            noise.append(code - 0xDC00)
        elif (code < 0x20 and ch != "\t") or code == 0x7F:
            noise.append(code)
        else:
            text.append(ch)
    return "".join(text), bytes(noise)


@dataclass
class _Pending:
    command: str
    echo: bytes
    prefixes: frozenset[str]
    prompt: bool
    echo_expected: bool = True
    in_body: bool = False


class ATParser:
    """Incremental AT response parser. See the module docstring for the rules."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending: _Pending | None = None
        # First line of a two-line URC waiting for its second line, and what it expects.
        self._urc_head: str | None = None
        self._urc_kind = 0
        # Bytes of the buffer already searched for a line end, so that a long line fed in
        # small pieces is scanned once (linear), not once per feed (quadratic).
        self._scanned = 0

    # ------------------------------------------------------------------ driver API

    @property
    def pending(self) -> str | None:
        """The command line awaiting its final result, or None."""
        return self._pending.command if self._pending else None

    @property
    def prompt_expected(self) -> bool:
        """True while the pending command was begun with ``prompt=True``."""
        return bool(self._pending and self._pending.prompt)

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a line."""
        return len(self._buf)

    def begin(self, command: str, *, prompt: bool = False) -> None:
        """Declare that ``command`` (e.g. ``"AT+CMGS=19"``) is being written.

        Call it before writing (or at least before feeding bytes read after writing).
        Raises :class:`ATProtocolError` if another command is still pending: call
        :meth:`end` first to abandon it.
        """
        if self._pending is not None:
            raise ATProtocolError(
                f"{command!r} begun while {self._pending.command!r} is still pending"
            )
        line = command.strip("\r\n ")
        if not line:
            raise ATProtocolError("empty command line")
        prefixes = response_prefixes(line)
        self._pending = _Pending(
            command=line,
            echo=line.encode("utf-8", "replace").upper(),
            prefixes=prefixes,
            prompt=prompt,
        )

    def end(self) -> None:
        """Forget the pending command (after its final result, or after giving up on it).

        A final result already ends the command, so this is a no-op then.
        """
        self._pending = None

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes read from the modem; return the events they complete."""
        self._buf += data
        out: list[Event] = []
        self._run(out)
        return out

    def flush(self) -> list[Event]:
        """At end of stream: treat what is buffered as a complete line."""
        out: list[Event] = []
        self._run(out)
        if self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            self._scanned = 0
            self._line(raw, out)
        if self._urc_head is not None:
            out.append(Urc(self._urc_head))
            self._urc_head = None
        return out

    # ------------------------------------------------------------------ internals

    def _run(self, out: list[Event]) -> None:
        buf = self._buf
        while True:
            start = 0
            while start < len(buf) and buf[start] in _LINE_ENDS:
                start += 1
            if start:
                del buf[:start]
            if not buf:
                return
            pending = self._pending
            if pending is not None and pending.echo_expected:
                head = bytes(buf[: len(pending.echo)]).upper()
                if head == pending.echo:
                    del buf[: len(pending.echo)]
                    pending.echo_expected = False
                    continue
                if pending.echo.startswith(head):
                    return  # could still be the echo: wait for more bytes
            if pending is not None and pending.prompt and buf[0] == ord(">"):
                if len(buf) == 1:
                    return
                if buf[1] in b" \r\n":
                    del buf[: 2 if buf[1] == ord(" ") else 1]
                    self._emit_urc_head(out)
                    pending.echo_expected = False
                    pending.in_body = True
                    out.append(Prompt())
                    continue
            in_body = pending is not None and pending.in_body
            match = (_BODY_END_RE if in_body else _LINE_END_RE).search(buf, self._scanned)
            if match is None:
                self._scanned = len(buf)
                if len(buf) > MAX_LINE:
                    out.append(Noise(bytes(buf)))
                    buf.clear()
                    self._scanned = 0
                return
            idx = match.start()
            raw = bytes(buf[:idx])
            terminator = buf[idx]
            del buf[: idx + 1]
            self._scanned = 0
            if terminator in (_SUB, _ESC):
                continue  # the echoed message body (27.005 §3.5.1): drop it
            self._line(raw, out)

    def _emit_urc_head(self, out: list[Event]) -> None:
        if self._urc_head is not None:
            out.append(Urc(self._urc_head))
            self._urc_head = None

    def _line(self, raw: bytes, out: list[Event]) -> None:
        text, noise = _clean(raw)
        if noise:
            out.append(Noise(noise))
        text = text.strip()
        if not text:
            return
        if self._urc_head is not None:
            head, kind = self._urc_head, self._urc_kind
            self._urc_head = None
            if kind == 2 or _HEX_LINE.fullmatch(text):
                out.append(Urc(head, text))
                return
            out.append(Urc(head))
        pending = self._pending
        if pending is None:
            self._urc(text, _line_name(text), out)
            return
        final = _parse_final(text)
        if final is not None:
            self._pending = None
            out.append(final)
            return
        name = _line_name(text)
        if name and name in pending.prefixes:
            pending.echo_expected = False
            pending.in_body = False
            out.append(Info(text))
        elif _is_urc(text, name):
            self._urc(text, name, out)
        elif pending.in_body and _HEX_LINE.fullmatch(text):
            return  # echoed PDU whose Ctrl-Z was not echoed
        else:
            pending.echo_expected = False
            out.append(Info(text))

    def _urc(self, text: str, name: str, out: list[Event]) -> None:
        kind = _two_line_kind(name, text)
        if kind:
            self._urc_head, self._urc_kind = text, kind
        else:
            out.append(Urc(text))
