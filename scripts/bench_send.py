#!/usr/bin/env python3
"""Benchmark sms.send acceptance against a bare aiohttp endpoint on the same machine.

Starts, on loopback ports:
  * ``rpcgw serve`` on a fresh SQLite file (synchronous=FULL: every acknowledged message
    is fsynced first) with no modems, so only acceptance is measured;
  * a bare aiohttp server answering every POST with a fixed JSON-RPC result, twice: on
    asyncio's own event loop (the reference the goals are stated against) and on uvloop
    (the loop rpcgw itself runs on, so the ratio that isolates rpcgw's own cost).
Then runs wrk (Debian package ``wrk``) against each, interleaved, for several rounds:
  * single ``sms.send`` calls with HTTP Basic login/password on every call, as CALLR's
    SDKs send them;
  * JSON-RPC batches of 100 ``sms.send`` calls.
It prints requests/s, messages/s, latency percentiles and the server's CPU time a message
(from /proc, every process of the gateway) per run, the medians and the ratio to the bare
endpoint, and checks that the database holds at least as many messages
as wrk counted answers (nothing acknowledged was lost).

    python3 scripts/bench_send.py [--duration 10] [--rounds 3] [--connections 64]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench-password-1"
BARE_SERVER = r"""
import sys
from aiohttp import web
BODY = b'{"jsonrpc":"2.0","id":1,"result":"8242D945"}'
async def handle(request):
    await request.read()
    return web.Response(body=BODY, content_type="application/json-rpc")
app = web.Application()
app.router.add_post("/json-rpc/v1.1/", handle)
if sys.argv[2] == "uvloop":
    import uvloop
    uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def lua_script(path: str, body: str, auth: str) -> None:
    """A wrk script posting ``body`` with every ``@TO@`` replaced by a new number, so
    that each message goes to another recipient (as real traffic does: the number
    parser's cache does not hide its cost)."""
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/json-rpc; charset=utf-8"\n')
        f.write(f'wrk.headers["Authorization"] = "{auth}"\n')
        f.write(f"local template = {json.dumps(body)}\n")
        f.write("local n = 0\n"
                "local function number()\n"
                "  n = n + 1\n"
                '  return string.format("+336%08d", n % 100000000)\n'
                "end\n"
                "request = function()\n"
                '  return wrk.format(nil, nil, nil, (template:gsub("@TO@", number)))\n'
                "end\n")


