#!/usr/bin/env python3
"""Benchmark contact imports and campaign queuing at 10,000 rows.

Starts ``rpcgw serve`` (no modems, so only the gateway's own work is measured) on a
fresh SQLite file (synchronous=FULL, as deployed) or on ``--database URL``, then times:

  * ``contacts.import`` of 10,000 new contacts in one JSON-RPC call, then the same
    10,000 numbers into a second list (the "updated" path);
  * ``rpcgw contacts import`` of a 10,000-row CSV file (a separate process);
  * a campaign to 10,000 contacts, from ``campaigns.create`` until all its messages are
    queued (status ``sending``), while single ``sms.send`` calls go on every 20 ms: their
    worst latency shows what the campaign costs everybody else.

    python3 scripts/bench_contacts.py [--rows 10000] [--rounds 3] [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

PASSWORD = "bench-password-1"
AUTH = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


async def call(session: aiohttp.ClientSession, url: str, method: str, *params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    async with session.post(url, json=body, headers={"Authorization": AUTH}) as resp:
        answer = await resp.json(content_type=None)
    if "error" in answer:
        raise RuntimeError(f"{method}: {answer['error']}")
    return answer["result"]


async def start_gateway(database_url: str) -> tuple[asyncio.subprocess.Process, str]:
    env = dict(os.environ, RPCGW_ADMIN_PASSWORD=PASSWORD, RPCGW_LOG_LEVEL="WARNING",
               RPCGW_SIMULATED_MODEMS="0", RPCGW_DATABASE_URL=database_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", "serve", "--port", "0", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        if not line:
            raise RuntimeError("rpcgw serve ended before listening")
        if line.startswith("rpcgw listening on "):
            return proc, line.split(" on ", 1)[1].strip()


def rows_for(count: int, prefix: str) -> list[dict[str, Any]]:
    return [{"phone": f"+33{prefix}{i:07d}", "fullname": f"Contact {i}",
             "fields": {"code": f"{i:05d}"}} for i in range(count)]


async def bench_api_import(session: aiohttp.ClientSession, url: str, rows: int,
                           round_no: int) -> tuple[float, float]:
    data = rows_for(rows, f"6{round_no}")
    first = (await call(session, url, "contacts.lists.create", f"new {round_no}"))["id"]
    second = (await call(session, url, "contacts.lists.create", f"again {round_no}"))["id"]
    start = time.perf_counter()
    result = await call(session, url, "contacts.import", first, data)
    fresh = time.perf_counter() - start
    assert result["added"] == rows, result["added"]
    start = time.perf_counter()
    result = await call(session, url, "contacts.import", second, data)
    again = time.perf_counter() - start
    assert result["updated"] == rows, result["updated"]
    return fresh, again


async def bench_cli_import(database_url: str, rows: int, round_no: int, tmp: Path) -> float:
    path = tmp / f"contacts{round_no}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["phone", "fullname", "code"])
        for row in rows_for(rows, f"7{round_no}"):
            writer.writerow([row["phone"], row["fullname"], row["fields"]["code"]])
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpcgw.cli", "contacts", "import", str(path), "--list",
        f"csv {round_no}", "--user", "admin", "--database", database_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0 and f"{rows} added" in out.decode(), out
    return elapsed


async def bench_campaign(session: aiohttp.ClientSession, url: str,
                         round_no: int) -> tuple[float, int, float]:
    lists = await call(session, url, "contacts.lists.get_list")
    list_id = next(x["id"] for x in lists if x["title"] == f"new {round_no}")
    latencies: list[float] = []
    stop = asyncio.Event()

    async def single_sends() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await call(session, url, "sms.send", "", "+33611111111", "OTP 123456", None)
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)

    sender = asyncio.create_task(single_sends())
    start = time.perf_counter()
    created = await call(session, url, "campaigns.create", {
        "title": f"bench {round_no}", "body": "Hello {fullname}, code {code}",
        "lists": [list_id]})
    while True:
        campaign = await call(session, url, "campaigns.get", created["id"])
        if campaign["status"] == "sending":
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    await sender
    return elapsed, campaign["progress"]["queued"], max(latencies)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rpcgw-bench-") as tmpdir:
        tmp = Path(tmpdir)
        database_url = args.database or f"sqlite:///{tmp}/bench.db"
        proc, url = await start_gateway(database_url)
        results: dict[str, list[float]] = {k: [] for k in (
            "api import (new)", "api import (existing)", "cli import (new)",
            "campaign queued", "sms.send worst latency during it")}
        try:
            async with aiohttp.ClientSession() as session:
                for round_no in range(args.rounds):
                    fresh, again = await bench_api_import(session, url, args.rows, round_no)
                    cli = await bench_cli_import(database_url, args.rows, round_no, tmp)
                    queued_s, queued, worst = await bench_campaign(session, url, round_no)
                    assert queued == args.rows, queued
                    for key, value in zip(results, (fresh, again, cli, queued_s, worst)):
                        results[key].append(value)
                    print(f"round {round_no + 1}: api import {fresh:.2f}s new, {again:.2f}s "
                          f"existing; cli import {cli:.2f}s; campaign queued in "
                          f"{queued_s:.2f}s; worst sms.send {worst * 1000:.0f} ms", flush=True)
        finally:
            proc.terminate()
            await proc.wait()
    backend = "PostgreSQL" if database_url.startswith("postgres") else "SQLite (FULL)"
    print(f"\n{args.rows} rows, {args.rounds} rounds, {backend}; medians:")
    for key, values in results.items():
        median = statistics.median(values)
        unit = f"{median * 1000:.0f} ms" if "latency" in key else \
            f"{median:.2f} s ({args.rows / median:,.0f} rows/s)"
        print(f"  {key:<34} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
