"""SMS TPDUs in PDU mode (3GPP TS 23.040 §9.2, framed per TS 27.005 §4): pure functions.

Theory of operation
-------------------
In PDU mode the modem exchanges hex strings: the SMSC address (SCA, "00" = the SIM's SMSC)
followed by one TPDU. We *encode* SMS-SUBMIT (to send), and, for the modem simulator,
SMS-DELIVER and SMS-STATUS-REPORT; we *decode* all three. Layouts (23.040 §9.2.2):

* SUBMIT: FO · MR · DA · PID · DCS · [VP] · UDL · UD
* DELIVER: FO · OA · PID · DCS · SCTS · UDL · UD
* STATUS-REPORT: FO · MR · RA · SCTS · DT · ST · [PI · PID · DCS · UDL · UD]

Text goes through :mod:`rpcgw.gsm.alphabet`; a long text becomes several PDUs, each with
a concatenation user data header (23.040 §9.2.3.24.1: ``05 00 03 ref total seq``, or the
16-bit reference form ``06 08 04 refhi reflo total seq`` when ``concat_reference > 255``),
GSM-7 text after the header starting on a septet boundary thanks to fill bits.

:func:`decode` reads untrusted bytes (modem storage, URCs, other tools' PDUs), so it bounds
every read and raises nothing but :class:`PduError` (checked by hypothesis fuzzing). Where a
field is merely odd it is tolerated the way receivers must (reserved TP-MTI -> DELIVER,
reserved DCS -> GSM-7, non-BCD time zone digits as seen from real SMSCs, invalid
concatenation IE -> ignored).

Two-digit years: **YY < 70 -> 20YY, else 19YY** (so ``89`` is 1998 as python-gsmmodem reads
it, not 2089/2098); encoding accepts years 1970-2069.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Union

from rpcgw.gsm.alphabet import (
    EncodingError,
    decode_ucs2,
    encode_ucs2,
    from_septets,
    is_gsm,
    pack_septets,
    split_sizes,
    to_septets,
    transliterate,
    unpack_septets,
)

__all__ = [
    "TOA_ALPHANUMERIC",
    "TOA_INTERNATIONAL",
    "TOA_NATIONAL",
    "TOA_UNKNOWN",
    "Concat",
    "Decoded",
    "Deliver",
    "EncodedPdu",
    "PduError",
    "StatusReport",
    "Submit",
    "decode",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
    "status_description",
    "status_outcome",
    "vp_from_minutes",
    "vp_to_minutes",
]

# TOA octets (23.040 §9.1.2.5): bit 7 set, type of number in bits 6-4, numbering plan 3-0.
TOA_INTERNATIONAL = 0x91
TOA_NATIONAL = 0xA1
TOA_UNKNOWN = 0x81
TOA_ALPHANUMERIC = 0xD0

_TON_INTERNATIONAL = 1
_TON_ALPHANUMERIC = 5

# First-octet bits (23.040 §9.2.3.1-§9.2.3.26).
_MTI_DELIVER, _MTI_SUBMIT, _MTI_STATUS_REPORT = 0, 1, 2
_FO_MMS = 0x04  # DELIVER/STATUS-REPORT: "no more messages are waiting" when set
_FO_VPF_RELATIVE = 0x10
_FO_SRR = 0x20
_FO_UDHI = 0x40

_IEI_CONCAT_8 = 0x00
_IEI_CONCAT_16 = 0x08

_SEMI_OCTET_DIGITS = "0123456789*#abc"  # 23.040 §9.1.2.3: 1010 '*', 1011 '#', 1100-1110 a-c
_NUMERIC = re.compile(r"[0-9*#]+")


class PduError(ValueError):
    """A PDU cannot be decoded, or the arguments cannot be encoded."""


@dataclass(frozen=True)
class Concat:
    """Concatenated SMS information element (23.040 §9.2.3.24.1 / §9.2.3.24.8)."""

    reference: int
    total: int
    seq: int
    bits: int = 8


@dataclass(frozen=True)
class EncodedPdu:
    """One PDU ready for ``AT+CMGS=<tpdu_length>`` (27.005 §4.3)."""

    hex: str  # upper-case hex, SCA included ("00" when no SMSC)
    tpdu_length: int  # octets excluding the SCA
    part: int = 1
    parts: int = 1


@dataclass(frozen=True)
class Deliver:
    """SMS-DELIVER (23.040 §9.2.2.1). ``data`` is the user data without UDH: one byte per
    septet for GSM-7, the raw octets for UCS-2/8-bit. 8BIT ``text`` is a Latin-1 view."""

    smsc: str | None
    sender: str
    sender_toa: int
    timestamp: datetime
    text: str
    encoding: str
    data: bytes
    concat: Concat | None
    message_class: int | None
    pid: int
    dcs: int
    udh: bytes = b""


@dataclass(frozen=True)
class Submit:
    """SMS-SUBMIT (23.040 §9.2.2.2). ``validity`` is minutes (relative/enhanced VP), an
    aware datetime (absolute VP) or None. ``data`` and ``text`` as in :class:`Deliver`."""

    smsc: str | None
    reference: int
    recipient: str
    recipient_toa: int
    text: str
    encoding: str
    data: bytes
    concat: Concat | None
    status_report: bool
    validity: int | datetime | None
    message_class: int | None
    pid: int
    dcs: int
    udh: bytes = b""


@dataclass(frozen=True)
class StatusReport:
    """SMS-STATUS-REPORT (23.040 §9.2.2.3)."""

    smsc: str | None
    reference: int
    recipient: str
    recipient_toa: int
    sc_timestamp: datetime
    discharge_time: datetime
    status: int

    @property
    def outcome(self) -> str:
        """"delivered" | "pending" | "failed", see :func:`status_outcome`."""
        return status_outcome(self.status)

    @property
    def description(self) -> str:
        return status_description(self.status)


Decoded = Union[Deliver, Submit, StatusReport]

# ---------------------------------------------------------------------------- TP-ST

# 23.040 §9.2.3.15 TP-Status, in the spec's words.
_STATUS_TEXT: dict[int, str] = {
    0x00: "Short message received by the SME",
    0x01: "Short message forwarded by the SC to the SME but the SC is unable to confirm "
          "delivery",
    0x02: "Short message replaced by the SC",
    0x20: "Congestion",
    0x21: "SME busy",
    0x22: "No response from SME",
    0x23: "Service rejected",
    0x24: "Quality of service not available",
    0x25: "Error in SME",
    0x40: "Remote procedure error",
    0x41: "Incompatible destination",
    0x42: "Connection rejected by SME",
    0x43: "Not obtainable",
    0x44: "Quality of service not available",
    0x45: "No interworking available",
    0x46: "Validity period expired",
    0x47: "SM deleted by originating SME",
    0x48: "SM deleted by SC administration",
    0x49: "SM does not exist",
    0x60: "Congestion",
    0x61: "SME busy",
    0x62: "No response from SME",
    0x63: "Service rejected",
    0x64: "Quality of service not available",
    0x65: "Error in SME",
}


def status_outcome(st: int) -> str:
    """Final meaning of a TP-Status value (23.040 §9.2.3.15).

    0x00-0x1F transaction completed -> "delivered" (0x03-0x0F reserved and 0x10-0x1F
    SC-specific values take their range's meaning); 0x20-0x3F temporary error, SC still
    trying -> "pending"; 0x40-0x5F permanent error and 0x60-0x7F temporary error with the
    SC no longer trying -> "failed"; anything else (bit 7 set: reserved) -> "failed".
    """
    if 0x00 <= st <= 0x1F:
        return "delivered"
    if 0x20 <= st <= 0x3F:
        return "pending"
    return "failed"


def status_description(st: int) -> str:
    """Short English text for a TP-Status value (23.040 §9.2.3.15)."""
    text = _STATUS_TEXT.get(st)
    if text is not None:
        return text
    if not 0 <= st <= 0x7F:
        return "Reserved"
    group = (
        "transaction completed",
        "temporary error, SC still trying",
        "permanent error",
        "temporary error, SC not trying",
    )[st >> 5]
    # In each 32-value group the upper 16 values are "values specific to each SC".
    kind = "SC-specific" if st & 0x10 else "Reserved"
    return f"{kind} ({group})"


# ---------------------------------------------------------------------------- VP


def vp_to_minutes(vp: int) -> int:
    """Relative TP-VP octet -> minutes (23.040 §9.2.3.12.1)."""
    if vp <= 143:
        return (vp + 1) * 5
    if vp <= 167:
        return 720 + (vp - 143) * 30
    if vp <= 196:
        return (vp - 166) * 1440
    return (vp - 192) * 10080


def vp_from_minutes(minutes: int) -> int:
    """Smallest relative TP-VP octet whose period is at least ``minutes`` (capped at 0xFF,
    63 weeks); 0 or less gives 0x00 (5 minutes)."""
    if minutes <= 720:
        return max(0, -(-minutes // 5) - 1)
    if minutes <= 1440:
        return 143 + -(-(minutes - 720) // 30)
    if minutes <= 30 * 1440:
        return 166 + -(-minutes // 1440)
    return min(0xFF, 192 + -(-minutes // 10080))


# ---------------------------------------------------------------------------- reading


class _Reader:
    """Bounded reads over the PDU octets: running short is a PduError, never IndexError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"PDU ends before {what} (offset {self.pos})")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise PduError(
                f"PDU ends inside {what}: needs {count} octets at offset {self.pos}, "
                f"{len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk


def _semi_octets(octets: bytes, count: int) -> str:
    """Swapped BCD digits (23.040 §9.1.2.3); an F nibble is filler and ends the number."""
    out: list[str] = []
    for octet in octets:
        for nibble in (octet & 0x0F, octet >> 4):
            if len(out) >= count or nibble == 0x0F:
                return "".join(out)
            out.append(_SEMI_OCTET_DIGITS[nibble])
    return "".join(out)


def _address_value(octets: bytes, semi_octets: int, toa: int) -> str:
    ton = (toa >> 4) & 0x07
    if ton == _TON_ALPHANUMERIC:
        # 23.040 §9.1.2.5: GSM-7 packed; the length counts useful semi-octets, so the
        # number of septets is floor(4*len/7) ("Megafon", not "Megafon@").
        return from_septets(unpack_septets(octets, semi_octets * 4 // 7))
    digits = _semi_octets(octets, semi_octets)
    return "+" + digits if ton == _TON_INTERNATIONAL else digits


def _read_address(r: _Reader, what: str) -> tuple[str, int]:
    """TP-OA / TP-DA / TP-RA (23.040 §9.1.2.5): digit count, TOA, swapped BCD."""
    semi_octets = r.byte(f"{what} length")
    toa = r.byte(f"{what} type")
    octets = r.take((semi_octets + 1) // 2, what)
    return _address_value(octets, semi_octets, toa), toa


def _read_sca(r: _Reader) -> str | None:
    """SCA (24.011 §8.2.5.1 RP address, 27.005 §4): its length counts octets incl. TOA."""
    length = r.byte("SMSC length")
    if length == 0:
        return None
    toa = r.byte("SMSC type")
    octets = r.take(length - 1, "SMSC address")
    return _address_value(octets, 2 * len(octets), toa) or None


def _read_timestamp(r: _Reader, what: str) -> datetime:
    """TP-SCTS / TP-DT / absolute TP-VP (23.040 §9.2.3.11): YY MM DD hh mm ss TZ, each
    octet swapped BCD; TZ in quarter hours with the sign in bit 3 of the tens nibble."""
    raw = r.take(7, what)
    fields = [(octet & 0x0F) * 10 + (octet >> 4) for octet in raw[:6]]
    tz = raw[6]
    # Real SMSCs send non-BCD TZ digits (V14: 0xC2 read as +08); take them at face value.
    quarters = (tz & 0x07) * 10 + (tz >> 4)
    if tz & 0x08:
        quarters = -quarters
    yy, month, day, hour, minute, second = fields
    year = 2000 + yy if yy < 70 else 1900 + yy
    try:
        return datetime(year, month, day, hour, minute, second,
                        tzinfo=timezone(timedelta(minutes=15 * quarters)))
    except ValueError as exc:
        raise PduError(f"invalid {what} {raw.hex().upper()}: {exc}") from None


def _dcs_info(dcs: int) -> tuple[str, int | None]:
    """Alphabet and message class from TP-DCS (23.038 §4)."""
    group = dcs >> 4
    if group <= 0x7:  # 00xx general data coding, 01xx the same with automatic deletion
        cls = dcs & 0x03 if dcs & 0x10 else None
        if dcs & 0x20:  # compressed: we cannot decompress, expose the octets
            return "8BIT", cls
        return ("GSM", "8BIT", "UNICODE", "GSM")[(dcs >> 2) & 0x03], cls  # 11 reserved: GSM
    if group in (0xC, 0xD):  # message waiting indication, discard / store, GSM-7
        return "GSM", None
    if group == 0xE:  # message waiting indication, store, UCS-2
        return "UNICODE", None
    if group == 0xF:  # data coding / message class
        return ("8BIT" if dcs & 0x04 else "GSM"), dcs & 0x03
    return "GSM", None  # 1000-1011 reserved: "assumed to be the GSM 7 bit default alphabet"


def _parse_concat(header: bytes) -> Concat | None:
    """Find a concatenation IE in the UDH IEs (23.040 §9.2.3.24). Malformed -> None."""
    pos = 0
    concat: Concat | None = None
    while pos + 2 <= len(header):
        iei, length = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + length]
        if len(value) < length:
            break
        pos += 2 + length
        if iei == _IEI_CONCAT_8 and length == 3:
            candidate = Concat(value[0], value[1], value[2], 8)
        elif iei == _IEI_CONCAT_16 and length == 4:
            candidate = Concat((value[0] << 8) | value[1], value[2], value[3], 16)
        else:
            continue
        # §9.2.3.24.1: a zero total/sequence, or sequence > total, means "ignore the IE".
        if candidate.total and candidate.seq and candidate.seq <= candidate.total:
            concat = candidate
    return concat


def _fill_bits(udh_octets: int) -> int:
    """Bits after a UDH of ``udh_octets`` (UDHL included) to reach a septet boundary."""
    return (7 - (udh_octets * 8) % 7) % 7


def _read_user_data(
    r: _Reader, dcs: int, udhi: bool
) -> tuple[str, str, bytes, Concat | None, bytes]:
    """TP-UDL + TP-UD (23.040 §9.2.3.16, §9.2.3.24): (text, encoding, data, concat, udh)."""
    encoding, _ = _dcs_info(dcs)
    udl = r.byte("TP-UDL")
    size = (udl * 7 + 7) // 8 if encoding == "GSM" else udl
    ud = r.take(size, "TP-UD")
    header = b""
    concat: Concat | None = None
    body_start = 0
    if udhi and ud:
        udhl = ud[0]
        if 1 + udhl > len(ud):
            raise PduError(f"UDH length {udhl} exceeds the user data ({len(ud)} octets)")
        header = ud[1 : 1 + udhl]
        concat = _parse_concat(header)
        body_start = 1 + udhl
    if encoding == "GSM":
        fill = _fill_bits(body_start) if body_start else 0
        header_septets = (body_start * 8 + fill) // 7
        count = max(0, udl - header_septets)
        septets = unpack_septets(ud[body_start:], count, fill)
        return from_septets(septets), encoding, bytes(septets), concat, header
    body = ud[body_start:]
    text = decode_ucs2(body) if encoding == "UNICODE" else body.decode("latin-1")
    return text, encoding, body, concat, header


def _decode_deliver(r: _Reader, smsc: str | None, fo: int) -> Deliver:
    sender, sender_toa = _read_address(r, "TP-OA")
    pid = r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    timestamp = _read_timestamp(r, "TP-SCTS")
    text, encoding, data, concat, udh = _read_user_data(r, dcs, bool(fo & _FO_UDHI))
    return Deliver(smsc, sender, sender_toa, timestamp, text, encoding, data, concat,
                   _dcs_info(dcs)[1], pid, dcs, udh)


def _read_validity(r: _Reader, vpf: int) -> int | datetime | None:
    """TP-VP per TP-VPF (23.040 §9.2.3.12): 0 none, 2 relative, 3 absolute, 1 enhanced."""
    if vpf == 0:
        return None
    if vpf == 2:
        return vp_to_minutes(r.byte("TP-VP"))
    if vpf == 3:
        return _read_timestamp(r, "TP-VP")
    enhanced = r.take(7, "enhanced TP-VP")  # §9.2.3.12.3
    fmt = enhanced[0] & 0x07
    if fmt == 1:
        return vp_to_minutes(enhanced[1])
    if fmt == 2:
        return -(-enhanced[1] // 60)
    if fmt == 3:
        hh, mm, ss = ((o & 0x0F) * 10 + (o >> 4) for o in enhanced[1:4])
        return hh * 60 + mm + (1 if ss else 0)
    return None


def _decode_submit(r: _Reader, smsc: str | None, fo: int) -> Submit:
    reference = r.byte("TP-MR")
    recipient, recipient_toa = _read_address(r, "TP-DA")
    pid = r.byte("TP-PID")
    dcs = r.byte("TP-DCS")
    validity = _read_validity(r, (fo >> 3) & 0x03)
    text, encoding, data, concat, udh = _read_user_data(r, dcs, bool(fo & _FO_UDHI))
    return Submit(smsc, reference, recipient, recipient_toa, text, encoding, data, concat,
                  bool(fo & _FO_SRR), validity, _dcs_info(dcs)[1], pid, dcs, udh)


def _decode_status_report(r: _Reader, smsc: str | None) -> StatusReport:
    reference = r.byte("TP-MR")
    recipient, recipient_toa = _read_address(r, "TP-RA")
    sc_timestamp = _read_timestamp(r, "TP-SCTS")
    discharge_time = _read_timestamp(r, "TP-DT")
    status = r.byte("TP-ST")
    # Optional TP-PI/PID/DCS/UDL/UD may follow; a gateway needs none of them.
    return StatusReport(smsc, reference, recipient, recipient_toa, sc_timestamp,
                        discharge_time, status)


def decode(
    pdu: str | bytes | bytearray | memoryview, *, has_smsc: bool = True
) -> Deliver | Submit | StatusReport:
    """Decode a PDU as read from the modem (hex in any case, or raw bytes).

    ``has_smsc`` False for TPDUs without the leading SCA. Raises only :class:`PduError`.
    The direction is unknown here, so TP-MTI picks the type the modem would hand us or the
    simulator would receive: 00 DELIVER, 01 SUBMIT, 10 STATUS-REPORT, and the reserved 11
    is processed as DELIVER (23.040 §9.2.3.1).
    """
    if isinstance(pdu, str):
        try:
            data = bytes.fromhex("".join(pdu.split()))
        except ValueError:
            raise PduError("PDU is not an even-length hex string") from None
    elif isinstance(pdu, (bytes, bytearray, memoryview)):
        data = bytes(pdu)
    else:
        raise PduError(f"PDU must be str or bytes, not {type(pdu).__name__}")
    r = _Reader(data)
    smsc = _read_sca(r) if has_smsc else None
    fo = r.byte("first octet")
    mti = fo & 0x03
    if mti == _MTI_SUBMIT:
        return _decode_submit(r, smsc, fo)
    if mti == _MTI_STATUS_REPORT:
        return _decode_status_report(r, smsc)
    return _decode_deliver(r, smsc, fo)


# ---------------------------------------------------------------------------- encoding


def _swap_bcd(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    table = {c: i for i, c in enumerate(_SEMI_OCTET_DIGITS)} | {"F": 0x0F}
    return bytes(table[digits[i]] | (table[digits[i + 1]] << 4)
                 for i in range(0, len(digits), 2))


def _encode_address(number: str, what: str) -> tuple[int, int, bytes]:
    """(length in semi-octets, TOA, value) for a TP address (23.040 §9.1.2.5).

    ``+digits`` -> international (0x91), plain digits -> unknown (0x81), anything else ->
    alphanumeric (0xD0, GSM-7 packed, at most 11 characters).
    """
    number = number.strip()
    if number.startswith("+"):
        digits = number[1:]
        if not _NUMERIC.fullmatch(digits) or len(digits) > 20:
            raise PduError(f"invalid international {what} {number!r}")
        return len(digits), TOA_INTERNATIONAL, _swap_bcd(digits)
    if _NUMERIC.fullmatch(number):
        if len(number) > 20:
            raise PduError(f"{what} {number!r} has more than 20 digits")
        return len(number), TOA_UNKNOWN, _swap_bcd(number)
    if not number:
        raise PduError(f"empty {what}")
    try:
        septets = to_septets(number)
    except EncodingError as exc:
        raise PduError(f"alphanumeric {what} {number!r}: {exc}") from None
    if len(septets) > 11:
        raise PduError(f"alphanumeric {what} {number!r} is longer than 11 septets")
    return -(-len(septets) * 7 // 4), TOA_ALPHANUMERIC, pack_septets(septets)


def _address_field(number: str, what: str) -> bytes:
    length, toa, value = _encode_address(number, what)
    return bytes((length, toa)) + value


def _sca_field(smsc: str | None) -> bytes:
    if not smsc:
        return b"\x00"
    _, toa, value = _encode_address(smsc, "SMSC")
    if toa == TOA_ALPHANUMERIC:
        raise PduError(f"SMSC must be a number, not {smsc!r}")
    return bytes((len(value) + 1, toa)) + value


def _timestamp_field(moment: datetime, what: str) -> bytes:
    offset = moment.utcoffset()
    if offset is None:
        raise PduError(f"{what} must be an aware datetime")
    if not 1970 <= moment.year <= 2069:
        raise PduError(f"{what} year {moment.year} is outside 1970-2069")
    quarters = round(offset.total_seconds() / 900)
    if abs(quarters) > 79:
        raise PduError(f"{what} UTC offset {offset} is too large")
    fields = (moment.year % 100, moment.month, moment.day, moment.hour, moment.minute,
              moment.second)
    out = bytearray((v % 10) << 4 | (v // 10) for v in fields)
    tz = (abs(quarters) % 10) << 4 | (abs(quarters) // 10)
    out.append(tz | (0x08 if quarters < 0 else 0))
    return bytes(out)


def _resolve_text(text: str, encoding: str | None) -> tuple[str, str]:
    if encoding is None:
        return text, ("GSM" if is_gsm(text) else "UNICODE")
    enc = encoding.strip().upper()
    if enc in ("GSM", "GSM7", "7BIT"):
        return transliterate(text), "GSM"
    if enc in ("UNICODE", "UCS2", "UCS-2"):
        return text, "UNICODE"
    raise PduError(f"unknown encoding {encoding!r}: expected None, 'GSM' or 'UNICODE'")


def _user_data(text: str, encoding: str, concat_reference: int) -> list[tuple[bytes, int]]:
    """(UDL, UD) per part, with a concatenation UDH when the text needs several parts."""
    if not 0 <= concat_reference <= 0xFFFF:
        raise PduError(f"concat_reference {concat_reference} is outside 0-65535")
    wide = concat_reference > 0xFF
    if encoding == "GSM":
        parts = split_sizes(text, "GSM", 160, 152 if wide else 153)
    else:
        parts = split_sizes(text, "UNICODE", 70, 66 if wide else 67)
    total = len(parts)
    if total > 255:
        raise PduError(f"text needs {total} parts; a concatenated SMS has at most 255")
    out: list[tuple[bytes, int]] = []
    for seq, part in enumerate(parts, start=1):
        if total == 1:
            udh = b""
        elif wide:
            udh = bytes((6, _IEI_CONCAT_16, 4)) + concat_reference.to_bytes(2, "big") + bytes(
                (total, seq))
        else:
            udh = bytes((5, _IEI_CONCAT_8, 3, concat_reference, total, seq))
        if encoding == "GSM":
            septets = to_septets(part)
            fill = _fill_bits(len(udh)) if udh else 0
            ud = udh + pack_septets(septets, fill)
            udl = (len(udh) * 8 + fill) // 7 + len(septets)
        else:
            ud = udh + encode_ucs2(part)
            udl = len(ud)
        out.append((ud, udl))
    return out


def _dcs(encoding: str, flash: bool) -> int:
    """TP-DCS general data coding (23.038 §4): 0x00 GSM-7 / 0x08 UCS-2; flash = class 0."""
    dcs = 0x00 if encoding == "GSM" else 0x08
    return dcs | 0x10 if flash else dcs


def _encoded(sca: bytes, tpdu: bytes, part: int, parts: int) -> EncodedPdu:
    return EncodedPdu((sca + tpdu).hex().upper(), len(tpdu), part, parts)


def encode_submit(
    number: str,
    text: str,
    *,
    encoding: str | None = None,
    smsc: str | None = None,
    status_report: bool = True,
    validity_minutes: int | None = None,
    flash: bool = False,
    message_reference: int = 0,
    concat_reference: int = 0,
) -> list[EncodedPdu]:
    """SMS-SUBMIT PDUs for ``text`` to ``number`` (23.040 §9.2.2.2), one per part.

    ``encoding`` None picks GSM-7 when the text fits, else UCS-2; "GSM" transliterates.
    ``validity_minutes`` gives a relative TP-VP (the nearest octet not shorter than asked),
    None omits TP-VP. TP-MR is ``message_reference`` (modems overwrite it; gammu, smstools
    and Kannel send 00 and use the value from ``+CMGS``).
    """
    if not 0 <= message_reference <= 0xFF:
        raise PduError(f"message_reference {message_reference} is outside 0-255")
    if validity_minutes is not None and validity_minutes < 0:
        raise PduError(f"validity_minutes {validity_minutes} is negative")
    body, enc = _resolve_text(text, encoding)
    sca = _sca_field(smsc)
    da = _address_field(number, "recipient")
    dcs = _dcs(enc, flash)
    vp = b"" if validity_minutes is None else bytes((vp_from_minutes(validity_minutes),))
    units = _user_data(body, enc, concat_reference)
    fo = _MTI_SUBMIT | (_FO_VPF_RELATIVE if vp else 0) | (_FO_SRR if status_report else 0)
    out: list[EncodedPdu] = []
    for part, (ud, udl) in enumerate(units, start=1):
        first = fo | (_FO_UDHI if len(units) > 1 else 0)
        tpdu = bytes((first, message_reference)) + da + bytes((0x00, dcs)) + vp + bytes(
            (udl,)) + ud
        out.append(_encoded(sca, tpdu, part, len(units)))
    return out


def encode_deliver(
    sender: str,
    text: str,
    *,
    timestamp: datetime,
    smsc: str | None = "+15550000000",
    encoding: str | None = None,
    concat_reference: int = 0,
    flash: bool = False,
) -> list[EncodedPdu]:
    """SMS-DELIVER PDUs (23.040 §9.2.2.1), as the simulator's network would deliver them.

    TP-MMS is set ("no more messages waiting", as in vector D1); ``timestamp`` is the SCTS.
    """
    body, enc = _resolve_text(text, encoding)
    sca = _sca_field(smsc)
    oa = _address_field(sender, "sender")
    scts = _timestamp_field(timestamp, "timestamp")
    dcs = _dcs(enc, flash)
    units = _user_data(body, enc, concat_reference)
    out: list[EncodedPdu] = []
    for part, (ud, udl) in enumerate(units, start=1):
        first = _MTI_DELIVER | _FO_MMS | (_FO_UDHI if len(units) > 1 else 0)
        tpdu = bytes((first,)) + oa + bytes((0x00, dcs)) + scts + bytes((udl,)) + ud
        out.append(_encoded(sca, tpdu, part, len(units)))
    return out


def encode_status_report(
    reference: int,
    recipient: str,
    *,
    status: int,
    sc_timestamp: datetime,
    discharge_time: datetime,
    smsc: str | None = "+15550000000",
) -> EncodedPdu:
    """SMS-STATUS-REPORT (23.040 §9.2.2.3) for the SUBMIT with TP-MR ``reference``."""
    if not 0 <= reference <= 0xFF:
        raise PduError(f"reference {reference} is outside 0-255")
    if not 0 <= status <= 0xFF:
        raise PduError(f"status {status} is outside 0-255")
    tpdu = (
        bytes((_MTI_STATUS_REPORT | _FO_MMS, reference))
        + _address_field(recipient, "recipient")
        + _timestamp_field(sc_timestamp, "sc_timestamp")
        + _timestamp_field(discharge_time, "discharge_time")
        + bytes((status,))
    )
    return _encoded(_sca_field(smsc), tpdu, 1, 1)