def run_wrk(url: str, script: str, duration: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url],
        check=True, capture_output=True, text=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
              "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = int(non2xx.group(1)) if non2xx else 0
    for pct in ("50", "99"):
        m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out)
        value = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        result[f"p{pct}"] = value
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the --workers processes)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def count_messages(database_url: str, db_path: str) -> int:
    if database_url.startswith("sqlite"):
        return sqlite3.connect(db_path).execute("SELECT count(*) FROM message").fetchone()[0]
    import psycopg2
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM message")
        return cur.fetchone()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--database", metavar="URL",
                        help="postgresql://... to measure PostgreSQL (default: a new SQLite "
                             "file); the database should be empty")
    parser.add_argument("--workers", type=int, default=1,
                        help="rpcgw serve --workers (API processes sharing the port)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix="rpcgw-bench-")
    db_path = os.path.join(work, "bench.db")
    gw_port, bare_port, uv_port = free_port(), free_port(), free_port()
    env = dict(os.environ, RPCGW_ADMIN_PASSWORD=PASSWORD, RPCGW_SIMULATED_MODEMS="0",
               RPCGW_LOG_LEVEL="WARNING")
    rpcgw = [sys.executable, "-m", "rpcgw.cli"]
    database_url = args.database or f"sqlite:///{db_path}"
    gateway = subprocess.Popen(rpcgw + ["serve", "--port", str(gw_port), "--database",
                                        database_url, "--workers",
                                        str(args.workers)], env=env,
                               stdout=subprocess.DEVNULL)
    bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port), "asyncio"])
    bare_uv = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(uv_port), "uvloop"])
    procs = [gateway, bare, bare_uv]
    try:
        wait_port(gw_port)
        wait_port(bare_port)
        wait_port(uv_port)
        auth = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        send = {"jsonrpc": "2.0", "id": 1, "method": "sms.send",
                "params": ["", "@TO@", "Your code is 123456", None]}
        single = os.path.join(work, "single.lua")
        lua_script(single, json.dumps(send), auth)
        batch = os.path.join(work, "batch.lua")
        lua_script(batch, json.dumps([dict(send, id=i) for i in range(args.batch)]), auth)
        gw_url = f"http://127.0.0.1:{gw_port}/json-rpc/v1.1/"
        bare_url = f"http://127.0.0.1:{bare_port}/json-rpc/v1.1/"
        uv_url = f"http://127.0.0.1:{uv_port}/json-rpc/v1.1/"
        # warm-up: credential cache, page cache, the bare server's first connections
        answered = run_wrk(gw_url, single, 2, args.connections)["requests"]
        run_wrk(bare_url, single, 2, args.connections)
        run_wrk(uv_url, single, 2, args.connections)
        rows: dict[str, list[dict[str, float]]] = {"bare": [], "bare-uv": [], "send": [],
                                                   "batch": []}
        for r in range(args.rounds):
            for name, url, script in (("bare", bare_url, single), ("send", gw_url, single),
                                      ("bare-uv", uv_url, single), ("batch", gw_url, batch)):
                server = {"bare": bare, "bare-uv": bare_uv}.get(name, gateway).pid
                cpu = cpu_seconds(server)
                res = run_wrk(url, script, args.duration, args.connections)
                # CPU a request (a send; a batch of 100 counts as 100) in the server.
                res["cpu_us"] = (cpu_seconds(server) - cpu) * 1e6 / max(
                    1, res["requests"] * (args.batch if name == "batch" else 1))
                rows[name].append(res)
                if name in ("send", "batch"):
                    answered += res["requests"] * (args.batch if name == "batch" else 1)
                print(f"round {r + 1} {name:7s} {res['rps']:9.0f} req/s  p50 {res['p50']:7.2f} ms"
                      f"  p99 {res['p99']:7.2f} ms  non-2xx {res['errors']}"
                      f"  server CPU {res['cpu_us']:4.0f} us/msg", flush=True)
        stored = count_messages(database_url, db_path)
        med = {k: statistics.median(x["rps"] for x in v) for k, v in rows.items()}
        print()
        print(f"bare aiohttp (asyncio)     {med['bare']:9.0f} req/s (median of {args.rounds})")
        print(f"bare aiohttp (uvloop)      {med['bare-uv']:9.0f} req/s")
        print(f"sms.send, Basic auth       {med['send']:9.0f} sends/s   ratio to bare "
              f"{med['send'] / med['bare']:.2f} (uvloop: {med['send'] / med['bare-uv']:.2f})   p50 "
              f"{statistics.median(x['p50'] for x in rows['send']):.2f} ms  p99 "
              f"{statistics.median(x['p99'] for x in rows['send']):.2f} ms")
        print(f"batches of {args.batch:<3d} sms.send    {med['batch'] * args.batch:9.0f} msgs/s"
              f"    ({med['batch']:.0f} batches/s)")
        cpu = {k: statistics.median(x["cpu_us"] for x in v) for k, v in rows.items()}
        print(f"server CPU a message (median): bare {cpu['bare']:.0f} us, bare-uv "
              f"{cpu['bare-uv']:.0f} us, send {cpu['send']:.0f} us, in batches "
              f"{cpu['batch']:.0f} us (all processes of the gateway)")
        print(f"messages stored {stored}, answers counted by wrk {answered}: "
              f"{'OK' if stored >= answered else 'LOST MESSAGES'}")
        return 0 if stored >= answered else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
