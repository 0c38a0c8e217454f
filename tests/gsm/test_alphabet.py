"""Tests for GSM 7-bit / UCS-2 text handling (3GPP TS 23.038)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpcgw.gsm.alphabet import (
    ESC,
    EncodingError,
    TextInfo,
    analyze,
    decode_ucs2,
    encode_ucs2,
    from_septets,
    is_gsm,
    pack_septets,
    split,
    split_sizes,
    to_septets,
    transliterate,
    unpack_septets,
)

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "\f^{}\\[~]|€"
GSM_CHARS = BASIC + EXTENSION


def test_tables_are_complete() -> None:
    # 23.038 §6.2.1: 127 printable basic positions (0x1B is ESC) + §6.2.1.1's 10 extensions
    assert len(BASIC) == 127
    assert len(set(GSM_CHARS)) == 137
    assert is_gsm(GSM_CHARS)


@pytest.mark.parametrize(
    ("char", "septets"),
    [
        pytest.param("@", [0x00], id="at-is-zero"),
        pytest.param("£", [0x01], id="pound"),
        pytest.param("¤", [0x24], id="currency"),
        pytest.param("¡", [0x40], id="inverted-exclamation"),
        pytest.param("§", [0x5F], id="section"),
        pytest.param("¿", [0x60], id="inverted-question"),
        pytest.param("à", [0x7F], id="a-grave"),
        pytest.param("€", [ESC, 0x65], id="euro"),
        pytest.param("\f", [ESC, 0x0A], id="form-feed"),
        pytest.param("^", [ESC, 0x14], id="caret"),
        pytest.param("|", [ESC, 0x40], id="pipe"),
    ],
)
def test_known_positions(char: str, septets: list[int]) -> None:
    # 23.038 §6.2.1 / §6.2.1.1 table positions (also listed in modem.md §2.2)
    assert to_septets(char) == septets
    assert from_septets(septets) == char


@pytest.mark.parametrize("char", ["[", "]", "{", "}", "\\", "^", "~", "|", "€"])
def test_extension_chars_cost_two(char: str) -> None:
    assert analyze(char).units == 2


def test_to_septets_names_the_offender() -> None:
    with pytest.raises(EncodingError) as info:
        to_septets("abcЖd")
    assert info.value.index == 3
    assert info.value.char == "Ж"
    assert "'Ж'" in str(info.value) and "index 3" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("septets", "text"),
    [
        pytest.param([ESC, 0x41], "A", id="unknown-escape-basic-char"),  # 23.038 §6.2.1.1
        pytest.param([ESC, ESC, 0x41], " A", id="escape-escape-is-space"),
        pytest.param([0x41, ESC], "A ", id="trailing-escape"),
        pytest.param([0xC1], "A", id="eighth-bit-masked"),
        pytest.param([], "", id="empty"),
    ],
)
def test_from_septets_fallbacks(septets: list[int], text: str) -> None:
    assert from_septets(septets) == text


def test_pack_known_vector() -> None:
    # "hello" as in gammu's G1 (modem.md §2.4): UDL 05, UD E8329BFD06
    assert pack_septets(to_septets("hello")).hex().upper() == "E8329BFD06"
    # 8 septets fill exactly 7 octets
    assert len(pack_septets([0x7F] * 8)) == 7


def test_fill_bits() -> None:
    # 23.040 §9.2.3.24: after a 6-octet UDH, 1 fill bit puts the text on a septet boundary
    packed = pack_septets(to_septets("abc"), fill_bits=1)
    assert packed[0] & 1 == 0
    assert unpack_septets(packed, 3, fill_bits=1) == to_septets("abc")


def test_unpack_short_data_returns_fewer() -> None:
    assert unpack_septets(b"\xE8", 5) == [0x68]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 127), max_size=200), st.integers(0, 6))
def test_pack_unpack_roundtrip(septets: list[int], fill: int) -> None:
    packed = pack_septets(septets, fill)
    assert len(packed) == (fill + 7 * len(septets) + 7) // 8
    assert unpack_septets(packed, len(septets), fill) == septets


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=GSM_CHARS, max_size=200))
def test_septet_roundtrip(text: str) -> None:
    assert from_septets(to_septets(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=100))
def test_from_septets_never_raises(values: list[int]) -> None:
    assert isinstance(from_septets(values), str)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Français", "Francais", id="cedilla"),
        pytest.param("naïve café", "naive café", id="keeps-gsm-accents"),
        pytest.param("Ąę Łódź", "Ae Lodz", id="polish"),
        pytest.param("“quoted” ‘single’", "\"quoted\" 'single'", id="quotes"),
        pytest.param("a – b — c", "a - b - c", id="dashes"),
        pytest.param("wait…", "wait...", id="ellipsis"),
        pytest.param("a\u00a0b", "a b", id="nbsp"),
        pytest.param("e\u0301", "é", id="decomposed-is-composed"),
        pytest.param("ﬁle", "file", id="ligature"),
        pytest.param("x²", "x2", id="superscript"),
        pytest.param("Привет", "??????", id="cyrillic"),
        pytest.param("ok 👍🏽", "ok ?", id="emoji-and-skin-tone"),
        pytest.param("❤️", "?", id="variation-selector"),
        pytest.param("ΑΒΓ", "ABΓ", id="greek-lookalikes"),
        pytest.param("tab\there", "tab here", id="tab"),
        pytest.param("{[€]}", "{[€]}", id="extension-kept"),
    ],
)
def test_transliterate(text: str, expected: str) -> None:
    assert transliterate(text) == expected
    assert is_gsm(expected)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100))
def test_transliterate_always_gsm(text: str) -> None:
    assert is_gsm(transliterate(text))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=GSM_CHARS, max_size=100))
def test_transliterate_keeps_gsm_text(text: str) -> None:
    assert transliterate(text) == text


@pytest.mark.parametrize(
    ("text", "force", "info"),
    [
        # 23.040 §9.2.3.24.1 / modem.md §2.3 segment sizes
        pytest.param("", None, TextInfo("GSM", 1, 0, 160, 160), id="empty"),
        pytest.param("a" * 160, None, TextInfo("GSM", 1, 160, 160, 0), id="gsm-160"),
        pytest.param("a" * 161, None, TextInfo("GSM", 2, 161, 153, 145), id="gsm-161"),
        pytest.param("a" * 306, None, TextInfo("GSM", 2, 306, 153, 0), id="gsm-306"),
        pytest.param("a" * 307, None, TextInfo("GSM", 3, 307, 153, 152), id="gsm-307"),
        pytest.param("Ж" * 70, None, TextInfo("UNICODE", 1, 70, 70, 0), id="ucs2-70"),
        pytest.param("Ж" * 71, None, TextInfo("UNICODE", 2, 71, 67, 63), id="ucs2-71"),
        pytest.param("Ж" * 134, None, TextInfo("UNICODE", 2, 134, 67, 0), id="ucs2-134"),
        pytest.param("Ж" * 135, None, TextInfo("UNICODE", 3, 135, 67, 66), id="ucs2-135"),
        pytest.param("€" * 80, None, TextInfo("GSM", 1, 160, 160, 0), id="gsm-ext-80"),
        # 152 septets then an escape pair: the pair cannot straddle the boundary, so 306
        # septets (306/153 = 2 by division) really need 3 parts
        pytest.param("a" * 152 + "€" + "a" * 152, None, TextInfo("GSM", 3, 306, 153, 152),
                     id="escape-at-boundary"),
        # 66 units then an emoji (surrogate pair): 134 units (2 by division) need 3 parts
        pytest.param("Ж" * 66 + "😀" + "Ж" * 66, None, TextInfo("UNICODE", 3, 134, 67, 66),
                     id="emoji-at-boundary"),
        pytest.param("😀" * 35, None, TextInfo("UNICODE", 1, 70, 70, 0), id="emoji-35"),
        pytest.param("Привет", "GSM", TextInfo("GSM", 1, 6, 160, 154), id="forced-gsm"),
        pytest.param("hello", "UNICODE", TextInfo("UNICODE", 1, 5, 70, 65), id="forced-ucs2"),
        pytest.param("hello", "unicode", TextInfo("UNICODE", 1, 5, 70, 65), id="forced-case"),
    ],
)
def test_analyze(text: str, force: str | None, info: TextInfo) -> None:
    assert analyze(text, force) == info


def test_analyze_rejects_unknown_encoding() -> None:
    with pytest.raises(ValueError):
        analyze("x", "EBCDIC")


def test_split_escape_never_split() -> None:
    parts = split("a" * 152 + "€" + "a" * 10, "GSM")
    assert parts == ["a" * 152, "€" + "a" * 10]


def test_split_surrogate_never_split() -> None:
    parts = split("Ж" * 66 + "😀" + "Ж" * 4, "UNICODE")
    assert parts == ["Ж" * 66, "😀ЖЖЖЖ"]
    assert all(encode_ucs2(p).decode("utf-16-be") == p for p in parts)


def test_split_gsm_requires_gsm_text() -> None:
    with pytest.raises(EncodingError):
        split("Ж", "GSM")


def test_split_sizes_for_16_bit_reference() -> None:
    assert [len(p) for p in split_sizes("a" * 200, "GSM", 160, 152)] == [152, 48]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_split_reassembles_and_matches_analyze(text: str) -> None:
    info = analyze(text)
    parts = split(text, info.encoding)
    assert "".join(parts) == text
    assert len(parts) == info.parts
    limit = 70 if info.encoding == "UNICODE" else 160
    if len(parts) > 1:
        limit = 67 if info.encoding == "UNICODE" else 153
    for part in parts:
        units = analyze(part, info.encoding).units if info.encoding == "UNICODE" else len(
            to_septets(part))
        assert units <= limit


@pytest.mark.parametrize(
    ("text", "data"),
    [
        # captured from gammu 1.42 `-unicode` (modem.md §2.4 G4)
        pytest.param("Привет €", bytes.fromhex("041F04400438043204350442002020AC"),
                     id="G4"),
        pytest.param("😀", bytes.fromhex("D83DDE00"), id="surrogate-pair"),
    ],
)
def test_ucs2(text: str, data: bytes) -> None:
    assert encode_ucs2(text) == data
    assert decode_ucs2(data) == text


@pytest.mark.parametrize(
    ("data", "text"),
    [
        pytest.param(b"\x00A\x00", "A\ufffd", id="odd-length"),
        pytest.param(b"\xd8\x3d\x00A", "\ufffdA", id="lone-high-surrogate"),
        pytest.param(b"\xdc\x00", "\ufffd", id="lone-low-surrogate"),
    ],
)
def test_decode_ucs2_tolerates_garbage(data: bytes, text: str) -> None:
    assert decode_ucs2(data) == text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_decode_ucs2_never_raises(data: bytes) -> None:
    assert isinstance(decode_ucs2(data), str)
