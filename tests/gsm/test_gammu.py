"""gammu (a client nobody on the team wrote) drives the simulator over its pty.

gammu must be installed (Debian package ``gammu``; CI installs it): a missing gammu is a
failure, not a skip.  gammu writes its first commands byte by byte with 0.4 s gaps, so each
run takes about 4 s (modem.md §4.2).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from rpcgw.gsm.simulator import SimulatorHost

from .conftest import SimFactory, wait_until

pytestmark = pytest.mark.gammu

GAMMU_TIMEOUT = 60.0


def gammu_binary() -> str:
    path = shutil.which("gammu")
    assert path is not None, "gammu is not installed (apt-get install gammu): CI needs it"
    return path


async def gammu(tmp_path: Path, device: str, *args: str) -> str:
    """Run gammu against ``device`` (``model = at`` avoids a second probing init)."""
    rc = tmp_path / "gammurc"
    rc.write_text(
        "[gammu]\n"
        f"device = {device}\n"
        "connection = at\n"
        "model = at\n"
        f"logfile = {tmp_path / 'gammu.log'}\n"
        "logformat = textall\n"
    )
    process = await asyncio.create_subprocess_exec(
        gammu_binary(), "-c", str(rc), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), GAMMU_TIMEOUT)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode("utf-8", "replace")
    assert process.returncode == 0, f"gammu {' '.join(args)} failed:\n{text}"
    return text


async def test_gammu_identify(sim: SimulatorHost, tmp_path: Path) -> None:
    info = sim.infos[0]
    out = await gammu(tmp_path, info.url, "identify")
    assert "SIMULATOR" in out
    assert info.imei in out and info.imsi in out


async def test_gammu_sendsms_reaches_the_other_simulated_sim(sim: SimulatorHost,
                                                             tmp_path: Path) -> None:
    sender, receiver = sim.infos
    out = await gammu(tmp_path, sender.url, "sendsms", "TEXT", receiver.number, "-text",
                      "hello from gammu")
    assert "message reference=0" in out
    [record] = sim.network.traffic(recipient=receiver.number)
    assert (record.text, record.sim_number, record.complete) == (
        "hello from gammu", sender.number, True)
    engine = sim.modem(receiver.name).engine
    await wait_until(lambda: len(engine.stores["SM"].records) == 1)


async def test_gammu_long_unicode_message_arrives_whole(sim: SimulatorHost,
                                                        tmp_path: Path) -> None:
    sender, receiver = sim.infos
    text = ("Привет, мир! Grüße € ✓ 你好 " * 12)[:300]
    out = await gammu(tmp_path, sender.url, "sendsms", "TEXT", receiver.number, "-unicode",
                      "-len", "400", "-text", text)
    assert "Sending SMS 5/5" in out
    [record] = sim.network.traffic(recipient=receiver.number)
    assert record.complete and record.parts == 5 and record.duplicate_parts == 0
    assert record.text == text


async def test_gammu_getallsms_lists_an_injected_message(sim: SimulatorHost,
                                                         tmp_path: Path) -> None:
    info = sim.infos[0]
    sim.network.inject("+33612345678", info.number, "Bonjour depuis dehors")
    out = await gammu(tmp_path, info.url, "getallsms")
    assert "+33612345678" in out and "Bonjour depuis dehors" in out


async def test_gammu_enters_the_pin(sim_factory: SimFactory, tmp_path: Path) -> None:
    host = await sim_factory(1, config_overrides={"pin": "1234"})
    info = host.infos[0]
    await gammu(tmp_path, info.url, "entersecuritycode", "PIN", "1234")
    assert host.modem("sim0").engine.sim_state == "READY"
