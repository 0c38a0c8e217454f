"""The modem driver and its supervisor, against the simulator over real ptys and socket://."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

import pytest

from rpcgw.gsm import pdu
from rpcgw.gsm.errors import Retry, classify
from rpcgw.gsm.modem import (
    CommandError,
    Modem,
    ModemState,
    ModemTimeout,
    ModemUnavailable,
    SendUnknown,
    mask,
)
from rpcgw.gsm.simulator import SimulatorHost

from .conftest import SimFactory, SupervisorFactory, fast_config, wait_until

OUTSIDE = "+33612345678"


def sim_store(host: SimulatorHost, name: str = "sim0", memory: str = "SM") -> dict:
    return host.modem(name).engine.stores[memory].records


# ---------------------------------------------------------------- start-up


async def test_start_up_reads_identity_and_health(sim: SimulatorHost,
                                                  supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    info = supervisor.info
    expected = sim.infos[0]
    assert (info.imei, info.imsi, info.iccid, info.number) == (
        expected.imei, expected.imsi, expected.iccid, expected.number)
    assert (info.manufacturer, info.operator, info.registration) == ("SIMULATOR", "SimNet", "home")
    assert info.signal_dbm == -113 + 2 * 21
    assert (info.storage, info.cnmi, info.smsc) == ("SM", "2,1,0,2,0", "+15550000000")
    assert [c.new for c in recorder.states] == [ModemState.STARTING, ModemState.READY]


@pytest.mark.parametrize(
    "commands",
    [("+CCID",), ("+QCCID",), ("^ICCID",), ()],
    ids=["simcom-ccid", "quectel-qccid", "huawei-iccid", "crsm-ef-iccid"],
)
async def test_iccid_fallbacks(sim_factory: SimFactory, supervise: SupervisorFactory,
                               commands: tuple[str, ...]) -> None:
    host = await sim_factory(1, config_overrides={"iccid_commands": commands,
                                                  "knows_number": False})
    supervisor, _ = await supervise(host.infos[0].url)
    assert supervisor.info.iccid == host.infos[0].iccid
    assert supervisor.info.number is None  # +CNUM answered just OK


async def test_cnmi_falls_back_when_ds2_is_not_supported(sim_factory: SimFactory,
                                                         supervise: SupervisorFactory) -> None:
    host = await sim_factory(1, config_overrides={"supports_ds2": False})
    supervisor, _ = await supervise(host.infos[0].url)
    assert supervisor.info.cnmi == "2,1,0,1,0"


async def test_configured_pin_unlocks_the_sim(sim_factory: SimFactory,
                                              supervise: SupervisorFactory) -> None:
    host = await sim_factory(1, config_overrides={"pin": "1234"})
    supervisor, _ = await supervise(host.infos[0].url, pin="1234")
    assert supervisor.info.imsi == host.infos[0].imsi
    assert host.modem("sim0").engine.sim_state == "READY"


@pytest.mark.parametrize(
    ("configured", "reason"),
    [("0000", "refused the PIN"), (None, "none configured")],
    ids=["wrong-pin-tried-once", "no-pin-configured"],
)
async def test_pin_problems_fail_without_retrying(
        sim_factory: SimFactory, supervise: SupervisorFactory,
        configured: str | None, reason: str) -> None:
    host = await sim_factory(1, config_overrides={"pin": "1234"})
    supervisor, recorder = await supervise(host.infos[0].url, pin=configured, wait=False)
    await supervisor.wait_state(ModemState.FAILED, timeout=5)
    assert reason in supervisor.reason
    engine = host.modem("sim0").engine
    await asyncio.sleep(0.3)  # several reset periods: still exactly one attempt
    assert supervisor.state is ModemState.FAILED
    assert engine._pin_attempts == (2 if configured else 3)
    with pytest.raises(ModemUnavailable):
        await supervisor.send_sms(OUTSIDE, "hi")


async def test_puk_locked_sim_is_unusable(sim_factory: SimFactory,
                                          supervise: SupervisorFactory) -> None:
    host = await sim_factory(1, config_overrides={"pin": "1234"})
    host.modem("sim0").engine.sim_state = "SIM PUK"
    supervisor, _ = await supervise(host.infos[0].url, pin="1234", wait=False)
    await supervisor.wait_state(ModemState.FAILED, timeout=5)
    assert "PUK" in supervisor.reason


# ----------------------------------------------------------------- sending


async def test_send_returns_references_and_the_report_reaches_the_host(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    references = await supervisor.send_sms(OUTSIDE, "Hello world")
    assert references == [0]
    [record] = sim.network.traffic(recipient=OUTSIDE)
    assert (record.text, record.sim_name, record.references) == ("Hello world", "sim0", [0])
    await recorder.wait_for(lambda: len(recorder.reports) == 1)
    report = recorder.reports[0]
    assert (report.reference, report.recipient, report.outcome, report.route) == (
        0, OUTSIDE, "delivered", "stored")
    await wait_until(lambda: sim_store(sim, memory="SR") == {})  # deleted after the callback


async def test_long_message_parts_go_back_to_back_on_one_modem(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    text = "Ünïcødé ✓ " * 40
    references = await supervisor.send_sms(OUTSIDE, text)
    assert references == list(range(len(references))) and len(references) == 6
    [record] = sim.network.traffic(recipient=OUTSIDE)
    assert record.complete and record.text == text and record.sim_name == "sim0"
    assert record.references == references and record.duplicate_parts == 0


async def test_concurrent_sends_do_not_interleave_parts(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    texts = [f"{n}" * 300 for n in range(3)]
    results = await asyncio.gather(*(supervisor.send_sms(OUTSIDE, t) for t in texts))
    for references in results:
        assert references == list(range(references[0], references[0] + len(references)))
    assert sorted(r.text for r in sim.network.traffic()) == texts


@pytest.mark.parametrize(
    ("code", "retry"),
    [(42, Retry.TEMPORARY), (38, Retry.TEMPORARY), (21, Retry.PERMANENT), (304, Retry.BUG)],
    ids=["cms42-congestion", "cms38-out-of-order", "cms21-rejected", "cms304-bad-pdu"],
)
async def test_cms_error_raises_with_its_classification(
        sim: SimulatorHost, supervise: SupervisorFactory, code: int, retry: Retry) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "cms-error", code=code, count=1)
    with pytest.raises(CommandError) as caught:
        await supervisor.send_sms(OUTSIDE, "hi")
    assert caught.value.kind == "CMS" and caught.value.code == code
    assert caught.value.info == classify("CMS", code) and caught.value.info.retry is retry
    assert sim.network.traffic() == []
    assert await supervisor.send_sms(OUTSIDE, "again") == [0]  # the modem is still fine
    assert supervisor.state is ModemState.READY


async def test_network_rule_rejection_mid_multipart_reports_the_parts_sent(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "cms-error", code=42, probability=1.0)
    sim.modem("sim0").engine.faults.cms = None
    sim.network.add_rule("+449*", "temporary", code=42)
    with pytest.raises(CommandError) as caught:
        await supervisor.send_sms("+4491234567", "a" * 200)
    assert caught.value.sent_references == [] and caught.value.info.retry is Retry.TEMPORARY


async def test_wedge_after_the_pdu_is_send_unknown_never_success(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "wedge", trigger="pdu", until="reset", deliver=True)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SendUnknown) as caught:
        await supervisor.send_sms(OUTSIDE, "did it go?")
    assert loop.time() - started < 1.5 + 0.5  # send_timeout
    assert caught.value.part == 1 and caught.value.references == []
    # The network did get it: only "unknown" is honest.
    assert [r.text for r in sim.network.traffic()] == ["did it go?"]
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING))
    await supervisor.wait_ready(timeout=5)  # ATZ got through the wedge (until=reset)
    assert await supervisor.send_sms(OUTSIDE, "after reset") is not None


async def test_unknown_part_of_a_multipart_keeps_the_confirmed_references(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    engine = sim.modem("sim0").engine
    original = engine._submit
    calls = 0

    def wedge_on_second_part(tpdu: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            sim.set_fault("sim0", "wedge", trigger="pdu", until="reset", deliver=False)
        original(tpdu)

    engine._submit = wedge_on_second_part  # type: ignore[method-assign]
    with pytest.raises(SendUnknown) as caught:
        await supervisor.send_sms(OUTSIDE, "b" * 400)
    assert caught.value.part == 2 and caught.value.references == [0]


async def test_no_prompt_is_a_timeout_and_nothing_is_sent(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "wedge", until="reset")
    with pytest.raises(ModemTimeout):
        await supervisor.send_sms(OUTSIDE, "never sent")
    assert sim.network.traffic() == []


# --------------------------------------------------------- fault recovery


async def test_wedged_modem_is_detected_by_health_checks_and_power_cycled(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(
        sim.infos[0].url, hard_reset=lambda: sim.power_cycle("sim0"), hard_reset_after=1,
        command_timeout=0.5)
    loop = asyncio.get_running_loop()
    sim.set_fault("sim0", "wedge", until="power")
    started = loop.time()
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    # health_interval 0.3 s + command_timeout 0.5 s
    assert loop.time() - started < 0.3 + 0.5 + 0.4
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=10)
    assert await supervisor.send_sms(OUTSIDE, "back") == [0]


async def test_wedge_that_ends_by_itself_is_recovered_by_reopening(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "wedge", until="power", duration=1.5)
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=10)
    assert supervisor.resets == 1


async def test_hangup_is_recovered_by_reopening_the_port(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "hangup", down_for=0.5)
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    assert "ModemIOError" in supervisor.reason or recorder.states[-1].new is not ModemState.READY
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=10)
    assert await supervisor.send_sms(OUTSIDE, "after hang-up") == [0]


async def test_socket_url_send_receive_and_hangup(
        sim_factory: SimFactory, supervise: SupervisorFactory) -> None:
    host = await sim_factory(1, transport="tcp")
    supervisor, recorder = await supervise(host.infos[0].url)
    assert await supervisor.send_sms(OUTSIDE, "over tcp") == [0]
    host.network.inject(OUTSIDE, host.infos[0].number, "to tcp")
    await recorder.wait_for(lambda: len(recorder.messages) == 1)
    host.set_fault("sim0", "hangup", down_for=0.3)
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=10)
    assert await supervisor.send_sms(OUTSIDE, "tcp again") == [1]


async def test_slow_answers_within_the_timeout_still_work(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "slow", delay=0.2)
    assert await supervisor.send_sms(OUTSIDE, "slowly") == [0]
    assert not recorder.saw(ModemState.RESETTING)


async def test_answers_slower_than_the_timeout_cause_a_reset(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "slow", delay=1.2)
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    sim.clear_fault("sim0", "slow")
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=10)


async def test_garbage_and_urc_storms_do_not_break_sending(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.set_fault("sim0", "garbage", probability=0.5)
    sim.set_fault("sim0", "urc-storm", rate=200)
    texts = [f"message {n} " + "x" * (n * 60) for n in range(6)]
    for text in texts:
        await supervisor.send_sms(OUTSIDE, text)
    sim.network.inject(OUTSIDE, sim.infos[0].number, "through the storm")
    await recorder.wait_for(lambda: len(recorder.messages) == 1)
    sim.clear_fault("sim0")
    assert [r.text for r in sim.network.traffic()] == texts
    assert not recorder.saw(ModemState.RESETTING)


async def test_failure_dumps_a_masked_trace(sim: SimulatorHost, supervise: SupervisorFactory,
                                            caplog: pytest.LogCaptureFixture) -> None:
    supervisor, _ = await supervise(sim.infos[0].url)
    caplog.set_level(logging.WARNING, logger="rpcgw.gsm.modem.m0")
    sim.set_fault("sim0", "wedge", trigger="pdu", until="reset")
    with pytest.raises(SendUnknown):
        await supervisor.send_sms(OUTSIDE, "secret text")
    dumps = [r.getMessage() for r in caplog.records if "AT exchange" in r.getMessage()]
    assert dumps and ">> AT+CMGS=" in dumps[0] and "<pdu " in dumps[0]
    joined = "\n".join(dumps)
    assert OUTSIDE[1:] not in joined and sim.infos[0].imsi not in joined


def test_mask_hides_numbers_and_pdus() -> None:
    assert mask('+CMGS: 12') == "+CMGS: 12"
    assert mask('+CNUM: "","+15550001000",145') == '+CNUM: "","+155******00",145'
    assert mask("07915155000000F011000B915155214365F70000FF05E8329BFD06") == "<pdu 27 octets>"


# ----------------------------------------------------------------- receiving


async def test_incoming_via_cmti_is_deleted_after_the_callback(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    sim.network.inject(OUTSIDE, sim.infos[0].number, "Incoming hello")
    await recorder.wait_for(lambda: len(recorder.messages) == 1)
    message = recorder.messages[0]
    assert (message.sender, message.text, message.route, message.imsi) == (
        OUTSIDE, "Incoming hello", "stored", sim.infos[0].imsi)
    await wait_until(lambda: sim_store(sim) == {})


async def test_multipart_incoming_is_handed_over_part_by_part(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    text = "Long incoming text. " * 12
    sim.network.inject(OUTSIDE, None, text)
    await recorder.wait_for(lambda: len(recorder.messages) == 2)
    parts = sorted(recorder.messages, key=lambda m: m.concat.seq)
    assert "".join(m.text for m in parts) == text
    assert {m.concat.total for m in parts} == {2}


async def test_failing_callback_leaves_the_message_for_the_next_sweep(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    recorder.fail_messages = True
    sim.network.inject(OUTSIDE, sim.infos[0].number, "keep me")
    await wait_until(lambda: any(r.stat == 1 for r in sim_store(sim).values()))
    await asyncio.sleep(0.1)
    assert len(sim_store(sim)) == 1 and recorder.messages == []
    recorder.fail_messages = False
    assert await supervisor.sweep() == 1
    assert [m.route for m in recorder.messages] == ["sweep"]
    assert sim_store(sim) == {}


async def test_start_up_sweep_collects_messages_received_while_down(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    sim.network.inject(OUTSIDE, sim.infos[0].number, "while you were out")
    report_engine = sim.modem("sim0").engine
    report_engine.cnmi = [2, 1, 0, 2, 0]
    now = datetime.now(timezone.utc)
    report = pdu.encode_status_report(9, OUTSIDE, status=0x46, sc_timestamp=now,
                                      discharge_time=now)
    report_engine.receive(report.hex, report.tpdu_length, is_report=True)
    supervisor, recorder = await supervise(sim.infos[0].url)
    await recorder.wait_for(lambda: len(recorder.messages) == 1 and len(recorder.reports) == 1)
    assert recorder.messages[0].route == "sweep" and recorder.reports[0].outcome == "failed"
    assert sim_store(sim) == {} and sim_store(sim, memory="SR") == {}


async def test_periodic_sweep_polls_storage_when_notifications_are_lost(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url, sweep_interval=0.3)
    engine = sim.modem("sim0").engine
    message = pdu.encode_deliver(OUTSIDE, "silently stored",
                                 timestamp=datetime.now(timezone.utc))[0]
    engine.store_incoming(message.hex, message.tpdu_length, notify=False)  # lost +CMTI
    await recorder.wait_for(lambda: len(recorder.messages) == 1, timeout=3)
    assert recorder.messages[0].route == "sweep"


async def test_direct_mode_cmt_and_cds_are_acknowledged_after_the_callback(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url, receive_mode="direct")
    assert (supervisor.info.csms, supervisor.info.cnmi) == (1, "2,2,0,1,0")
    engine = sim.modem("sim0").engine
    sim.network.inject(OUTSIDE, sim.infos[0].number, "pushed")
    await recorder.wait_for(lambda: len(recorder.messages) == 1)
    assert recorder.messages[0].route == "direct"
    await supervisor.send_sms(OUTSIDE, "report me")
    await recorder.wait_for(lambda: len(recorder.reports) == 1)
    assert recorder.reports[0].route == "direct"
    await wait_until(lambda: not engine._cnma_pending)
    assert sim_store(sim) == {} and engine.cnmi[1] == 2


async def test_direct_mode_unacknowledged_message_is_stored_and_swept(
        sim_factory: SimFactory, supervise: SupervisorFactory) -> None:
    host = await sim_factory(1, config_overrides={"cnma_timeout": 0.2})
    supervisor, recorder = await supervise(host.infos[0].url, receive_mode="direct")
    recorder.fail_messages = True
    host.network.inject(OUTSIDE, host.infos[0].number, "ack me later")
    await wait_until(lambda: len(sim_store(host)) == 1)  # no +CNMA: the network stored it
    recorder.fail_messages = False
    assert await supervisor.sweep() == 1
    assert recorder.messages[0].text == "ack me later"
    # The health check noticed +CNMI was reset (27.005 §3.4.4) and set it again.
    engine = host.modem("sim0").engine
    await wait_until(lambda: engine.cnmi[1] == 2)


# ------------------------------------------------------------- Modem alone


async def test_modem_commands_and_storage_api(sim: SimulatorHost) -> None:
    modem = Modem(fast_config("solo", sim.infos[1].url))
    try:
        await modem.open(sweep=False)
        sim.network.inject(OUTSIDE, sim.infos[1].number, "list me")
        await wait_until(lambda: len(sim_store(sim, "sim1")) == 1)
        [stored] = await modem.list_stored()
        assert (stored.storage, stored.index) == ("SM", 1)
        assert (await modem.read_stored(1)) is not None
        await modem.delete_stored(1)
        assert await modem.read_stored(1) is None
        with pytest.raises(CommandError) as caught:
            await modem.command("AT+NOSUCH")
        assert caught.value.kind == "CME" and caught.value.code == 4
    finally:
        await modem.close()
    with pytest.raises(ModemUnavailable):
        await modem.list_stored()


async def test_concurrent_storage_calls_each_read_their_own_memory(
        sim: SimulatorHost) -> None:
    """Each storage call selects its memory (AT+CPMS) and then acts on it; two callers
    at once must not slip their AT+CPMS between the other's pair."""
    modem = Modem(fast_config("solo", sim.infos[1].url))
    try:
        await modem.open(sweep=False)
        sim.network.inject(OUTSIDE, sim.infos[1].number, "in SM")
        await wait_until(lambda: len(sim_store(sim, "sim1")) == 1)
        [record] = sim_store(sim, "sim1").values()
        sim.modem("sim1").engine.stores["ME"].add(record)  # the same PDU, kept in ME
        for _ in range(5):
            listings = await asyncio.gather(*(modem.list_stored(memory)
                                              for memory in ("SM", "ME", "SR") * 3))
            assert [[m.storage for m in found] for found in listings] == \
                [["SM"], ["ME"], []] * 3
            reads = await asyncio.gather(modem.read_stored(1, "ME"),
                                         modem.read_stored(1, "SR"),
                                         modem.read_stored(1, "SM"))
            assert [r.storage if r else None for r in reads] == ["ME", None, "SM"]
    finally:
        await modem.close()


