#!/usr/bin/env python3
"""Benchmark the modem pool: throughput of N simulated modems together versus alone.

Starts, on loopback:
  * the modem simulator as its own process (``python -m rpcgw.gsm.simulator``), N modems
    on TCP ports, each taking ``--accept-delay`` seconds to accept a submit (a modem's
    pace), with a control socket to read what the virtual network received;
  * ``rpcgw serve`` as its own process, with ``[[devices]]`` on those ports.

Phase 1 sends ``--per-modem`` messages pinned to each modem in turn (``device_id``) and
measures each modem's rate alone.  Phase 2 sends N × ``--per-modem`` unpinned messages
and measures the pool's rate, from the network's own timestamps.  It prints both, the
ratio to the sum of the single rates (goal: ≥ 0.95), and the gateway's CPU time per
message (utime + stime of its process, from /proc).

    python3 scripts/bench_pool.py [--modems 8] [--per-modem 60] [--accept-delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

import aiohttp

from rpcgw.gsm.simulator import control_request

PASSWORD = "bench-pool-password"
AUTH = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def rpc(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body, headers={"Authorization": AUTH}) as resp:
        answer = await resp.json(content_type=None)
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return answer["result"]


async def wait_sent(control: str, tag: str, count: int, timeout: float = 600) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = [r for r in await control_request(control, {"cmd": "traffic"})
                   if r["text"].startswith(tag)]
        if len(records) >= count:
            return records
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{tag}: not all {count} messages were sent in time")


def rate(records: list[Any]) -> float:
    times = sorted(r["first_at"] for r in records)
    return (len(times) - 1) / (times[-1] - times[0])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modems", type=int, default=8)
    parser.add_argument("--per-modem", type=int, default=60)
    parser.add_argument("--accept-delay", type=float, default=0.1,
                        help="seconds a simulated modem takes to accept one submit")
    parser.add_argument("--report-mode", choices=("store", "direct"), default="store",
                        help="status reports stored on the SIM (durable) or pushed (+CDS)")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="rpcgw-bench-pool-")
    control = os.path.join(work, "sim.sock")
    procs: list[asyncio.subprocess.Process] = []
    try:
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rpcgw.gsm.simulator", "--count", str(args.modems),
            "--transport", "tcp", "--control", control, "--delivery-delay", "0.05",
            "--accept-delay", str(args.accept_delay), "--json",
            stdout=asyncio.subprocess.PIPE)
        procs.append(sim)
        modems = [json.loads(await sim.stdout.readline()) for _ in range(args.modems)]
        with open(os.path.join(work, "rpcgw.toml"), "w") as f:
            for m in modems:
                f.write(f'[[devices]]\nname = "{m["name"]}"\nurl = "{m["url"]}"\n'
                        f'report_mode = "{args.report_mode}"\n')
        env = dict(os.environ, RPCGW_ADMIN_PASSWORD=PASSWORD, RPCGW_LOG_LEVEL="WARNING",
                   RPCGW_POOL_POLL_SECONDS="0.2")
        gw = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rpcgw.cli", "serve", "--port", "0", "--config",
            os.path.join(work, "rpcgw.toml"), "--database",
            f"sqlite:///{os.path.join(work, 'bench.db')}", env=env,
            stdout=asyncio.subprocess.PIPE)
        procs.append(gw)
        while True:
            line = (await gw.stdout.readline()).decode()
            if line.startswith("rpcgw listening on"):
                url = line.split(" on ", 1)[1].strip()
                break
        async with aiohttp.ClientSession() as session:
            while True:
                devices = await rpc(session, url, "devices.get_list")
                if len(devices) == args.modems and all(d["state"] == "online"
                                                       for d in devices):
                    break
                await asyncio.sleep(0.2)
            alone = []
            for device in devices:
                tag = f"alone {device['id']} "
                await rpc(session, url, "sms.send_batch", [
                    {"to": "+33612345678", "text": f"{tag}{i}",
                     "options": {"device_id": device["id"]}}
                    for i in range(args.per_modem)])
                alone.append(rate(await wait_sent(control, tag, args.per_modem)))
                print(f"modem {device['name']} alone: {alone[-1]:6.2f} msg/s", flush=True)
            total = args.modems * args.per_modem
            cpu_before = cpu_seconds(gw.pid)
            sim_before = cpu_seconds(sim.pid)
            started = time.monotonic()
            await rpc(session, url, "sms.send_batch", [
                {"to": "+33612345678", "text": f"pool {i}"} for i in range(total)])
            records = await wait_sent(control, "pool ", total)
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(gw.pid) - cpu_before
            sim_cpu = cpu_seconds(sim.pid) - sim_before
            pooled = rate(records)
            by_sim: dict[str, int] = {}
            for r in records:
                by_sim[r["sim_name"]] = by_sim.get(r["sim_name"], 0) + 1
        print()
        print(f"sum of {args.modems} modems alone   {sum(alone):8.2f} msg/s")
        print(f"the pool, all at once      {pooled:8.2f} msg/s   ratio {pooled / sum(alone):.3f}")
        print(f"messages per SIM           {sorted(by_sim.values())}")
        print(f"gateway CPU per message    {cpu / total * 1000:8.2f} ms "
              f"({cpu:.2f} s CPU for {total} messages in {elapsed:.1f} s wall)")
        print(f"simulator CPU per message  {sim_cpu / total * 1000:8.2f} ms")
        return 0
    finally:
        for proc in reversed(procs):
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except asyncio.TimeoutError:
                    proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
