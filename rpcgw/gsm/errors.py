"""``+CMS ERROR`` / ``+CME ERROR`` tables and what the gateway should do about each code.

Theory of operation
-------------------
A modem reports a failed SMS command with one final result line, ``+CMS ERROR: <err>``
(3GPP TS 27.005 §3.2.5, SMS commands) or ``+CME ERROR: <err>`` (TS 27.007 §9.2, everything
else). ``<err>`` is numeric with ``AT+CMEE=1`` and an English phrase with ``AT+CMEE=2``.
:func:`classify` turns either form into one :class:`ErrorInfo` that answers the only two
questions the send pipeline has:

* *Whom do we blame?* -- :class:`Retry`: the network said no for good (``PERMANENT``), it may
  work later or elsewhere (``TEMPORARY``), this modem/SIM cannot send right now and must leave
  the rotation (``MODEM``), or the PDU/command we built was wrong (``BUG``).
* *What do we tell the API client?* -- ``status_code``, the SmsGateway24-compatible numeric
  failure code (9 generic failure, 10 no service, 11 null PDU, 12 radio off), and
  :func:`result_info`, an SMS-Manager-style one-line text.

The per-code classification follows /work/shared/notes/modem.md §1.5 (see the comments next
to each table). Where the notes say "permanent (SIM)" or "wait for +CREG", the problem is the
SIM or the modem rather than the message, so those codes are ``MODEM``: the message is retried
on another modem and this one comes back into rotation once it re-initialises.

Unknown codes never raise: the ranges of 27.005 §3.2.5 decide (0-127 RP-cause classes from
TS 24.008 §10.5.4.11 / 24.011 §8.2.5.4, 128-255 TP-FCS groups from TS 23.040 §9.2.3.22,
300-511 ME/TA, >=512 manufacturer specific and treated as temporary).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = [
    "CME_ERRORS",
    "CMS_ERRORS",
    "ErrorInfo",
    "GatewayStatus",
    "Retry",
    "classify",
    "code_for_text",
    "result_info",
]


class Retry(str, Enum):
    """What the send pipeline should do with a message that failed with a given error."""

    #: Retry later, possibly on another SIM (congestion, SIM busy, network timeout, 500).
    TEMPORARY = "temporary"
    #: The message can never be delivered as addressed (unassigned number, barred destination).
    PERMANENT = "permanent"
    #: This modem/SIM cannot send now (no SIM, PIN/PUK, not registered, memory full, no SMSC):
    #: take it out of rotation and retry the message on another modem.
    MODEM = "modem"
    #: Our PDU or command was wrong: never retry it unchanged.
    BUG = "bug"


class GatewayStatus(IntEnum):
    """SmsGateway24's numeric failure codes reported for a failed message."""

    GENERIC_FAILURE = 9
    NO_SERVICE = 10
    NULL_PDU = 11
    RADIO_OFF = 12


@dataclass(frozen=True)
class ErrorInfo:
    """One classified modem error.

    ``code`` is -1 when the modem gave no number (plain ``ERROR``, or an unknown verbose text).
    """

    kind: str  # "CMS" | "CME" (or "ERROR" / "COMMAND NOT SUPPORT" for plain results)
    code: int
    description: str
    retry: Retry
    status_code: int

    @property
    def retryable(self) -> bool:
        """True when the message itself may still be sent (now, later or elsewhere)."""
        return self.retry in (Retry.TEMPORARY, Retry.MODEM)


_T, _P, _M, _B = Retry.TEMPORARY, Retry.PERMANENT, Retry.MODEM, Retry.BUG
_GEN, _NOSVC, _NULL, _RADIO = (
    int(GatewayStatus.GENERIC_FAILURE),
    int(GatewayStatus.NO_SERVICE),
    int(GatewayStatus.NULL_PDU),
    int(GatewayStatus.RADIO_OFF),
)

