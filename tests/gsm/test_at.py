"""Tests for the sans-IO AT parser.

Every transcript goes through :func:`feed_all_ways`, which checks that feeding it whole, one
byte at a time and in random splits (hypothesis) gives the same events (h11's ``tr()`` idea,
STYLE.md §2.2). Flows and quirks come from /work/shared/notes/modem.md §1 and §3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpcgw.gsm.at import (
    MAX_LINE,
    ATParser,
    ATProtocolError,
    Event,
    Final,
    Info,
    Noise,
    Prompt,
    Urc,
    response_prefixes,
)


@dataclass(frozen=True)
class Begin:
    command: str
    prompt: bool = False


@dataclass(frozen=True)
class End:
    pass


Step = Union[bytes, Begin, End]
Splitter = Callable[[bytes], list[bytes]]

PDU_G1 = b"07915155000000F011000B915155214365F70000FF05E8329BFD06"
PDU_D1 = b"07915155000000F0040B915155001011F10000621112126342000E49F7F8DD4EBBCF207499CD7E03"
PDU_R1 = b"07915155000000F006000B915155214365F7621112127300006211121273000000"


def run(steps: list[Step], split: Splitter) -> list[Event]:
    parser = ATParser()
    events: list[Event] = []
    for step in steps:
        if isinstance(step, Begin):
            parser.begin(step.command, prompt=step.prompt)
        elif isinstance(step, End):
            parser.end()
        else:
            for chunk in split(step):
                events.extend(parser.feed(chunk))
    return events


def _whole(data: bytes) -> list[bytes]:
    return [data]


def _bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def feed_all_ways(steps: list[Step]) -> list[Event]:
    """Events of ``steps`` fed whole; asserts byte-wise and random splits agree."""
    expected = run(steps, _whole)
    assert run(steps, _bytewise) == expected

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=4096), max_size=12))
    def random_splits(cuts: list[int]) -> None:
        def split(data: bytes) -> list[bytes]:
            points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
            return [data[a:b] for a, b in zip(points, points[1:])]

        assert run(steps, split) == expected

    random_splits()
    return expected


OK = Final("OK")

TRANSCRIPTS = [
    # modem.md §1.1: "AT -> OK", echo on (power-on default)
    pytest.param([Begin("AT"), b"AT\r\r\nOK\r\n"], [OK], id="at-echo"),
    pytest.param([Begin("AT"), b"\r\nOK\r\n"], [OK], id="at-no-echo"),
    # modem.md §1.1: "ATE0 -> ATE0\r\r\nOK\r\n (echoed, because echo was still on)"
    pytest.param([Begin("ATE0"), b"ATE0\r\r\nOK\r\n"], [OK], id="ate0"),
    # echo followed by \r\n, by nothing, and typed in lower case
    pytest.param([Begin("AT+CSQ"), b"AT+CSQ\r\n+CSQ: 21,99\r\n\r\nOK\r\n"],
                 [Info("+CSQ: 21,99"), OK], id="echo-crlf"),
    pytest.param([Begin("AT+CSQ"), b"AT+CSQ\r\n+CSQ: 21,99\r\nOK\r\n"],
                 [Info("+CSQ: 21,99"), OK], id="echo-nothing"),
    pytest.param([Begin("at+csq"), b"at+csq\r\r\n+CSQ: 21,99\r\n\r\nOK\r\n"],
                 [Info("+CSQ: 21,99"), OK], id="echo-lowercase"),
    # 27.007 §8.3 +CPIN
    pytest.param([Begin("AT+CPIN?"), b"AT+CPIN?\r\r\n+CPIN: SIM PIN\r\n\r\nOK\r\n"],
                 [Info("+CPIN: SIM PIN"), OK], id="cpin-sim-pin"),
    pytest.param([Begin('AT+CPIN="1234"'), b'\r\n+CME ERROR: 16\r\n'],
                 [Final("CME", 16)], id="cpin-wrong"),
    # modem.md §1.1: IMEI/IMSI are bare lines (27.007 §5.4, §5.6); some firmwares add +CGSN:
    pytest.param([Begin("AT+CGSN"), b"AT+CGSN\r\r\n490154203237518\r\n\r\nOK\r\n"],
                 [Info("490154203237518"), OK], id="cgsn-bare"),
    pytest.param([Begin("AT+CGSN"), b"\r\n+CGSN: 490154203237518\r\n\r\nOK\r\n"],
                 [Info("+CGSN: 490154203237518"), OK], id="cgsn-prefixed"),
    pytest.param([Begin("AT+CIMI"), b"\r\n001010123456789\r\n\r\nOK\r\n"],
                 [Info("001010123456789"), OK], id="cimi"),
    pytest.param([Begin("AT+CCID"), b"\r\n+CCID: 89014103211118510720\r\n\r\nOK\r\n"],
                 [Info("+CCID: 89014103211118510720"), OK], id="ccid"),
    pytest.param([Begin("AT+CRSM=176,12258,0,0,10"),
                  b'\r\n+CRSM: 144,0,"98101430121181157002"\r\n\r\nOK\r\n'],
                 [Info('+CRSM: 144,0,"98101430121181157002"'), OK], id="crsm-iccid"),
    pytest.param([Begin("AT+CNUM"), b'\r\n+CNUM: "","+15550009999",145\r\n\r\nOK\r\n'],
                 [Info('+CNUM: "","+15550009999",145'), OK], id="cnum"),
    # +CREG is a URC name, but it is Info when it answers AT+CREG? (27.007 §7.2)
    pytest.param([Begin("AT+CREG?"), b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"],
                 [Info("+CREG: 0,1"), OK], id="creg-query"),
    pytest.param([Begin("AT+COPS?"), b'\r\n+COPS: 0,0,"SimNet",7\r\n\r\nOK\r\n'],
                 [Info('+COPS: 0,0,"SimNet",7'), OK], id="cops"),
    pytest.param([Begin('AT+CPMS="SM","SM","SM"'), b"\r\n+CPMS: 0,30,0,30,0,30\r\n\r\nOK\r\n"],
                 [Info("+CPMS: 0,30,0,30,0,30"), OK], id="cpms"),
    pytest.param([Begin("AT+CSCA?"), b'\r\n+CSCA: "+15550000000",145\r\n\r\nOK\r\n'],
                 [Info('+CSCA: "+15550000000",145'), OK], id="csca"),
    pytest.param([Begin("AT+CSMS=?"), b"\r\n+CSMS: (0,1)\r\n\r\nOK\r\n"],
                 [Info("+CSMS: (0,1)"), OK], id="csms-test"),
    # smstools' chained init (modem.md §1): both prefixes are the command's
    pytest.param([Begin("AT+CMEE=1;+CREG=2"), b"AT+CMEE=1;+CREG=2\r\r\nOK\r\n"],
                 [OK], id="chained-set"),
    pytest.param([Begin("AT+CSQ;+CREG?"), b"\r\n+CSQ: 9,99\r\n\r\n+CREG: 2,1\r\n\r\nOK\r\n"],
                 [Info("+CSQ: 9,99"), Info("+CREG: 2,1"), OK], id="chained-query"),
    # +CREG while another command is pending is a URC (quirk 2)
    pytest.param([Begin("AT+CSQ"), b"\r\n+CREG: 1\r\n\r\n+CSQ: 9,99\r\n\r\nOK\r\n"],
                 [Urc("+CREG: 1"), Info("+CSQ: 9,99"), OK], id="creg-urc-while-csq"),
    # modem.md §1.2: PDU send, echo on; prompt has no newline; PDU body echoed up to Ctrl-Z
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"AT+CMGS=19\r\r\n> ",
                  PDU_G1 + b"\x1a\r\n+CMGS: 0\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 0"), OK], id="cmgs-echo"),
    # same with echo off
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n> ", b"\r\n+CMGS: 7\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 7"), OK], id="cmgs-no-echo"),
    # python-gsmmodem's fakes send "> \r\n"
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"> \r\n", b"\r\n+CMGS: 1\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 1"), OK], id="prompt-gsmmodem-style"),
    # the body echo without its Ctrl-Z, on its own line
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n> ",
                  PDU_G1 + b"\r\n\r\n+CMGS: 2\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 2"), OK], id="body-echo-no-ctrlz"),
    # ESC aborts the send and the modem answers OK (modem.md §1.2)
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n> ", b"0791\x1b\r\nOK\r\n"],
                 [Prompt(), OK], id="cmgs-esc-abort"),
    # ZTE: URCs before "> " and between the PDU and +CMGS: (modem.md §3, issue #11)
    pytest.param([Begin("AT+CMGS=19", prompt=True),
                  b"AT+CMGS=19\r\r\n^RSSI: 17\r\n\r\n+CMTI: \"SM\",3\r\n\r\n> ",
                  PDU_G1 + b"\x1a\r\n+CREG: 1\r\n\r\n^RSSI: 18\r\n\r\n+CMGS: 4\r\n\r\nOK\r\n"],
                 [Urc("^RSSI: 17"), Urc('+CMTI: "SM",3'), Prompt(), Urc("+CREG: 1"),
                  Urc("^RSSI: 18"), Info("+CMGS: 4"), OK], id="cmgs-urc-noise"),
    # a URC between "> " and the echoed body
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n> \r\n+CMTI: \"SM\",4\r\n",
                  PDU_G1 + b"\x1a\r\n+CMGS: 5\r\n\r\nOK\r\n"],
                 [Prompt(), Urc('+CMTI: "SM",4'), Info("+CMGS: 5"), OK],
                 id="urc-after-prompt"),
    # the send fails (27.005 §3.2.5)
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n> ",
                  PDU_G1 + b"\x1a\r\n+CMS ERROR: 500\r\n"],
                 [Prompt(), Final("CMS", 500)], id="cmgs-cms-500"),
    pytest.param([Begin("AT+CMGS=18", prompt=True), b"\r\n+CMS ERROR: 304\r\n"],
                 [Final("CMS", 304)], id="cmgs-no-prompt"),
    # text mode send (modem.md §1.2): quoted number contains no prefix
    pytest.param([Begin('AT+CMGS="+15551234567"', prompt=True),
                  b'AT+CMGS="+15551234567"\r\r\n> ', b"hello\x1a\r\n+CMGS: 0\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 0"), OK], id="cmgs-text-mode"),
    # modem.md §1.3: +CMGR in PDU mode, and ZTE's "+CMGR: ,,27" without <stat>
    pytest.param([Begin("AT+CMGR=3"), b"\r\n+CMGR: 0,,32\r\n" + PDU_D1 + b"\r\n\r\nOK\r\n"],
                 [Info("+CMGR: 0,,32"), Info(PDU_D1.decode()), OK], id="cmgr"),
    pytest.param([Begin("AT+CMGR=1"), b"\r\n+CMGR: ,,27\r\n" + PDU_R1 + b"\r\n\r\nOK\r\n"],
                 [Info("+CMGR: ,,27"), Info(PDU_R1.decode()), OK], id="cmgr-zte"),
    # +CMGL=4 with a +CMTI between its info lines
    pytest.param([Begin("AT+CMGL=4"),
                  b"AT+CMGL=4\r\r\n+CMGL: 1,0,,32\r\n" + PDU_D1 + b"\r\n+CMTI: \"SM\",3\r\n"
                  b"+CMGL: 2,1,,25\r\n" + PDU_R1 + b"\r\n\r\nOK\r\n"],
                 [Info("+CMGL: 1,0,,32"), Info(PDU_D1.decode()), Urc('+CMTI: "SM",3'),
                  Info("+CMGL: 2,1,,25"), Info(PDU_R1.decode()), OK], id="cmgl-urc-between"),
    pytest.param([Begin("AT+CMGL=4"), b"\r\nOK\r\n"], [OK], id="cmgl-empty"),
    pytest.param([Begin("AT+CMGD=1,0"), b"\r\n+CMS ERROR: 321\r\n"],
                 [Final("CMS", 321)], id="cmgd-empty-index"),
    # modem.md §1.3 / §1.4: URCs while idle; two-line +CMT/+CDS carry the PDU
    pytest.param([b'\r\n+CMTI: "SM",3\r\n'], [Urc('+CMTI: "SM",3')], id="cmti"),
    pytest.param([b'\r\n+CDSI: "SR",1\r\n'], [Urc('+CDSI: "SR",1')], id="cdsi"),
    pytest.param([b"\r\n+CMT: ,32\r\n" + PDU_D1 + b"\r\n"],
                 [Urc("+CMT: ,32", PDU_D1.decode())], id="cmt-pdu"),
    pytest.param([b"\r\n+CDS: 25\r\n" + PDU_R1 + b"\r\n"],
                 [Urc("+CDS: 25", PDU_R1.decode())], id="cds-pdu"),
    # text mode +CMT: the second line is the message text
    pytest.param([b'\r\n+CMT: "+15550001111",,"26/11/21,21:31:56+00"\r\nhello world\r\n'],
                 [Urc('+CMT: "+15550001111",,"26/11/21,21:31:56+00"', "hello world")],
                 id="cmt-text"),
    # text mode +CDS is one line (27.005 §3.4.1)
    pytest.param([b'\r\n+CDS: 6,0,"+15551234567",145,"26/11/21,21:31:56+00",'
                  b'"26/11/21,21:31:58+00",0\r\n'],
                 [Urc('+CDS: 6,0,"+15551234567",145,"26/11/21,21:31:56+00",'
                      '"26/11/21,21:31:58+00",0')], id="cds-text"),
    # +CMT whose PDU line is missing: emitted bare, the next line still counts
    pytest.param([b"\r\n+CMT: ,32\r\nRING\r\n"], [Urc("+CMT: ,32"), Urc("RING")],
                 id="cmt-missing-pdu"),
    # +CDS arriving while a command is pending, PDU included
    pytest.param([Begin("AT+CSQ"), b"\r\n+CDS: 25\r\n" + PDU_R1 + b"\r\n+CSQ: 3,99\r\n\r\nOK\r\n"],
                 [Urc("+CDS: 25", PDU_R1.decode()), Info("+CSQ: 3,99"), OK], id="cds-pending"),
    # +CMTI before the echo is seen
    pytest.param([Begin("AT+CSQ"), b'\r\n+CMTI: "SM",9\r\nAT+CSQ\r\r\n+CSQ: 3,99\r\n\r\nOK\r\n'],
                 [Urc('+CMTI: "SM",9'), Info("+CSQ: 3,99"), OK], id="urc-before-echo"),
    # quirk 7: reboot URCs (SIMCom) while idle
    pytest.param([b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nCall Ready\r\n"
                  b"\r\nSMS Ready\r\n"],
                 [Urc("RDY"), Urc("+CFUN: 1"), Urc("+CPIN: READY"), Urc("Call Ready"),
                  Urc("SMS Ready")], id="reboot-urcs"),
    # +CPIN: READY while another command is pending is unsolicited
    pytest.param([Begin("AT+CSQ"), b"\r\n+CPIN: READY\r\n\r\nOK\r\n"],
                 [Urc("+CPIN: READY"), OK], id="cpin-urc-while-pending"),
    pytest.param([Begin("AT+CSQ"), b"\r\nUNDER-VOLTAGE WARNNING\r\n\r\nOK\r\n"],
                 [Urc("UNDER-VOLTAGE WARNNING"), OK], id="under-voltage"),
    pytest.param([b"\r\n+ZPAS: \"UMTS\",\"CS_PS\"\r\n\r\n+WIND: 4\r\n\r\nRING\r\n"],
                 [Urc('+ZPAS: "UMTS","CS_PS"'), Urc("+WIND: 4"), Urc("RING")], id="vendor-urcs"),
    # 27.007 §7.15: the USSD answer is a URC after OK; AT+CUSD? gets Info
    pytest.param([Begin('AT+CUSD=1,"*100#",15'), b'\r\nOK\r\n\r\n+CUSD: 0,"Balance 5",15\r\n'],
                 [OK, Urc('+CUSD: 0,"Balance 5",15')], id="cusd-set"),
    pytest.param([Begin('AT+CUSD=1,"*100#",15'), b'\r\n+CUSD: 0,"Balance 5",15\r\n\r\nOK\r\n'],
                 [Urc('+CUSD: 0,"Balance 5",15'), OK], id="cusd-before-ok"),
    pytest.param([Begin("AT+CUSD?"), b"\r\n+CUSD: 1\r\n\r\nOK\r\n"],
                 [Info("+CUSD: 1"), OK], id="cusd-query"),
    # quirk 5: verbose errors with AT+CMEE=2, mapped to their codes
    pytest.param([Begin("AT+CSCA?"), b"\r\n+CME ERROR: SIM busy\r\n"],
                 [Final("CME", 14, "SIM busy")], id="cme-verbose"),
    pytest.param([Begin("AT+CPIN?"), b"\r\n+CME ERROR: SIM PIN required\r\n"],
                 [Final("CME", 11, "SIM PIN required")], id="cme-verbose-pin"),
    pytest.param([Begin("AT+CMGS=5", prompt=True),
                  b"\r\n+CMS ERROR: invalid PDU mode parameter\r\n"],
                 [Final("CMS", 304, "invalid PDU mode parameter")], id="cms-verbose"),
    pytest.param([Begin("AT+CSQ"), b"\r\n+CME ERROR: frobnicator jammed\r\n"],
                 [Final("CME", None, "frobnicator jammed")], id="cme-verbose-unknown"),
    pytest.param([Begin("AT+CFUN=1"), b"\r\n+CME ERROR: 515\r\n"],
                 [Final("CME", 515)], id="cme-515"),
    # Huawei E1752 (python-gsmmodem test/fakemodems.py)
    pytest.param([Begin("AT+CLAC"), b"\r\nCOMMAND NOT SUPPORT\r\n"],
                 [Final("COMMAND NOT SUPPORT")], id="command-not-support"),
    pytest.param([Begin("AT+CLAC"), b"AT+CLAC\r\r\nAT+CGMI\r\r\nAT+CGMM\r\r\n\r\r\nOK\r\r\n"],
                 [Info("AT+CGMI"), Info("AT+CGMM"), OK], id="huawei-crcrlf"),
    # other final result codes (V.250 §5.7.1)
    pytest.param([Begin("ATD+15551234567;"), b"\r\nNO CARRIER\r\n"], [Final("NO CARRIER")],
                 id="no-carrier"),
    pytest.param([Begin("ATD+15551234567;"), b"\r\nBUSY\r\n"], [Final("BUSY")], id="busy"),
    pytest.param([Begin("ATD+15551234567;"), b"\r\nNO ANSWER\r\n"], [Final("NO ANSWER")],
                 id="no-answer"),
    pytest.param([Begin("ATD+15551234567;"), b"\r\nNO DIALTONE\r\n"], [Final("NO DIALTONE")],
                 id="no-dialtone"),
    pytest.param([Begin("AT+CMGF=0"), b"\r\nERROR\r\n"], [Final("ERROR")], id="error"),
    # STYLE.md §2.3: whole-line matching, so OKAY / "OK then" are not final results
    pytest.param([Begin("AT+CGMI"), b"\r\nOKAY\r\nOK then\r\n ERROR \r\n"],
                 [Info("OKAY"), Info("OK then"), Final("ERROR")], id="okay-is-not-ok"),
    # Wavecom's leading blank in +CGMI is stripped
    pytest.param([Begin("AT+CGMI"), b"\r\n WAVECOM MODEM\r\n\r\nOK\r\n"],
                 [Info("WAVECOM MODEM"), OK], id="wavecom-cgmi"),
    # lone \r and lone \n line ends
    pytest.param([Begin("AT+CSQ"), b"\r+CSQ: 5,99\r\rOK\r"], [Info("+CSQ: 5,99"), OK],
                 id="lone-cr"),
    pytest.param([Begin("AT+CSQ"), b"\n+CSQ: 5,99\n\nOK\n"], [Info("+CSQ: 5,99"), OK],
                 id="lone-lf"),
    # garbage: undecodable bytes and NULs become Noise, the line they sat in survives
    pytest.param([Begin("AT"), b"\x00\xff\xfe\r\n\x00OK\r\n"],
                 [Noise(b"\x00\xff\xfe"), Noise(b"\x00"), OK], id="garbage"),
    pytest.param([b"\xc3\xa9t\xc3\xa9\r\n"], [Urc("été")], id="utf8-kept"),
    # quirk 9: a late OK after the driver gave up is not the next command's answer
    pytest.param([Begin("AT+CPIN?"), b"\r\n+CPIN: READY\r\n", End(), b"\r\nOK\r\n"],
                 [Info("+CPIN: READY"), Urc("OK")], id="wavecom-missing-ok"),
    # a bare line after OK in the same chunk belongs to nobody
    pytest.param([Begin("AT+CGSN"), b"\r\n490154203237518\r\n\r\nOK\r\n\r\nhello\r\n"],
                 [Info("490154203237518"), OK, Urc("hello")], id="after-final"),
    # "> " only counts while a prompt is expected
    pytest.param([Begin("AT+CSQ"), b"\r\n> \r\n\r\nOK\r\n"], [Info(">"), OK],
                 id="prompt-not-expected"),
    # a prompt without the space (some firmwares)
    pytest.param([Begin("AT+CMGS=19", prompt=True), b"\r\n>\r\n", b"\r\n+CMGS: 9\r\n\r\nOK\r\n"],
                 [Prompt(), Info("+CMGS: 9"), OK], id="prompt-no-space"),
]


@pytest.mark.parametrize(("steps", "events"), TRANSCRIPTS)
def test_transcript(steps: list[Step], events: list[Event]) -> None:
    assert feed_all_ways(steps) == events


def test_pending_property_and_auto_end() -> None:
    parser = ATParser()
    assert parser.pending is None
    parser.begin("AT+CMGS=19", prompt=True)
    assert parser.pending == "AT+CMGS=19"
    assert parser.prompt_expected
    assert parser.feed(b"\r\n> ") == [Prompt()]
    assert parser.pending == "AT+CMGS=19"
    assert parser.feed(b"\r\n+CMGS: 3\r\n\r\nOK\r\n") == [Info("+CMGS: 3"), OK]
    assert parser.pending is None
    parser.end()  # no-op after a final result
    parser.begin("AT")


def test_begin_while_pending_is_misuse() -> None:
    parser = ATParser()
    parser.begin("AT+CPIN?")
    with pytest.raises(ATProtocolError):
        parser.begin("AT")
    parser.end()
    parser.begin("AT")
    with pytest.raises(ATProtocolError):
        ATParser().begin("\r\n")


def test_partial_line_is_buffered_until_complete() -> None:
    parser = ATParser()
    parser.begin("AT+CSQ")
    assert parser.feed(b"\r\n+CSQ: 2") == []
    assert parser.buffered > 0
    assert parser.feed(b"1,99\r\n") == [Info("+CSQ: 21,99")]


def test_two_line_urc_waits_for_its_pdu() -> None:
    parser = ATParser()
    assert parser.feed(b"\r\n+CMT: ,32\r\n") == []
    assert parser.feed(PDU_D1 + b"\r\n") == [Urc("+CMT: ,32", PDU_D1.decode())]


def test_flush_emits_what_is_left() -> None:
    parser = ATParser()
    assert parser.feed(b"\r\n+CMT: ,32\r\n") == []
    assert parser.flush() == [Urc("+CMT: ,32")]
    parser.begin("AT")
    assert parser.feed(b"\r\nOK") == []
    assert parser.flush() == [OK]


def test_overlong_line_becomes_noise() -> None:
    parser = ATParser()
    events = parser.feed(b"x" * (MAX_LINE + 1))
    assert events == [Noise(b"x" * (MAX_LINE + 1))]
    assert parser.buffered == 0
    assert parser.feed(b"\r\nRING\r\n") == [Urc("RING")]


def test_long_line_fed_bytewise_is_linear() -> None:
    # A partial line is searched once, not once per feed: 64 KiB one byte at a time is quick.
    parser = ATParser()
    data = b"A" * MAX_LINE
    start = time.perf_counter()
    for i in range(len(data)):
        assert parser.feed(data[i : i + 1]) == []
    assert parser.feed(b"\r\n") == [Urc("A" * MAX_LINE)]
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("command", "prefixes"),
    [
        pytest.param("AT+CSQ", {"+CSQ"}, id="plain"),
        pytest.param("AT+CMGL=4", {"+CMGL"}, id="set"),
        pytest.param("AT+CPMS?", {"+CPMS"}, id="query"),
        pytest.param("AT+CSCS=?", {"+CSCS"}, id="test"),
        pytest.param("AT+CMEE=1;+CREG=2", {"+CMEE", "+CREG"}, id="chained"),
        pytest.param("ATE0V1", set(), id="basic"),
        pytest.param("AT^ICCID?", {"^ICCID"}, id="huawei"),
        pytest.param('AT+CUSD=1,"*100#",15', set(), id="cusd-set-is-urc"),
        pytest.param('AT+CMGS="+15551234567"', {"+CMGS"}, id="quoted-number"),
        pytest.param("ATE0+CMEE=1", {"+CMEE"}, id="basic-then-extended"),
    ],
)
def test_response_prefixes(command: str, prefixes: set[str]) -> None:
    assert response_prefixes(command) == frozenset(prefixes)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, pending: bool) -> None:
    parser = ATParser()
    if pending:
        parser.begin("AT+CMGS=19", prompt=True)
    events = parser.feed(data) + parser.flush()
    assert all(isinstance(e, (Info, Final, Prompt, Urc, Noise)) for e in events)
    for event in events:
        if isinstance(event, Final):
            assert event.result in {"OK", "ERROR", "CME", "CMS", "NO CARRIER", "BUSY",
                                    "NO ANSWER", "NO DIALTONE", "COMMAND NOT SUPPORT"}


# Fragments that exercise every rule: line ends, prompt, body terminators, echo, finals, URCs.
FRAGMENTS = [b"\r", b"\n", b"\r\n", b"> ", b">", b"\x1a", b"\x1b", b"\x00", b"\xff", b"AT+CMGS=19",
             b"AT+CMGS", b"OK", b"ERROR", b"+CMS ERROR: 500", b"+CME ERROR: SIM busy",
             b"+CMGS: 3", b"+CMT: ,32", b"+CDS: 25", b"+CMTI: \"SM\",1", b"0791AB", b"RING",
             b"hello", b" "]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40), st.booleans(),
       st.lists(st.integers(min_value=0, max_value=600), max_size=10))
def test_any_stream_is_split_invariant(parts: list[bytes], prompt: bool, cuts: list[int]) -> None:
    data = b"".join(parts)
    steps: list[Step] = [Begin("AT+CMGS=19", prompt=prompt), data]
    expected = run(steps, _whole)
    assert run(steps, _bytewise) == expected
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    assert run(steps, lambda d: [d[a:b] for a, b in zip(points, points[1:])]) == expected