class BusyModemTransport:
    """A modem that answers ``+CME ERROR: 515`` (busy) to its first two ``AT+CSQ``.

    Everything else gets a bare ``OK``: every optional start-up command degrades.
    """

    def __init__(self) -> None:
        self.written: list[str] = []
        self._output: asyncio.Queue[bytes] = asyncio.Queue()
        self._busy = 2
        self._line = b""

    async def read(self) -> bytes:
        return await self._output.get()

    async def write(self, data: bytes) -> None:
        self._line += data
        while b"\r" in self._line:
            raw, self._line = self._line.split(b"\r", 1)
            command = raw.decode().strip("\x1b")
            if not command:
                continue
            self.written.append(command)
            if command == "AT+CSQ" and self._busy:
                self._busy -= 1
                self._output.put_nowait(b"\r\n+CME ERROR: 515\r\n")
            elif command == "AT+CSQ":
                self._output.put_nowait(b"\r\n+CSQ: 10,99\r\n\r\nOK\r\n")
            else:
                self._output.put_nowait(b"\r\nOK\r\n")

    async def close(self) -> None:
        return None


async def test_transient_515_is_retried_and_bare_modems_still_start() -> None:
    transport = BusyModemTransport()

    async def factory(url: str) -> BusyModemTransport:
        return transport

    modem = Modem(fast_config("busy", "fake://"), transport_factory=factory)
    try:
        info = await modem.open()
    finally:
        await modem.close()
    assert transport.written.count("AT+CSQ") == 3
    assert (info.rssi, info.signal_dbm) == (10, -93)
    assert (info.imei, info.iccid, info.number) == (None, None, None)


