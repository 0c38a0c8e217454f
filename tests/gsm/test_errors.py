"""Tests for the CMS/CME tables and their classification (modem.md §1.5)."""

from __future__ import annotations

import pytest

from rpcgw.gsm.errors import (
    CME_ERRORS,
    CMS_ERRORS,
    ErrorInfo,
    GatewayStatus,
    Retry,
    classify,
    code_for_text,
    result_info,
)

T, P, M, B = Retry.TEMPORARY, Retry.PERMANENT, Retry.MODEM, Retry.BUG


@pytest.mark.parametrize(("kind", "table"), [("CMS", CMS_ERRORS), ("CME", CME_ERRORS)])
def test_table_sanity(kind: str, table: dict[int, ErrorInfo]) -> None:
    statuses = {int(s) for s in GatewayStatus}
    for code, info in table.items():
        assert info.kind == kind
        assert info.code == code
        assert isinstance(info.retry, Retry)
        assert info.status_code in statuses
        assert info.description and info.description == info.description.strip()


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        # modem.md §1.5 table, "class for retry" column
        pytest.param(1, P, id="1-unassigned"),
        pytest.param(8, P, id="8-odb"),
        pytest.param(10, P, id="10-barred"),
        pytest.param(21, P, id="21-rejected"),
        pytest.param(27, P, id="27"),
        pytest.param(28, P, id="28"),
        pytest.param(29, P, id="29"),
        pytest.param(30, P, id="30"),
        pytest.param(38, T, id="38-network-out-of-order"),
        pytest.param(41, T, id="41"),
        pytest.param(42, T, id="42-congestion"),
        pytest.param(47, T, id="47"),
        pytest.param(50, M, id="50-sim-not-subscribed"),
        pytest.param(69, P, id="69"),
        pytest.param(96, B, id="96-our-pdu"),
        pytest.param(111, T, id="111"),
        pytest.param(192, T, id="192-sc-busy"),
        pytest.param(193, M, id="193-no-sc-subscription"),
        pytest.param(194, T, id="194"),
        pytest.param(208, M, id="208-storage-full"),
        pytest.param(211, M, id="211"),
        pytest.param(300, T, id="300-me-failure"),
        pytest.param(302, M, id="302-not-allowed"),
        pytest.param(303, B, id="303-not-supported"),
        pytest.param(304, B, id="304-bad-pdu"),
        pytest.param(305, B, id="305"),
        pytest.param(310, M, id="310-no-sim"),
        pytest.param(311, M, id="311-pin"),
        pytest.param(316, M, id="316-puk"),
        pytest.param(313, M, id="313-sim-failure"),
        pytest.param(314, T, id="314-sim-busy"),
        pytest.param(321, B, id="321"),
        pytest.param(322, M, id="322-memory-full"),
        pytest.param(330, M, id="330-smsc-unknown"),
        pytest.param(331, M, id="331-no-service"),
        pytest.param(332, T, id="332-timeout"),
        pytest.param(500, T, id="500-unknown"),
    ],
)
def test_cms_classification_follows_notes(code: int, retry: Retry) -> None:
    info = classify("CMS", code)
    assert info.retry is retry
    assert info is CMS_ERRORS[code]


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        pytest.param(0, T, id="0"),
        pytest.param(3, M, id="3"),
        pytest.param(4, B, id="4"),
        pytest.param(10, M, id="10"),
        pytest.param(11, M, id="11"),
        pytest.param(12, M, id="12"),
        pytest.param(13, M, id="13"),
        pytest.param(14, T, id="14-sim-busy"),
        pytest.param(16, M, id="16"),
        pytest.param(20, M, id="20"),
        pytest.param(30, M, id="30"),
        pytest.param(31, T, id="31"),
        pytest.param(32, M, id="32"),
        pytest.param(100, T, id="100"),
        pytest.param(515, T, id="515-please-wait"),
    ],
)
def test_cme_classification_follows_notes(code: int, retry: Retry) -> None:
    assert classify("CME", code).retry is retry


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        pytest.param("CMS", 331, GatewayStatus.NO_SERVICE, id="cms331"),
        pytest.param("CMS", 332, GatewayStatus.NO_SERVICE, id="cms332"),
        pytest.param("CME", 30, GatewayStatus.NO_SERVICE, id="cme30"),
        pytest.param("CME", 31, GatewayStatus.NO_SERVICE, id="cme31"),
        pytest.param("CME", 32, GatewayStatus.NO_SERVICE, id="cme32"),
        pytest.param("CMS", 304, GatewayStatus.NULL_PDU, id="cms304"),
        pytest.param("CMS", 305, GatewayStatus.NULL_PDU, id="cms305"),
        pytest.param("CMS", 0x90, GatewayStatus.NULL_PDU, id="cms-dcs"),
        pytest.param("CMS", 302, GatewayStatus.RADIO_OFF, id="cms302"),
        pytest.param("CME", 3, GatewayStatus.RADIO_OFF, id="cme3"),
        pytest.param("CMS", 42, GatewayStatus.GENERIC_FAILURE, id="cms42"),
        pytest.param("CMS", 500, GatewayStatus.GENERIC_FAILURE, id="cms500"),
    ],
)
def test_status_codes(kind: str, code: int, status: GatewayStatus) -> None:
    assert classify(kind, code).status_code == status