# (code, description in the spec's words, retry class, gateway status)
_CMS_ROWS: tuple[tuple[int, str, Retry, int], ...] = (
    # --- 0..127: RP-cause values, TS 24.011 §8.2.5.4 Table 8.4 / Annex E-2 (27.005 §3.2.5).
    # modem.md §1.5: 1 bad number, 8/10 barring, 21, 27-30 permanent for this destination.
    (1, "Unassigned (unallocated) number", _P, _GEN),
    (8, "Operator determined barring", _P, _GEN),
    (10, "Call barred", _P, _GEN),
    (17, "Network failure", _T, _GEN),
    (21, "Short message transfer rejected", _P, _GEN),
    (22, "Memory capacity exceeded", _M, _GEN),
    (27, "Destination out of order", _P, _GEN),
    (28, "Unidentified subscriber", _P, _GEN),
    (29, "Facility rejected", _P, _GEN),
    (30, "Unknown subscriber", _P, _GEN),
    # modem.md §1.5: 38, 41, 42, 47 transient.
    (38, "Network out of order", _T, _GEN),
    (41, "Temporary failure", _T, _GEN),
    (42, "Congestion", _T, _GEN),
    (47, "Resources unavailable, unspecified", _T, _GEN),
    # modem.md §1.5 "permanent (SIM)": 50 is the SIM's subscription, so the modem leaves the
    # rotation; 69 is the network refusing this kind of message, so the message fails.
    (50, "Requested facility not subscribed", _M, _GEN),
    (69, "Requested facility not implemented", _P, _GEN),
    (81, "Invalid short message transfer reference value", _T, _GEN),
    # 95-99: the network could not parse what we sent (modem.md: "bug in our PDU?").
    (95, "Semantically incorrect message", _B, _NULL),
    (96, "Invalid mandatory information", _B, _NULL),
    (97, "Message type non-existent or not implemented", _B, _NULL),
    (98, "Message not compatible with short message protocol state", _B, _NULL),
    (99, "Information element non-existent or not implemented", _B, _NULL),
    (111, "Protocol error, unspecified", _T, _GEN),
    (127, "Interworking, unspecified", _T, _GEN),
    # --- 128..255: TP-FCS values, TS 23.040 §9.2.3.22.
    (0x80, "Telematic interworking not supported", _B, _NULL),
    (0x81, "Short message Type 0 not supported", _B, _NULL),
    (0x82, "Cannot replace short message", _B, _NULL),
    (0x8F, "Unspecified TP-PID error", _B, _NULL),
    (0x90, "Data coding scheme (alphabet) not supported", _B, _NULL),
    (0x91, "Message class not supported", _B, _NULL),
    (0x9F, "Unspecified TP-DCS error", _B, _NULL),
    (0xA0, "Command cannot be actioned", _B, _NULL),
    (0xA1, "Command unsupported", _B, _NULL),
    (0xAF, "Unspecified TP-Command error", _B, _NULL),
    (0xB0, "TPDU not supported", _B, _NULL),
    # modem.md §1.5: 192 SC busy transient, 193 no SC subscription permanent (a SIM matter,
    # hence MODEM), 194 SC system failure transient.
    (0xC0, "SC busy", _T, _GEN),
    (0xC1, "No SC subscription", _M, _GEN),
    (0xC2, "SC system failure", _T, _GEN),
    (0xC3, "Invalid SME address", _P, _GEN),
    (0xC4, "Destination SME barred", _P, _GEN),
    (0xC5, "SM Rejected-Duplicate SM", _P, _GEN),
    (0xC6, "TP-VPF not supported", _B, _NULL),
    (0xC7, "TP-VP not supported", _B, _NULL),
    # modem.md §1.5: 208/211 housekeeping (delete stored SMS) -> the modem leaves the rotation.
    (0xD0, "(U)SIM SMS storage full", _M, _GEN),
    (0xD1, "No SMS storage capability in (U)SIM", _M, _GEN),
    (0xD2, "Error in MS", _M, _GEN),
    (0xD3, "Memory Capacity Exceeded", _M, _GEN),
    (0xD4, "(U)SIM Application Toolkit Busy", _T, _GEN),
    (0xD5, "(U)SIM data download error", _M, _GEN),
    (0xFF, "Unspecified error cause", _T, _GEN),
    # --- 300..500: ME/TA errors, TS 27.005 §3.2.5.
    (300, "ME failure", _T, _GEN),  # modem.md: transient; reset the modem after N
    (301, "SMS service of ME reserved", _T, _GEN),
    # 302 is what modems answer while CFUN=0 (radio off) or in the wrong mode: the modem's
    # state, not the message, is at fault -> MODEM + "Radio Off". 303: the command is wrong
    # for this modem -> BUG.
    (302, "operation not allowed", _M, _RADIO),
    (303, "operation not supported", _B, _GEN),
    (304, "invalid PDU mode parameter", _B, _NULL),  # modem.md: our bug
    (305, "invalid text mode parameter", _B, _NULL),
    (310, "(U)SIM not inserted", _M, _GEN),
    (311, "(U)SIM PIN required", _M, _GEN),
    (312, "PH-(U)SIM PIN required", _M, _GEN),
    (313, "(U)SIM failure", _M, _GEN),
    (314, "(U)SIM busy", _T, _GEN),  # modem.md: transient
    (315, "(U)SIM wrong", _M, _GEN),
    (316, "(U)SIM PUK required", _M, _GEN),
    (317, "(U)SIM PIN2 required", _M, _GEN),
    (318, "(U)SIM PUK2 required", _M, _GEN),
    (320, "memory failure", _M, _GEN),
    # 321 answers CMGR/CMGD on an empty slot (expected); for a send it means a wrong index.
    (321, "invalid memory index", _B, _GEN),
    (322, "memory full", _M, _GEN),
    (330, "SMSC address unknown", _M, _GEN),  # modem.md: configuration (AT+CSCA)
    # modem.md: 331 "wait for +CREG: 0,1/5" -> the modem waits, the message goes elsewhere.
    (331, "no network service", _M, _NOSVC),
    (332, "network timeout", _T, _NOSVC),
    (340, "no +CNMA acknowledgement expected", _B, _GEN),  # harmless for CNMA, never for send
    (500, "unknown error", _T, _GEN),  # modem.md: retry a few times, then fail
)