async def test_unexpected_reboot_is_noticed_and_the_modem_reinitialised(
        sim: SimulatorHost, supervise: SupervisorFactory) -> None:
    supervisor, recorder = await supervise(sim.infos[0].url)
    await sim.power_cycle("sim0")  # settings lost; "RDY" arrives unsolicited
    await recorder.wait_for(lambda: recorder.saw(ModemState.RESETTING), timeout=3)
    resetting = [c for c in recorder.states if c.new is ModemState.RESETTING]
    assert "modem restarted (RDY)" in resetting[0].reason
    await recorder.wait_for(lambda: recorder.states[-1].new is ModemState.READY, timeout=5)
    assert sim.modem("sim0").engine.cnmi == [2, 1, 0, 2, 0]


async def test_transport_without_a_file_descriptor_reads_in_a_thread() -> None:
    from rpcgw.gsm.transport import SerialTransport

    transport = await SerialTransport.open("loop://")
    try:
        await transport.write(b"AT\r")
        received = b""
        while received != b"AT\r":
            received += await asyncio.wait_for(transport.read(), 2)
    finally:
        await transport.close()


async def test_transport_maps_open_errors_to_modem_io_error(tmp_path) -> None:
    import serial

    from rpcgw.gsm.transport import ModemIOError, SerialTransport

    with pytest.raises(ModemIOError) as caught:
        await SerialTransport.open(str(tmp_path / "no-such-tty"))
    assert isinstance(caught.value.__cause__, serial.SerialException)
