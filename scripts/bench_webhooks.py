#!/usr/bin/env python3
"""Benchmark webhook delivery: deliveries per second, and the latency from an incoming
message reaching the gateway to its webhook arriving.

Runs, on this machine:
  * a receiver in its own process (aiohttp on uvloop, 127.0.0.1) that answers 200 and
    notes when each delivery arrives;
  * a gateway in this process (uvloop, as ``rpcgw serve`` runs) on a fresh database
    (SQLite file with synchronous=FULL by default, or ``--database postgresql://…``),
    with one ``sms.mo`` webhook subscribed to the receiver (signed with an HMAC secret).

Phase 1 (backlog): with delivery stopped, ``--messages`` incoming messages are stored
through ``MessageService.store_incoming`` (the modem pool's entry point); then a fresh
engine starts, as after a restart, and the clock runs until the last delivery arrives.
Phase 2 (live): ``--endpoints`` webhooks on distinct endpoints, and messages stored at
once while the engine runs; the clock runs from the first store to the last delivery.
Phase 3 (latency): ``--latency-messages`` messages arrive one by one at ``--rate`` per
second; each text carries the wall-clock time store_incoming was called, and the
receiver subtracts it from the time the delivery arrived (same machine, same clock).

    python3 scripts/bench_webhooks.py [--messages 5000] [--endpoints 4]
                                      [--latency-messages 1000] [--rate 100]
                                      [--database URL]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECEIVER = r"""
import sys, time, json
import uvloop
from aiohttp import web
arrivals = []          # (arrival wall time, sent wall time or 0)
async def hook(request):
    body = await request.read()
    now = time.time()
    text = json.loads(body)["data"]["text"]
    sent = float(text[2:]) if text.startswith("t=") else 0.0
    arrivals.append((now, sent))
    return web.Response(text="ok")
async def stats(request):
    return web.json_response(arrivals)
async def reset(request):
    arrivals.clear()
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/hook", hook)
app.router.add_post("/hook/{k}", hook)
app.router.add_get("/stats", stats)
app.router.add_post("/reset", reset)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> int:
    import aiohttp

    from rpcgw.auth import Principal
    from rpcgw.config import Settings
    from rpcgw.events import events_of
    from rpcgw.events.engine import DeliveryEngine
    from rpcgw.gateway import Gateway
    from rpcgw.models import now_ms
    from rpcgw.services import accounts
    from rpcgw.services.messages import Incoming

    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    tmp = tempfile.mkdtemp(prefix="rpcgw-bench-")
    url = args.database or f"sqlite:///{tmp}/bench.db"
    settings = Settings.load(environ={}, database_url=url, allow_private_endpoints=True,
                             simulated_modems=0, sqlite_synchronous=args.synchronous)
    gw = Gateway(settings)
    session = aiohttp.ClientSession()
    try:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/stats"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        await gw.start()
        user = await gw.db.write(accounts.create_user, "bench",
                                 accounts.prepare_password("bench-password-1"), False)
        principal = Principal(user_id=user.id, login="bench", is_admin=False,
                              method="basic")
        await events_of(gw).service.subscribe(principal, "sms.mo",
                                              f"http://127.0.0.1:{port}/hook",
                                              {"hmac_secret": "bench-secret"})
        counter = iter(range(10**9))

        def incoming(text: str) -> Incoming:
            return Incoming(device_id=1, sim=0, owner_id=user.id,
                            sender=f"+3361{next(counter):07d}", recipient="+33700000001",
                            text=text, encoding="GSM", parts=1, sc_timestamp=now_ms())

        async def arrived() -> list[list[float]]:
            async with session.get(f"http://127.0.0.1:{port}/stats") as response:
                return list(await response.json())

        async def reset() -> None:
            async with session.post(f"http://127.0.0.1:{port}/reset"):
                pass

        async def wait_for(count: int, timeout: float = 300) -> list[list[float]]:
            deadline = time.monotonic() + timeout
            while True:
                found = await arrived()
                if len(found) >= count:
                    return found
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {len(found)} of {count} deliveries arrived")
                await asyncio.sleep(0.05)

        # -- phase 1: a backlog drained by a (re)starting engine ----------------------
        component = events_of(gw)
        await component.engine.stop()
        n = args.messages
        await asyncio.gather(*(gw.messages.store_incoming(incoming(f"m{i}"))
                               for i in range(n)))
        engine = DeliveryEngine(gw.db, gw.settings, component.engine.box,
                                component.engine.codec, component.outbox.invalidate)
        component.engine = engine
        component.outbox.on_new = engine.wake_threadsafe
        started = time.time()
        await engine.start()
        found = await wait_for(n)
        last = max(a for a, _ in found)
        print(f"backlog: {n} deliveries waiting, drained by a starting engine")
        print(f"  {n / (last - started):8.0f} deliveries/s ({last - started:.2f} s)")
        await reset()

        # -- phase 2: live traffic, fanned out to several endpoints ------------------
        for k in range(1, args.endpoints):
            await component.service.subscribe(principal, "sms.mo",
                                              f"http://127.0.0.1:{port}/hook/{k}", None)
        live = args.messages // args.endpoints
        total = live * args.endpoints
        started = time.time()
        await asyncio.gather(*(gw.messages.store_incoming(incoming(f"m{i}"))
                               for i in range(live)))
        stored = time.time()
        found = await wait_for(total)
        last = max(a for a, _ in found)
        print(f"live: {live} incoming messages x {args.endpoints} webhooks = {total} "
              "deliveries")
        print(f"  {total / (last - started):8.0f} deliveries/s end to end "
              f"({last - started:.2f} s; storing the messages took {stored - started:.2f} s)")
        await reset()
        for k in range(1, args.endpoints):
            hooks = await component.service.list_webhooks(principal)
            await component.service.unsubscribe(principal, hooks[-1]["hash"])

        # -- phase 3: latency --------------------------------------------------------
        m = args.latency_messages
        interval = 1.0 / args.rate
        tick = time.monotonic()
        pending = []
        for _ in range(m):
            pending.append(asyncio.ensure_future(
                gw.messages.store_incoming(incoming(f"t={time.time():.6f}"))))
            tick += interval
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
        await asyncio.gather(*pending)
        found = await wait_for(m)
        latencies = [(a - s) * 1000 for a, s in found if s]
        print(f"latency: {m} messages at {args.rate:g}/s, store_incoming -> webhook arrival")
        print(f"  p50 {percentile(latencies, 0.50):6.1f} ms   "
              f"p90 {percentile(latencies, 0.90):6.1f} ms   "
              f"p99 {percentile(latencies, 0.99):6.1f} ms   "
              f"max {max(latencies):6.1f} ms   mean {statistics.mean(latencies):6.1f} ms")
        print(f"database: {url.split('://')[0]}"
              f"{' synchronous=' + args.synchronous if url.startswith('sqlite') else ''}, "
              f"{os.cpu_count()} CPUs")
        return 0
    finally:
        await session.close()
        if gw.components or gw.db._writer is not None:
            await gw.stop()
        receiver.terminate()
        receiver.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--endpoints", type=int, default=4,
                        help="webhooks (distinct endpoints) in the live phase")
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--synchronous", default="FULL", help="SQLite synchronous pragma")
    import uvloop
    sys.exit(uvloop.run(main(parser.parse_args())))
