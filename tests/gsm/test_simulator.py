"""The simulator: AT engine (sans-IO), virtual network, pty/TCP host, control socket, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rpcgw.gsm import pdu
from rpcgw.gsm.simulator import (
    ModemEngine,
    Rule,
    SimModemConfig,
    SimulatorHost,
    UnknownNumber,
    control_request,
    make_configs,
    parse_fault,
)
from rpcgw.gsm.simulator.network import submit_to_deliver
from rpcgw.gsm.transport import SerialTransport

from .conftest import SimFactory, wait_until

NOW = datetime(2026, 11, 21, 21, 31, 56, tzinfo=timezone.utc)


class AcceptingNetwork:
    """Takes every submit and remembers it."""

    def __init__(self) -> None:
        self.submits: list[tuple[bytes, int]] = []

    def submit(self, engine: ModemEngine, tpdu: bytes, message_reference: int) -> int | None:
        self.submits.append((tpdu, message_reference))
        return None


class RejectingNetwork(AcceptingNetwork):
    """Answers every submit with one RP-cause."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def submit(self, engine: ModemEngine, tpdu: bytes, message_reference: int) -> int | None:
        super().submit(engine, tpdu, message_reference)
        return self.code


def make_engine(network: AcceptingNetwork | None = None,
                **overrides: object) -> tuple[ModemEngine, list[tuple[float, object]]]:
    timers: list[tuple[float, object]] = []
    engine = ModemEngine(SimModemConfig(accept_delay=0.0, **overrides),  # type: ignore[arg-type]
                         network=network, rng=random.Random(1),
                         schedule=lambda delay, callback: timers.append((delay, callback)),
                         clock=lambda: NOW)
    return engine, timers


def talk(engine: ModemEngine, data: bytes) -> bytes:
    engine.feed(data)
    return b"".join(item for item in engine.take_output() if isinstance(item, bytes))


def deliver_pdu(text: str = "Incoming hello", sender: str = "+15550001111") -> pdu.EncodedPdu:
    return pdu.encode_deliver(sender, text, timestamp=NOW)[0]


# ---------------------------------------------------------------- AT engine


