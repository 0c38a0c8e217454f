"""SMS text handling per 3GPP TS 23.038: GSM 7-bit alphabet, UCS-2, counting and splitting.

Theory of operation
-------------------
An SMS body is either GSM 7-bit default alphabet septets (23.038 §6.2.1, 160 per message) or
UCS-2/UTF-16 code units (§6.2.3, 70 per message). Characters of the extension table
(§6.2.1.1: ``^ { } \\ [ ~ ] | €`` and form feed) are sent as ESC (0x1B) + code and cost two
septets. A long text is sent as a concatenated SMS whose 6-octet user data header leaves
153 septets / 67 code units per part (23.040 §9.2.3.24.1).

Part boundaries fall between *characters*, never inside an escape pair or a surrogate pair,
so the number of parts is counted by actually splitting (:func:`split`), not by dividing.

Everything here is pure and never does I/O. :func:`to_septets` raises :class:`EncodingError`
on text that is not GSM; decoders (:func:`from_septets`, :func:`decode_ucs2`) never raise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ESC",
    "EncodingError",
    "TextInfo",
    "analyze",
    "decode_ucs2",
    "encode_ucs2",
    "from_septets",
    "is_gsm",
    "pack_septets",
    "septet_length",
    "split",
    "split_sizes",
    "to_septets",
    "transliterate",
    "unpack_septets",
]

#: Escape to the extension table (23.038 §6.2.1, basic table position 0x1B).
ESC = 0x1B

# 23.038 §6.2.1 "GSM 7 bit Default Alphabet", indexed by septet value. 0x1B is ESC: decoders
# handle it before any lookup and encoders never map a character to it.
_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# 23.038 §6.2.1.1 "GSM 7 bit default alphabet extension table": code after ESC -> character.
_EXTENSION: dict[int, str] = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

_CHAR_TO_SEPTET: dict[str, int] = {ch: i for i, ch in enumerate(_BASIC) if i != ESC}
_CHAR_TO_EXTENSION: dict[str, int] = {ch: code for code, ch in _EXTENSION.items()}

#: Septets per single message / per part of a concatenated one (23.040 §9.2.3.24.1, IEI 00).
GSM_SINGLE, GSM_MULTI = 160, 153
#: UCS-2 code units per single message / per part.
UCS2_SINGLE, UCS2_MULTI = 70, 67


class EncodingError(ValueError):
    """Text cannot be represented in the GSM 7-bit default alphabet."""

    def __init__(self, char: str, index: int) -> None:
        super().__init__(f"character {char!r} (U+{ord(char):04X}) at index {index} is not in "
                         "the GSM 7-bit alphabet")
        self.char = char
        self.index = index


def _septet_cost(ch: str) -> int:
    """Septets a character needs: 1 (basic), 2 (extension), 0 (not GSM)."""
    if ch in _CHAR_TO_SEPTET:
        return 1
    if ch in _CHAR_TO_EXTENSION:
        return 2
    return 0


def is_gsm(text: str) -> bool:
    """True if every character is in the GSM basic or extension table."""
    return all(ch in _CHAR_TO_SEPTET or ch in _CHAR_TO_EXTENSION for ch in text)


def to_septets(text: str) -> list[int]:
    """Encode text as septet values (extension characters become ESC + code)."""
    out: list[int] = []
    for index, ch in enumerate(text):
        septet = _CHAR_TO_SEPTET.get(ch)
        if septet is not None:
            out.append(septet)
            continue
        ext = _CHAR_TO_EXTENSION.get(ch)
        if ext is None:
            raise EncodingError(ch, index)
        out.extend((ESC, ext))
    return out


def septet_length(text: str) -> int:
    """Septets needed for GSM text (raises :class:`EncodingError` if it is not GSM)."""
    total = 0
    for index, ch in enumerate(text):
        cost = _septet_cost(ch)
        if not cost:
            raise EncodingError(ch, index)
        total += cost
    return total


def from_septets(septets: Iterable[int]) -> str:
    """Decode septet values; never raises.

    23.038 §6.2.1.1: an ESC followed by a code the extension table does not define is shown
    as the basic-table character of that code; ESC ESC (reserved for a further extension
    table) and a trailing ESC are shown as a space. Values above 127 are masked to 7 bits.
    """
    out: list[str] = []
    escaped = False
    for value in septets:
        septet = value & 0x7F
        if escaped:
            escaped = False
            if septet == ESC:
                out.append(" ")
            else:
                out.append(_EXTENSION.get(septet) or _BASIC[septet])
        elif septet == ESC:
            escaped = True
        else:
            out.append(_BASIC[septet])
    if escaped:
        out.append(" ")
    return "".join(out)


def pack_septets(septets: Iterable[int], fill_bits: int = 0) -> bytes:
    """Pack septets LSB-first into octets (23.038 §6.1.2.1.1).

    ``fill_bits`` zero bits come first, so that text after a user data header starts on a
    septet boundary (23.040 §9.2.3.24). Unused high bits of the last octet are zero.
    """
    out = bytearray()
    acc = 0
    nbits = fill_bits
    for septet in septets:
        acc |= (septet & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits > 0:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    """Unpack ``count`` septets after skipping ``fill_bits``; fewer if ``data`` runs out."""
    out: list[int] = []
    bit = fill_bits
    total_bits = len(data) * 8
    while len(out) < count and bit + 7 <= total_bits:
        index, shift = divmod(bit, 8)
        word = data[index] | (data[index + 1] << 8 if index + 1 < len(data) else 0)
        out.append((word >> shift) & 0x7F)
        bit += 7
    return out


# Characters whose closest GSM rendering is not found by Unicode decomposition.
_TRANSLIT: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'",
    "\u00b4": "'", "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u00ad": "",
    "\u2026": "...", "\u2022": "-", "\u00b7": ".",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\t": " ",
    "\u00d7": "x", "\u00f7": "/", "\u00a2": "c", "\u00a9": "(c)", "\u00ae": "(R)",
    "\u2122": "TM", "\u02c6": "^", "\u02dc": "~",
    "\u0110": "D", "\u0111": "d", "\u0141": "L", "\u0142": "l",
    "\u0131": "i", "\u00de": "Th", "\u00fe": "th", "\u00f0": "d", "\u0152": "OE",
    "\u0153": "oe",
    # Greek capitals that look like Latin ones (the GSM table has only the others).
    "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I",
    "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T",
    "\u03a5": "Y", "\u03a7": "X",
}


def _transliterate_char(ch: str) -> str:
    if ch in _CHAR_TO_SEPTET or ch in _CHAR_TO_EXTENSION:
        return ch
    mapped = _TRANSLIT.get(ch)
    if mapped is not None:
        return mapped
    category = unicodedata.category(ch)
    if category in ("Mn", "Me", "Cf") or 0x1F3FB <= ord(ch) <= 0x1F3FF:
        return ""  # lone combining marks, ZWJ, variation selectors, emoji skin tones
    if category == "Zs":
        return " "
    decomposed = unicodedata.normalize("NFKD", ch)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    if base and base != ch and is_gsm(base):
        return base
    if base and base != ch:
        inner = "".join(_TRANSLIT.get(c, c) for c in base)
        if is_gsm(inner):
            return inner
    return "?"


def transliterate(text: str) -> str:
    """Map text to the closest GSM 7-bit text.

    Used when a send forces GSM (CALLR: "With forced GSM, non-GSM characters are
    transliterated"). Accented letters missing from the table lose their accent (Unicode
    NFKD), typographic quotes/dashes/ellipsis become ASCII, exotic spaces become a space,
    invisible format characters vanish, and anything else becomes ``?``.
    """
    text = unicodedata.normalize("NFC", text)
    return "".join(_transliterate_char(ch) for ch in text)


def encode_ucs2(text: str) -> bytes:
    """UTF-16-BE (surrogate pairs for characters outside the BMP; lone surrogates pass)."""
    return text.encode("utf-16-be", "surrogatepass")


def decode_ucs2(data: bytes) -> str:
    """Decode UTF-16-BE; never raises (odd trailing byte, lone surrogates -> U+FFFD)."""
    return bytes(data).decode("utf-16-be", "replace")


def _ucs2_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def _normalize_encoding(encoding: str) -> str:
    enc = encoding.strip().upper()
    if enc in ("GSM", "GSM7", "7BIT"):
        return "GSM"
    if enc in ("UNICODE", "UCS2", "UCS-2", "UTF-16"):
        return "UNICODE"
    raise ValueError(f"unknown encoding {encoding!r}: expected 'GSM' or 'UNICODE'")


def split_sizes(text: str, encoding: str, single: int, multi: int) -> list[str]:
    """Split at character boundaries into one part of at most ``single`` units, or parts
    of at most ``multi`` units each (the UDH takes the rest; 152/66 with a 16-bit
    concatenation reference, 23.040 §9.2.3.24.8)."""
    encoding = _normalize_encoding(encoding)
    if encoding == "GSM":
        costs = [_septet_cost(ch) for ch in text]
        for index, cost in enumerate(costs):
            if not cost:
                raise EncodingError(text[index], index)
    else:
        costs = [_ucs2_units(ch) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = used = 0
    for index, cost in enumerate(costs):
        if used + cost > multi:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return parts


def split(text: str, encoding: str) -> list[str]:
    """The texts of each SMS part for ``encoding`` "GSM" or "UNICODE".

    For "GSM" the text must already be GSM (callers transliterate first); an escape pair or
    a surrogate pair is never split across parts. Empty text is one empty part.
    """
    enc = _normalize_encoding(encoding)
    if enc == "GSM":
        return split_sizes(text, enc, GSM_SINGLE, GSM_MULTI)
    return split_sizes(text, enc, UCS2_SINGLE, UCS2_MULTI)


@dataclass(frozen=True)
class TextInfo:
    """How a text would be sent."""

    encoding: str  # "GSM" | "UNICODE"
    parts: int
    units: int  # septets (GSM) or UTF-16 code units (UNICODE) of the whole text
    per_part: int  # 160/153 or 70/67
    remaining: int  # free units in the last part


#: ASCII characters of the GSM basic table: every printable one except the extension
#: characters ``[\]^{|}~`` and the backquote, plus LF and CR (23.038 §6.2.1).
_BASIC_ASCII = re.compile(r"[\n\r\x20-\x5a\x5f\x61-\x7a]*")


def analyze(text: str, force_encoding: str | None = None) -> TextInfo:
    """Count encoding, parts and units the way :func:`split` will send the text.

    Automatic choice: GSM when every character fits, else UNICODE. ``force_encoding="GSM"``
    counts the transliterated text, ``"UNICODE"`` counts UTF-16 code units.
    """
    forced = None if force_encoding is None else _normalize_encoding(force_encoding)
    if forced != "UNICODE" and _BASIC_ASCII.fullmatch(text):
        # Fast path for the common case (runs on every send): one septet per character,
        # no escape pair to keep together, so the parts follow from the length alone.
        units = len(text)
        if units <= GSM_SINGLE:
            return TextInfo("GSM", 1, units, GSM_SINGLE, GSM_SINGLE - units)
        parts = -(-units // GSM_MULTI)
        return TextInfo("GSM", parts, units, GSM_MULTI, parts * GSM_MULTI - units)
    if forced is None:
        encoding = "GSM" if is_gsm(text) else "UNICODE"
    else:
        encoding = forced
    if encoding == "GSM":
        if force_encoding is not None:
            text = transliterate(text)
        units = [septet_length(part) for part in split(text, encoding)]
        single, multi = GSM_SINGLE, GSM_MULTI
    else:
        units = [sum(_ucs2_units(ch) for ch in part) for part in split(text, encoding)]
        single, multi = UCS2_SINGLE, UCS2_MULTI
    per_part = single if len(units) == 1 else multi
    return TextInfo(
        encoding=encoding,
        parts=len(units),
        units=sum(units),
        per_part=per_part,
        remaining=per_part - units[-1],
    )
