"""A gateway killed with SIGKILL in the middle of sending, then restarted.

Real processes: the simulator (``python -m rpcgw.gsm.simulator``, TCP ports and a control
socket) outlives the gateway (``python -m rpcgw.cli serve``, configured with
``[[devices]]`` on ``socket://`` URLs), so the virtual network's traffic counts every
message that left a SIM across the kill.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from rpcgw.gsm.simulator import control_request

from .pool_helpers import eventually

PASSWORD = "crash-test-password"
AUTH = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
MODEMS = 3


async def read_lines(proc: asyncio.subprocess.Process, want: int, prefix: str,
                     timeout: float = 30) -> list[str]:
    lines: list[str] = []
    assert proc.stdout is not None
    while len(lines) < want:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout)
        if not raw:
            raise AssertionError(f"process ended early; got {lines}")
        line = raw.decode().strip()
        if line.startswith(prefix):
            lines.append(line)
    return lines


async def start_gateway(tmp: Path, database_url: str) -> tuple[Any, str]:
    env = dict(os.environ, RPCGW_ADMIN_PASSWORD=PASSWORD, RPCGW_LOG_LEVEL="WARNING",
               RPCGW_POOL_POLL_SECONDS="0.1", RPCGW_POOL_MAINTENANCE_SECONDS="0.2",
               RPCGW_NODE_NAME="crash-test-node")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", "serve", "--port", "0", "--config",
        str(tmp / "rpcgw.toml"), "--database", database_url, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    (line,) = await read_lines(proc, 1, "rpcgw listening on ")
    return proc, line.split(" on ", 1)[1]


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body, headers={"Authorization": AUTH}) as resp:
        answer = await resp.json(content_type=None)
    if "error" in answer:
        raise AssertionError(answer["error"])
    return answer["result"]


async def test_sigkill_mid_run_loses_nothing(tmp_path: Path, database_url: str) -> None:
    control = str(tmp_path / "sim.sock")
    simulator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.gsm.simulator", "--count", str(MODEMS), "--transport",
        "tcp", "--control", control, "--delivery-delay", "0.05", "--accept-delay", "0.05",
        "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    gateway = None
    try:
        modems = [json.loads(line) for line in await read_lines(simulator, MODEMS, "{")]
        config = "\n".join(
            f'[[devices]]\nname = "{m["name"]}"\nurl = "{m["url"]}"\n' for m in modems)
        (tmp_path / "rpcgw.toml").write_text(config)
        gateway, url = await start_gateway(tmp_path, database_url)
        async with aiohttp.ClientSession() as session:
            async def online() -> bool:
                devices = await rpc(session, url, "devices.get_list")
                return all(d["state"] == "online" for d in devices) and len(devices) == MODEMS
            await eventually(online, timeout=60)
            texts = [f"crash test {i:03d}" for i in range(150)]
            accepted = await rpc(session, url, "sms.send_batch",
                                 [{"to": "+33612345678", "text": t} for t in texts])
            assert all("hash" in r for r in accepted)

            async def some_sent() -> bool:
                sent = await control_request(control, {"cmd": "traffic"})
                return len(sent) >= 30
            await eventually(some_sent, timeout=60, interval=0.05)
            gateway.send_signal(signal.SIGKILL)
            await gateway.wait()

            gateway, url = await start_gateway(tmp_path, database_url)

            async def all_delivered() -> bool:
                page = await rpc(session, url, "sms.search",
                                 {"status": "DELIVERED", "count_only": True})
                return page["count"] == len(texts)
            await eventually(all_delivered, timeout=120, interval=0.5)

        traffic = await control_request(control, {"cmd": "traffic"})
        counts: dict[str, int] = {}
        for record in traffic:
            counts[record["text"]] = counts.get(record["text"], 0) + 1
        assert set(counts) == set(texts)  # every accepted message left a SIM
        doubled = {t: n for t, n in counts.items() if n > 1}
        # Only a message a modem was sending at the instant of the kill may go twice:
        # at most one per SIM.
        assert sum(n - 1 for n in doubled.values()) <= MODEMS, doubled
    finally:
        for proc in (gateway, simulator):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()