def test_echo_is_on_at_power_up_and_ate0_turns_it_off() -> None:
    engine, _ = make_engine()
    assert talk(engine, b"AT\r") == b"AT\r\r\nOK\r\n"
    assert talk(engine, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"  # echoed: echo was still on
    assert talk(engine, b"AT\r") == b"\r\nOK\r\n"


def test_leading_escape_and_linefeeds_are_ignored_like_gammus_init() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    assert talk(engine, b"\x1b\r") == b""
    assert talk(engine, b"AT\r\n") == b"\r\nOK\r\n"


def test_chained_commands_answer_once_and_stop_at_the_first_error() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    assert talk(engine, b"AT+CMEE=1;+CREG=2;+CREG?\r") == (
        b'\r\n+CREG: 2,1,"1A2B","00C3"\r\n\r\nOK\r\n')
    assert talk(engine, b"ATE0V1+CMEE=1\r") == b"\r\nOK\r\n"
    assert talk(engine, b"AT+CMEE=1;+NOPE;+CREG=0\r") == b"\r\n+CME ERROR: 4\r\n"
    assert engine.creg_mode == 2


@pytest.mark.parametrize(
    ("cmee", "expected"),
    [(0, b"\r\nERROR\r\n"), (1, b"\r\n+CME ERROR: 4\r\n"),
     (2, b"\r\n+CME ERROR: operation not supported\r\n")],
    ids=["cmee0-plain", "cmee1-numeric", "cmee2-verbose"],
)
def test_unknown_commands_follow_cmee(cmee: int, expected: bytes) -> None:
    # 27.007 §9.1: +CMEE selects plain ERROR, numeric or verbose +CME ERROR.
    engine, _ = make_engine()
    talk(engine, f"ATE0;+CMEE={cmee}\r".encode())
    assert talk(engine, b"AT+CPROT=?\r") == expected


def test_identity_commands_and_iccid_from_ef_iccid_nibble_swapped() -> None:
    engine, _ = make_engine(iccid="89014103211118510720")
    talk(engine, b"ATE0\r")
    assert b"490154203237518" in talk(engine, b"AT+CGSN\r")
    assert b"+CCID: 89014103211118510720" in talk(engine, b"AT+CCID\r")
    assert b'+CRSM: 144,0,"98101430121181157002"' in talk(engine, b"AT+CRSM=176,12258,0,0,10\r")
    assert b'+CSCA: "+15550000000",145' in talk(engine, b"AT+CSCA?\r")  # gammu needs a number


def test_pin_gate_lets_gammus_init_through_but_guards_the_sim() -> None:
    engine, _ = make_engine(pin="1234")
    talk(engine, b"ATE0;+CMEE=1\r")
    for allowed in (b"AT+CFUN=1\r", b'AT+CSCS="GSM"\r', b"AT+CGMI\r", b"AT+CGMM\r",
                    b"AT+CGMR\r", b"AT+CGSN\r"):
        assert talk(engine, allowed).endswith(b"\r\nOK\r\n"), allowed
    assert talk(engine, b"AT+CIMI\r") == b"\r\n+CME ERROR: 11\r\n"
    assert talk(engine, b"AT+CMGL=4\r") == b"\r\n+CMS ERROR: 311\r\n"
    assert b"+CPIN: SIM PIN" in talk(engine, b"AT+CPIN?\r")
    assert talk(engine, b'AT+CPIN="1234"\r') == b"\r\nOK\r\n"
    assert b"001010123456789" in talk(engine, b"AT+CIMI\r")


def test_three_wrong_pins_block_the_sim_and_the_puk_unblocks_it() -> None:
    engine, _ = make_engine(pin="1234", puk="87654321")
    talk(engine, b"ATE0;+CMEE=1\r")
    for _ in range(3):
        assert talk(engine, b'AT+CPIN="0000"\r') == b"\r\n+CME ERROR: 16\r\n"
    assert b"+CPIN: SIM PUK" in talk(engine, b"AT+CPIN?\r")
    assert talk(engine, b"AT+CIMI\r") == b"\r\n+CME ERROR: 12\r\n"
    assert talk(engine, b'AT+CPIN="87654321","4321"\r') == b"\r\nOK\r\n"
    assert b"+CPIN: READY" in talk(engine, b"AT+CPIN?\r")


def test_cmgs_prompt_has_no_newline_and_the_mr_counts_modulo_256() -> None:
    network = AcceptingNetwork()
    engine, _ = make_engine(network)
    talk(engine, b"ATE0\r")
    engine.message_reference = 255
    submit = pdu.encode_submit("+15551234567", "hello")[0]
    assert talk(engine, f"AT+CMGS={submit.tpdu_length}\r".encode()) == b"\r\n> "
    assert talk(engine, submit.hex.encode() + b"\x1a") == b"\r\n+CMGS: 255\r\n\r\nOK\r\n"
    talk(engine, f"AT+CMGS={submit.tpdu_length}\r".encode())
    assert talk(engine, submit.hex.encode() + b"\x1a") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert [mr for _, mr in network.submits] == [255, 0]


def test_cmgs_echoes_the_body_when_echo_is_on() -> None:
    # gammu parses "> <pdu>" plus "+CMGS:" as the reply (modem.md §4.2).
    engine, _ = make_engine(AcceptingNetwork())
    submit = pdu.encode_submit("+15551234567", "hello")[0]
    assert talk(engine, f"AT+CMGS={submit.tpdu_length}\r".encode()).endswith(b"\r\n> ")
    out = talk(engine, submit.hex.encode() + b"\x1a")
    assert out == submit.hex.encode() + b"\r\n+CMGS: 0\r\n\r\nOK\r\n"


@pytest.mark.parametrize(
    "body",
    [pytest.param(lambda p: p.hex[:-2], id="one-octet-short"),
     pytest.param(lambda p: p.hex + "00", id="one-octet-long"),
     pytest.param(lambda p: p.hex[:-1] + "G", id="not-hex")],
)
def test_cmgs_rejects_a_pdu_that_does_not_match_its_length(body: object) -> None:
    # 27.005 §3.2.5: 304 invalid PDU mode parameter.
    network = AcceptingNetwork()
    engine, _ = make_engine(network)
    talk(engine, b"ATE0\r")
    submit = pdu.encode_submit("+15551234567", "hello")[0]
    talk(engine, f"AT+CMGS={submit.tpdu_length}\r".encode())
    written = body(submit).encode()  # type: ignore[operator]
    assert talk(engine, written + b"\x1a") == b"\r\n+CMS ERROR: 304\r\n"
    assert network.submits == []


def test_escape_aborts_the_message_and_answers_ok() -> None:
    network = AcceptingNetwork()
    engine, _ = make_engine(network)
    talk(engine, b"ATE0\r")
    talk(engine, b"AT+CMGS=19\r")
    assert talk(engine, b"07915155\x1b") == b"\r\nOK\r\n"
    assert network.submits == []
    assert talk(engine, b"AT\r") == b"\r\nOK\r\n"


def test_text_mode_send_prompts_again_after_cr() -> None:
    network = AcceptingNetwork()
    engine, _ = make_engine(network)
    talk(engine, b"ATE0;+CMGF=1;+CSMP=49,167,0,0\r")
    assert talk(engine, b'AT+CMGS="+15551234567"\r') == b"\r\n> "
    assert talk(engine, b"line one\r") == b"\r\n> "
    assert talk(engine, b"line two\x1a") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    message = pdu.decode(b"\x00" + network.submits[0][0])
    assert isinstance(message, pdu.Submit)
    assert (message.recipient, message.text, message.status_report) == (
        "+15551234567", "line one\nline two", True)


def test_cms_error_from_the_network_is_passed_to_the_client() -> None:
    engine, _ = make_engine(RejectingNetwork(42))
    talk(engine, b"ATE0\r")
    submit = pdu.encode_submit("+15551234567", "hello")[0]
    talk(engine, f"AT+CMGS={submit.tpdu_length}\r".encode())
    assert talk(engine, submit.hex.encode() + b"\x1a") == b"\r\n+CMS ERROR: 42\r\n"


def test_one_store_per_memory_with_cpms_meaning_mem1_mem2_mem3() -> None:
    # 27.005 §3.2.2: mem1 read/list/delete, mem3 where received messages go.
    engine, _ = make_engine()
    talk(engine, b'ATE0;+CPMS="SM","SM","ME"\r')
    incoming = deliver_pdu()
    engine.receive(incoming.hex, incoming.tpdu_length)
    assert talk(engine, b"AT+CMGL=4\r") == b"\r\nOK\r\n"  # SM is empty
    assert talk(engine, b'AT+CPMS="ME"\r') == b"\r\n+CPMS: 1,50,0,30,1,50\r\n\r\nOK\r\n"
    listing = talk(engine, b"AT+CMGL=4\r")
    assert f"+CMGL: 1,0,,{incoming.tpdu_length}\r\n\r\n{incoming.hex}".encode() in listing
    assert b"+CMGR: 1,," in talk(engine, b"AT+CMGR=1\r")  # listing marked it read
    assert talk(engine, b"AT+CMGD=1\r") == b"\r\nOK\r\n"
    assert talk(engine, b"AT+CMGR=1\r") == b"\r\n+CMS ERROR: 321\r\n"
    assert b'("SM","ME","SR")' in talk(engine, b"AT+CPMS=?\r")


def test_cmgd_delflags_select_by_status() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    for _ in range(3):
        message = deliver_pdu()
        engine.receive(message.hex, message.tpdu_length)
    talk(engine, b"AT+CMGR=1\r")  # 1 read, 2 and 3 unread
    talk(engine, b"AT+CMGD=0,1\r")  # 27.005 §3.5.4 delflag 1: all read messages
    assert sorted(engine.stores["SM"].records) == [2, 3]
    talk(engine, b"AT+CMGD=0,4\r")
    assert engine.stores["SM"].records == {}


def test_cnmi_mt1_stores_and_notifies_while_mode0_buffers_until_set() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    message = deliver_pdu()
    engine.receive(message.hex, message.tpdu_length)  # power-up CNMI=0,0: silent
    assert talk(engine, b"") == b""
    talk(engine, b"AT+CNMI=0,1\r")  # mode 0: indications buffered in the TA
    engine.receive(message.hex, message.tpdu_length)
    assert talk(engine, b"") == b""
    assert talk(engine, b"AT+CNMI=2,1,0,0,0\r") == b'\r\nOK\r\n\r\n+CMTI: "SM",2\r\n'
    engine.receive(message.hex, message.tpdu_length)
    assert talk(engine, b"") == b'\r\n+CMTI: "SM",3\r\n'


def test_cnmi_mt2_pushes_cmt_and_csms1_requires_cnma() -> None:
    engine, timers = make_engine()
    talk(engine, b"ATE0;+CSMS=1;+CNMI=2,2,0,1,0\r")
    message = deliver_pdu()
    engine.receive(message.hex, message.tpdu_length)
    assert talk(engine, b"") == f"\r\n+CMT: ,{message.tpdu_length}\r\n{message.hex}\r\n".encode()
    assert talk(engine, b"AT+CNMA\r") == b"\r\nOK\r\n"
    assert talk(engine, b"AT+CNMA\r") == b"\r\n+CMS ERROR: 340\r\n"  # nothing to acknowledge
    engine.receive(message.hex, message.tpdu_length)
    talk(engine, b"")
    for _, callback in timers:
        callback()  # type: ignore[operator]
    # 27.005 §3.4.4: no +CNMA in time -> routing off (mt=ds=0), the message is stored instead.
    assert engine.cnmi[1] == 0 and engine.cnmi[3] == 0
    assert len(engine.stores["SM"].records) == 1


def test_status_reports_follow_ds() -> None:
    engine, _ = make_engine()
    report = pdu.encode_status_report(7, "+15551234567", status=0, sc_timestamp=NOW,
                                      discharge_time=NOW)
    talk(engine, b"ATE0;+CNMI=2,1,0,1,0\r")
    engine.receive(report.hex, report.tpdu_length, is_report=True)
    assert talk(engine, b"") == f"\r\n+CDS: {report.tpdu_length}\r\n{report.hex}\r\n".encode()
    talk(engine, b"AT+CNMI=2,1,0,2,0\r")
    engine.receive(report.hex, report.tpdu_length, is_report=True)
    assert talk(engine, b"") == b'\r\n+CDSI: "SR",1\r\n'
    assert talk(engine, b"AT+CMGL=4\r") == b"\r\nOK\r\n"  # not in SM
    talk(engine, b'AT+CPMS="SR"\r')
    assert report.hex.encode() in talk(engine, b"AT+CMGR=1\r")


def test_text_mode_cmt_and_cmgr() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0;+CMGF=1;+CNMI=2,2,0,0,0\r")
    message = deliver_pdu()
    engine.receive(message.hex, message.tpdu_length)
    assert talk(engine, b"") == (b'\r\n+CMT: "+15550001111",,"26/11/21,21:31:56+00"\r\n'
                                 b"Incoming hello\r\n")
    talk(engine, b"AT+CNMI=2,1,0,0,0\r")
    engine.receive(message.hex, message.tpdu_length)
    talk(engine, b"")
    assert talk(engine, b"AT+CMGR=1\r") == (
        b'\r\n+CMGR: "REC UNREAD","+15550001111",,"26/11/21,21:31:56+00"\r\n'
        b"\r\nIncoming hello\r\n\r\nOK\r\n")


def test_cfun_reset_answers_ok_then_reboots_with_echo_on() -> None:
    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    out = talk(engine, b"AT+CFUN=1,1\r")
    assert out.startswith(b"\r\nOK\r\n") and b"\r\nRDY\r\n" in out and b"SMS Ready" in out
    assert engine.echo is True


def test_wedge_swallows_everything_until_reset_when_asked() -> None:
    from rpcgw.gsm.simulator import WedgeFault

    engine, _ = make_engine()
    talk(engine, b"ATE0\r")
    engine.set_wedge(WedgeFault(until="reset"))
    assert talk(engine, b"AT\rAT+CSQ\r") == b""
    assert b"RDY" in talk(engine, b"ATZ\r")
    assert talk(engine, b"AT\r").endswith(b"\r\nOK\r\n")


def test_garbage_never_contains_framing_bytes() -> None:
    engine, _ = make_engine()
    engine.faults.garbage = 1.0
    talk(engine, b"ATE0\r")
    noisy = talk(engine, b"AT+CSQ\r")
    assert noisy.count(b"\r\n") == 4
    assert len(noisy) > len(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n")
    assert noisy.replace(b"\r\n", b"").find(b">") < 0


# ----------------------------------------------------------- virtual network


def test_submit_becomes_a_deliver_with_the_same_user_data() -> None:
    parts = pdu.encode_submit("+15550001001", "x" * 200, concat_reference=9)
    octets = bytes.fromhex(parts[1].hex)
    deliver = submit_to_deliver(octets[1 + octets[0]:], "+15550001000", NOW)
    message = pdu.decode(b"\x00" + deliver)
    assert isinstance(message, pdu.Deliver)
    assert message.sender == "+15550001000"
    assert (message.concat.reference, message.concat.total, message.concat.seq) == (9, 2, 2)
    assert message.text == "x" * 47


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [("+33612345678", "+33612345678", True), ("+33612345678", "+336123456789", False),
     ("+336*", "+33612345678", True), ("+336*", "+33712345678", False),
     ("re:\\+1555\\d{7}", "+15551234567", True)],
    ids=["exact", "exact-longer", "prefix", "prefix-miss", "regex"],
)
def test_rule_patterns(pattern: str, number: str, matches: bool) -> None:
    assert Rule(pattern, "permanent").matches(number) is matches


def test_rule_parse() -> None:
    assert Rule.parse("+336*:temporary:42") == Rule("+336*", "temporary", "submit", 42)
    assert Rule.parse("+44*:permanent:submit") == Rule("+44*", "permanent", "submit", None)
    assert Rule.parse("+1*") == Rule("+1*", "permanent", "report", None)
    with pytest.raises(ValueError):
        Rule.parse("+1*:sometimes")


async def test_sim_to_sim_multipart_arrives_as_parts_and_traffic_reassembles(
        sim: SimulatorHost) -> None:
    sender, receiver = sim.modem("sim0").engine, sim.modem("sim1").engine
    text = "Grüße " * 40
    parts = pdu.encode_submit(receiver.config.number, text, concat_reference=77)
    for mr, part in enumerate(parts):
        octets = bytes.fromhex(part.hex)
        assert sim.network.submit(sender, octets[1 + octets[0]:], mr) is None
    await wait_until(lambda: len(receiver.stores["SM"].records) == len(parts))
    received = [pdu.decode(record.pdu_hex) for record in receiver.stores["SM"].records.values()]
    sequence = [m.concat.seq for m in received]  # type: ignore[union-attr]
    assert sequence == list(range(1, len(parts) + 1))
    [record] = sim.network.traffic(recipient=receiver.config.number)
    assert record.complete and record.text == text and record.parts == len(parts)
    assert record.sim_name == "sim0" and record.references == list(range(len(parts)))
    assert record.outcome == "local"


async def test_traffic_counts_duplicate_parts_and_filters(sim: SimulatorHost) -> None:
    engine = sim.modem("sim0").engine
    parts = pdu.encode_submit("+33612345678", "y" * 200, concat_reference=5)
    tpdus = [bytes.fromhex(p.hex)[1 + bytes.fromhex(p.hex)[0]:] for p in parts]
    sim.network.submit(engine, tpdus[0], 1)
    assert sim.network.traffic(complete=False)[0].parts_received == 1
    sim.network.submit(engine, tpdus[0], 2)
    sim.network.submit(engine, tpdus[1], 3)
    [record] = sim.network.traffic(recipient="+33612345678", sim="001010000000001")
    assert record.complete and record.duplicate_parts == 1 and record.references == [1, 2, 3]
    assert sim.network.traffic(sim="sim1") == []


async def test_rules_fail_at_submit_or_with_a_permanent_status_report(
        sim_factory: SimFactory) -> None:
    host = await sim_factory(1)
    network, engine = host.network, host.modem("sim0").engine
    network.add_rule("+331*", "temporary")
    network.add_rule("+332*", "permanent", stage="submit")
    network.add_rule("+333*", "permanent")
    network.add_rule("+334*", "no-report")
    engine.cnmi = [2, 1, 0, 2, 0]

    def tpdu(number: str) -> bytes:
        octets = bytes.fromhex(pdu.encode_submit(number, "hi", status_report=True)[0].hex)
        return octets[1 + octets[0]:]

    assert network.submit(engine, tpdu("+33100000000"), 1) == 38
    assert network.submit(engine, tpdu("+33200000000"), 2) == 1
    assert network.submit(engine, tpdu("+33300000000"), 3) is None
    assert network.submit(engine, tpdu("+33400000000"), 4) is None
    assert network.submit(engine, tpdu("+33500000000"), 5) is None
    await wait_until(lambda: len(engine.stores["SR"].records) == 2)
    reports = sorted((m.reference, m.status) for m in (
        pdu.decode(r.pdu_hex) for r in engine.stores["SR"].records.values()))
    assert reports == [(3, 0x41), (5, 0x00)]
    assert [r.recipient for r in network.traffic()] == ["+33300000000", "+33400000000",
                                                        "+33500000000"]
    assert network.rejected == 2


async def test_inject_picks_the_sim_and_splits_long_texts(sim: SimulatorHost) -> None:
    result = sim.network.inject("+33612345678", "+15550001001", "z" * 300)
    assert (result.modem, result.parts) == ("sim1", 2)
    assert len(sim.modem("sim1").engine.stores["SM"].records) == 2
    assert sim.network.inject("+33612345678", None, "any").parts == 1
    with pytest.raises(UnknownNumber):
        sim.network.inject("+33612345678", "+19999999999", "nobody")


# ------------------------------------------------------------- host and I/O


async def test_pty_link_is_a_raw_tty_and_a_client_can_talk(sim: SimulatorHost) -> None:
    info = sim.infos[0]
    assert os.path.islink(info.url)
    fd = os.open(info.url, os.O_RDWR | os.O_NOCTTY)
    try:
        assert os.isatty(fd)
    finally:
        os.close(fd)
    transport = await SerialTransport.open(info.url)
    try:
        await transport.write(b"ATE0\r")
        await transport.write(b"AT+CIMI\r")
        received = b""
        while b"001010000000001\r\n\r\nOK" not in received:
            received += await asyncio.wait_for(transport.read(), 2)
    finally:
        await transport.close()


async def test_hangup_closes_the_port_and_the_modem_comes_back(sim: SimulatorHost) -> None:
    modem = sim.modem("sim0")
    transport = await SerialTransport.open(modem.info.url)
    try:
        modem.set_fault("hangup", down_for=0.2)
        await wait_until(lambda: not os.path.exists(modem.info.url))
        from rpcgw.gsm.transport import ModemIOError

        with pytest.raises(ModemIOError):
            while True:
                await asyncio.wait_for(transport.read(), 2)
    finally:
        await transport.close()
    await wait_until(lambda: os.path.exists(modem.info.url))
    assert modem.engine.echo is True  # power-cycled


async def test_tcp_endpoint_serves_socket_urls(sim_factory: SimFactory) -> None:
    host = await sim_factory(1, transport="tcp")
    url = host.infos[0].url
    assert url.startswith("socket://127.0.0.1:")
    transport = await SerialTransport.open(url)
    try:
        await transport.write(b"AT\r")
        received = b""
        while b"OK" not in received:
            received += await asyncio.wait_for(transport.read(), 2)
        assert received == b"AT\r\r\nOK\r\n"
    finally:
        await transport.close()


async def test_control_socket_injects_sets_faults_and_reports_traffic(
        sim_factory: SimFactory, tmp_path: Path) -> None:
    path = str(tmp_path / "ctl.sock")
    host = await sim_factory(2, control_path=path)
    result = await control_request(path, {"cmd": "inject", "from": "+33611111111",
                                          "to": "+15550001000", "text": "hi"})
    assert result == {"modem": "sim0", "number": "+15550001000", "parts": 1}
    await control_request(path, {"cmd": "fault", "modem": "sim1", "kind": "slow",
                                 "params": {"delay": 0.5}})
    assert host.modem("sim1").engine.faults.delay == 0.5
    assert await control_request(path, {"cmd": "traffic"}) == []
    with pytest.raises(RuntimeError, match="UnknownNumber"):
        await control_request(path, {"cmd": "inject", "from": "+3361", "to": "+1", "text": "x"})


def test_parse_fault() -> None:
    assert parse_fault("sim1=wedge:trigger=pdu,until=reset") == (
        "sim1", "wedge", {"trigger": "pdu", "until": "reset"})
    assert parse_fault("cms-error:code=42,count=2") == (
        None, "cms-error", {"code": 42, "count": 2})
    with pytest.raises(ValueError):
        parse_fault("explode")


async def test_idle_simulator_uses_no_cpu(sim_factory: SimFactory) -> None:
    """Eight idle modems (the benchmark setup) must not busy-loop."""
    await sim_factory(8)
    before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(0.5)
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert used < 0.05, f"{used:.3f}s of CPU in 0.5s idle"


async def test_cli_runs_prints_modems_and_answers_inject_and_traffic(tmp_path: Path) -> None:
    control = str(tmp_path / "sim.ctl")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.gsm.simulator", "--count", "2", "--json",
        "--pty-dir", str(tmp_path), "--control", control, "--delivery-delay", "0.05",
        stdout=asyncio.subprocess.PIPE, env=env)
    try:
        assert process.stdout is not None
        lines = [json.loads(await asyncio.wait_for(process.stdout.readline(), 10))
                 for _ in range(2)]
        assert [line["number"] for line in lines] == ["+15550001000", "+15550001001"]
        assert all(os.path.islink(line["url"]) for line in lines)
        inject = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rpcgw.gsm.simulator", "inject", "--control", control,
            "--from", "+33612345678", "--to", "+15550001001", "Hello CLI",
            stdout=asyncio.subprocess.PIPE, env=env)
        out, _ = await asyncio.wait_for(inject.communicate(), 10)
        assert inject.returncode == 0
        assert json.loads(out) == {"modem": "sim1", "number": "+15550001001", "parts": 1}
        assert await control_request(control, {"cmd": "traffic"}) == []
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    assert not os.path.exists(control)


def test_make_configs_numbers_and_luhn_identities() -> None:
    configs = make_configs(3)
    assert [c.number for c in configs] == ["+15550001000", "+15550001001", "+15550001002"]
    assert len({c.imei for c in configs}) == 3 and all(len(c.imei) == 15 for c in configs)
    assert all(len(c.iccid) == 20 for c in configs)