_CME_ROWS: tuple[tuple[int, str, Retry, int], ...] = (
    # TS 27.007 §9.2.1 (general errors); classification from modem.md §1.5.
    (0, "phone failure", _T, _GEN),
    (1, "no connection to phone", _M, _GEN),
    (2, "phone-adaptor link reserved", _M, _GEN),
    (3, "operation not allowed", _M, _RADIO),  # same reasoning as CMS 302
    (4, "operation not supported", _B, _GEN),
    (5, "PH-SIM PIN required", _M, _GEN),
    (6, "PH-FSIM PIN required", _M, _GEN),
    (7, "PH-FSIM PUK required", _M, _GEN),
    (10, "SIM not inserted", _M, _GEN),
    (11, "SIM PIN required", _M, _GEN),
    (12, "SIM PUK required", _M, _GEN),
    (13, "SIM failure", _M, _GEN),
    (14, "SIM busy", _T, _GEN),  # modem.md: python-gsmmodem retries 14 with back-off
    (15, "SIM wrong", _M, _GEN),
    (16, "incorrect password", _M, _GEN),  # never retry a PIN automatically (modem.md §3 #8)
    (17, "SIM PIN2 required", _M, _GEN),
    (18, "SIM PUK2 required", _M, _GEN),
    (20, "memory full", _M, _GEN),
    (21, "invalid index", _B, _GEN),
    (22, "not found", _B, _GEN),
    (23, "memory failure", _M, _GEN),
    (24, "text string too long", _B, _GEN),
    (25, "invalid characters in text string", _B, _GEN),
    (26, "dial string too long", _P, _GEN),
    (27, "invalid characters in dial string", _P, _GEN),
    (30, "no network service", _M, _NOSVC),
    (31, "network timeout", _T, _NOSVC),
    (32, "network not allowed - emergency calls only", _M, _NOSVC),
    (40, "network personalization PIN required", _M, _GEN),
    (41, "network personalization PUK required", _M, _GEN),
    (42, "network subset personalization PIN required", _M, _GEN),
    (43, "network subset personalization PUK required", _M, _GEN),
    (44, "service provider personalization PIN required", _M, _GEN),
    (45, "service provider personalization PUK required", _M, _GEN),
    (46, "corporate personalization PIN required", _M, _GEN),
    (47, "corporate personalization PUK required", _M, _GEN),
    (48, "hidden key required", _M, _GEN),
    (49, "EAP method not supported", _B, _GEN),
    (50, "Incorrect parameters", _B, _GEN),
    (100, "unknown", _T, _GEN),
    # TS 27.007 §9.2.2 (GPRS / network attach): all mean "this SIM is not let onto the network".
    (103, "Illegal MS", _M, _NOSVC),
    (106, "Illegal ME", _M, _NOSVC),
    (107, "GPRS services not allowed", _M, _NOSVC),
    (111, "PLMN not allowed", _M, _NOSVC),
    (112, "Location area not allowed", _M, _NOSVC),
    (113, "Roaming not allowed in this location area", _M, _NOSVC),
    (148, "unspecified GPRS error", _T, _GEN),
    # Vendor: Wavecom family (modem.md §1.5 / §3): transient after AT+CFUN=1.
    (515, "please wait, init or command processing in progress", _T, _GEN),
)


