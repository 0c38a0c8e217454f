"""``rpcgw serve --workers 2``: extra API processes on the same port, the modem pool in
the first one, and no process left behind when the gateway stops."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from .pool_helpers import eventually

PASSWORD = "workers-password"
AUTH = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


async def test_two_api_processes_share_the_port_and_stop_together(tmp_path: Path) -> None:
    env = dict(os.environ, RPCGW_ADMIN_PASSWORD=PASSWORD, RPCGW_LOG_LEVEL="WARNING",
               RPCGW_SIMULATED_MODEMS="2", RPCGW_POOL_POLL_SECONDS="0.1")
    env = {k: v for k, v in env.items() if not k.startswith("RPCGW_CONFIG")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", "serve", "--port", "0", "--workers", "2",
        "--database", f"sqlite:///{tmp_path}/rpcgw.db", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "rpcgw serve exited"
            if line.startswith("rpcgw listening on "):
                url = line.split(" on ", 1)[1].strip()
                break

        async def worker_running() -> set[int]:
            return {p for p in children_of(proc.pid)
                    if "serve" in Path(f"/proc/{p}/cmdline").read_text()}
        (worker,) = await eventually(worker_running, timeout=30)

        async with aiohttp.ClientSession() as session:
            async def call(method: str, *params: Any) -> Any:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
                async with session.post(url, json=body,
                                        headers={"Authorization": AUTH}) as resp:
                    answer = await resp.json(content_type=None)
                assert "error" not in answer, answer
                return answer["result"]

            # Many connections: the kernel spreads them over both processes; every
            # message, whichever process took it, is sent by the pool in the first.
            before = cpu_ticks(worker)
            hashes = await asyncio.gather(*(call("sms.send", "", "+33612345678",
                                                 f"worker test {i}", None)
                                            for i in range(40)))
            # The worker served some: its first call alone verifies the password with
            # scrypt (tens of milliseconds of CPU; its cache is its own).
            assert cpu_ticks(worker) - before >= 2

            async def all_delivered() -> bool:
                page = await call("sms.search", {"status": "DELIVERED", "count_only": True})
                return page["count"] == len(hashes)
            await eventually(all_delivered, timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0

    async def worker_gone() -> bool:
        return not Path(f"/proc/{worker}").exists() or \
            "zombie" in Path(f"/proc/{worker}/status").read_text()
    await eventually(worker_gone, timeout=20)


def test_workers_auto_means_one_per_core() -> None:
    import pytest

    from rpcgw.cli import build_parser, resolved_workers

    parser = build_parser()
    assert parser.parse_args(["serve", "--workers", "auto"]).workers == 0
    assert parser.parse_args(["serve", "--workers", "3"]).workers == 3
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--workers", "-1"])
    cores = len(os.sched_getaffinity(0))
    assert resolved_workers(0) == cores >= 1
    assert resolved_workers(2) == 2
    with pytest.raises(ValueError, match="workers"):
        resolved_workers(-2)