@pytest.mark.parametrize(
    ("kind", "text", "code"),
    [
        pytest.param("CME", "SIM busy", 14, id="sim-busy"),
        pytest.param("CME", "sim pin required", 11, id="lowercase"),
        pytest.param("CME", "SIM PUK required", 12, id="puk"),
        pytest.param("CME", "incorrect password", 16, id="password"),
        pytest.param("CME", "Network not allowed, emergency calls only", 32, id="punctuation"),
        pytest.param("CME", "please wait, init or command processing in progress", 515,
                     id="wavecom"),
        pytest.param("CMS", "SIM busy", 314, id="cms-sim-busy"),
        pytest.param("CMS", "(U)SIM PIN required", 311, id="cms-usim"),
        pytest.param("CMS", "Invalid PDU mode parameter", 304, id="cms-304"),
        pytest.param("CMS", "SMSC address unknown", 330, id="cms-330"),
        pytest.param("CMS", "  unknown error ", 500, id="cms-500"),
        pytest.param("CMS", "Congestion", 42, id="rp-42"),
        pytest.param("cms", "42", 42, id="digits"),
    ],
)
def test_verbose_text_lookup(kind: str, text: str, code: int) -> None:
    assert code_for_text(kind, text) == code
    assert classify(kind, None, text).code == code


def test_unknown_verbose_text_keeps_the_text() -> None:
    info = classify("CME", None, "frobnicator jammed")
    assert (info.code, info.description, info.retry) == (-1, "frobnicator jammed", T)
    assert code_for_text("XYZ", "SIM busy") is None


@pytest.mark.parametrize(
    ("kind", "code", "retry", "status"),
    [
        pytest.param("CMS", 5, P, 9, id="rp-normal-class"),
        pytest.param("CMS", 34, T, 9, id="rp-resource-class"),
        pytest.param("CMS", 57, P, 9, id="rp-not-available"),
        pytest.param("CMS", 70, P, 9, id="rp-not-implemented"),
        pytest.param("CMS", 88, B, 11, id="rp-invalid-message"),
        pytest.param("CMS", 100, B, 11, id="rp-protocol"),
        pytest.param("CMS", 120, T, 9, id="rp-interworking"),
        pytest.param("CMS", 0x85, B, 11, id="fcs-pid"),
        pytest.param("CMS", 0xC9, T, 9, id="fcs-sc"),
        pytest.param("CMS", 0xD9, M, 9, id="fcs-ms"),
        pytest.param("CMS", 0xE5, T, 9, id="fcs-application"),
        pytest.param("CMS", 399, T, 9, id="me-unknown"),
        pytest.param("CMS", 512, T, 9, id="vendor-cms"),
        pytest.param("CME", 600, T, 9, id="vendor-cme"),
        pytest.param("CME", 77, T, 9, id="cme-unknown"),
        pytest.param("CMS", -3, T, 9, id="negative"),
    ],
)
def test_unknown_codes_by_range(kind: str, code: int, retry: Retry, status: int) -> None:
    info = classify(kind, code)
    assert (info.kind, info.code, info.retry, info.status_code) == (kind, code, retry, status)
    assert info.description


def test_vendor_code_keeps_verbose_text() -> None:
    assert classify("CMS", 512, "SIM not ready").description == "SIM not ready"


@pytest.mark.parametrize(
    ("kind", "code", "expected"),
    [
        pytest.param("ERROR", None, ErrorInfo("ERROR", -1, "ERROR", T, 9), id="plain-error"),
        pytest.param("COMMAND NOT SUPPORT", None,
                     ErrorInfo("COMMAND NOT SUPPORT", -1, "COMMAND NOT SUPPORT", T, 9),
                     id="huawei"),
        pytest.param("", None, ErrorInfo("ERROR", -1, "ERROR", T, 9), id="empty"),
        pytest.param("CMS", None, ErrorInfo("CMS", -1, "Unknown error", T, 9), id="no-code"),
    ],
)
def test_unnumbered_errors(kind: str, code: int | None, expected: ErrorInfo) -> None:
    assert classify(kind, code) == expected


def test_retryable() -> None:
    assert classify("CMS", 42).retryable
    assert classify("CMS", 310).retryable
    assert not classify("CMS", 1).retryable
    assert not classify("CMS", 304).retryable


@pytest.mark.parametrize(
    ("info", "text"),
    [
        pytest.param(classify("CMS", 42), "[CMS 42] Congestion", id="cms"),
        pytest.param(classify("CME", 14), "[CME 14] SIM busy", id="cme"),
        pytest.param(classify("CMS", 304), "[CMS 304] Invalid PDU mode parameter", id="upper"),
        pytest.param(classify("ERROR", None), "[ERROR] ERROR", id="plain"),
    ],
)
def test_result_info(info: ErrorInfo, text: str) -> None:
    assert result_info(info) == text


def test_retry_is_a_str_enum() -> None:
    assert Retry("temporary") is Retry.TEMPORARY
    assert {r.value for r in Retry} >= {"temporary", "permanent", "modem", "bug"}