def _build(kind: str, rows: tuple[tuple[int, str, Retry, int], ...]) -> dict[int, ErrorInfo]:
    return {code: ErrorInfo(kind, code, desc, retry, status) for code, desc, retry, status in rows}


#: +CMS ERROR codes, TS 27.005 §3.2.5 (RP causes, TP-FCS, ME/TA errors).
CMS_ERRORS: dict[int, ErrorInfo] = _build("CMS", _CMS_ROWS)
#: +CME ERROR codes, TS 27.007 §9.2 plus the Wavecom 515.
CME_ERRORS: dict[int, ErrorInfo] = _build("CME", _CME_ROWS)

# Verbose (AT+CMEE=2) spellings seen in the wild that differ from the spec's words.
_ALIASES: dict[str, dict[str, int]] = {
    "CMS": {
        "destination out of service": 27,
        "sim not inserted": 310,
        "sim pin required": 311,
        "sim failure": 313,
        "sim busy": 314,
        "sim wrong": 315,
        "sim puk required": 316,
        "sim not ready": 314,
        "invalid pdu mode": 304,
        "unknown": 500,
        "no network": 331,
        "smsc address unknow": 330,
    },
    "CME": {
        "sim not present": 10,
        "no sim": 10,
        "network not allowed emergency calls only": 32,
        "emergency calls only": 32,
        "unknown error": 100,
        "sim not ready": 14,
        "incorrect parameters": 50,
        "invalid parameters": 50,
    },
}


def _norm(text: str) -> str:
    """Fold case, the "(U)" prefix and punctuation so verbose variants compare equal."""
    text = text.lower().replace("(u)", "")
    return " ".join(re.sub(r"[^a-z0-9+]+", " ", text).split())


def _text_index(kind: str, table: dict[int, ErrorInfo]) -> dict[str, int]:
    index = {_norm(info.description): code for code, info in table.items()}
    for alias, code in _ALIASES[kind].items():
        index.setdefault(_norm(alias), code)
    return index


_TEXT_INDEX: dict[str, dict[str, int]] = {
    "CMS": _text_index("CMS", CMS_ERRORS),
    "CME": _text_index("CME", CME_ERRORS),
}


def code_for_text(kind: str, text: str) -> int | None:
    """Map a verbose ``AT+CMEE=2`` error text (any case) to its numeric code, or None."""
    index = _TEXT_INDEX.get(kind.strip().upper())
    if index is None:
        return None
    key = _norm(text)
    if key.isdigit():
        return int(key)
    return index.get(key)


def _rp_cause_class(code: int) -> tuple[str, Retry, int]:
    """Unknown RP cause: decide by its cause class (TS 24.008 §10.5.4.11 class bits 7-5)."""
    if code < 32:
        return "Normal event", _P, _GEN
    if code < 48:
        return "Resource unavailable", _T, _GEN
    if code < 64:
        return "Service or option not available", _P, _GEN
    if code < 80:
        return "Service or option not implemented", _P, _GEN
    if code < 96:
        return "Invalid message", _B, _NULL
    if code < 112:
        return "Protocol error", _B, _NULL
    return "Interworking", _T, _GEN


def _tp_fcs_class(code: int) -> tuple[str, Retry, int]:
    """Unknown TP-FCS value: decide by its group in TS 23.040 §9.2.3.22."""
    if code < 0xC0:  # 0x80-0xBF: TP-PID, TP-DCS, TP-Command errors, TPDU not supported
        return "TPDU error", _B, _NULL
    if code < 0xD0:
        return "SC error", _T, _GEN
    if code < 0xE0:
        return "MS error", _M, _GEN
    return "Application specific error", _T, _GEN


def _unknown(kind: str, code: int, text: str) -> ErrorInfo:
    description: str
    retry: Retry = _T
    status = _GEN
    if code >= 512:
        description = "Manufacturer specific error"
    elif kind == "CMS" and 0 <= code < 128:
        description, retry, status = _rp_cause_class(code)
    elif kind == "CMS" and 128 <= code < 256:
        description, retry, status = _tp_fcs_class(code)
    else:
        description = "Unknown error"
    verbose = text.strip()
    # Callers may pass the result name ("CME") when they have no text: not a description.
    if verbose and not verbose.isdigit() and verbose.upper() != kind:
        description = verbose
    return ErrorInfo(kind, code, description, retry, status)


def classify(kind: str, code: int | None, text: str = "") -> ErrorInfo:
    """Classify a modem error; never raises.

    ``kind`` is "CMS" or "CME" (any case); anything else (plain ``ERROR``, ``COMMAND NOT
    SUPPORT``) is an unnumbered failure that we cannot blame on anyone, so it is TEMPORARY
    like CMS 500: the caller retries a few times and then gives up. ``code`` None with a
    verbose ``text`` is looked up case-insensitively.
    """
    kind_u = (kind or "").strip().upper()
    text = text or ""
    if kind_u not in ("CMS", "CME"):
        return ErrorInfo(kind_u or "ERROR", -1, text.strip() or kind_u or "ERROR", _T, _GEN)
    if code is None:
        code = code_for_text(kind_u, text)
    if code is None:
        return ErrorInfo(kind_u, -1, text.strip() or "Unknown error", _T, _GEN)
    table = CMS_ERRORS if kind_u == "CMS" else CME_ERRORS
    known = table.get(code)
    if known is not None:
        return known
    return _unknown(kind_u, code, text)


def result_info(info: ErrorInfo) -> str:
    """SMS-Manager-style one-line result: ``"[CMS 42] Congestion"``.

    Format: ``[<kind> <code>] <description>``, with the description's first letter upper-cased;
    without a code (``code == -1``) it is ``[<kind>] <description>``.
    """
    desc = info.description[:1].upper() + info.description[1:]
    if info.code < 0:
        return f"[{info.kind}] {desc}"
    return f"[{info.kind} {info.code}] {desc}"
