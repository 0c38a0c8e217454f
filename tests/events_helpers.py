"""Helpers of the event-delivery tests: status changes and incoming messages produced
the way the modem pool produces them, and real HTTP receivers on loopback.

``advance`` and ``receive`` are the only way the tests make things happen to messages,
so that they can later drive simulated modems instead without touching the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from rpcgw import status as st
from rpcgw.models import Message, User, now_ms
from rpcgw.services import lifecycle
from rpcgw.services.lifecycle import Change
from rpcgw.services.messages import Incoming

#: Settings that make retries fast enough for tests.
FAST = {"webhook_retry_base_seconds": 0.05, "webhook_retry_max_delay_seconds": 0.2,
        "webhook_poll_seconds": 0.05, "webhook_timeout_seconds": 0.5,
        "webhook_connect_timeout_seconds": 0.5}


def _apply(gw: Any, ident: int, new_status: str, device_id: int, sim: int,
           error: str) -> None:
    """Writer thread: one status change, as the modem pool applies it."""
    row = Message.get_by_id(ident)
    now = now_ms()
    values: dict[str, Any] = {"status": new_status, "updated_at": now,
                              "result_info": st.RESULT_INFO[new_status],
                              "status_error": error}
    if new_status == st.SENDING:
        values.update(sent_device_id=row.device_id or device_id,
                      sent_sim=row.sim if row.sim is not None else sim)
    if new_status == st.SENT:
        values.update(sent_at=now, sent_device_id=row.sent_device_id or row.device_id
                      or device_id,
                      sent_sim=row.sent_sim if row.sent_sim is not None else sim)
    Message.update(**values).where(Message.id == ident).execute()
    lifecycle.record(gw.db, [Change(ident, row.user_id, row.direction, row.status,
                                    new_status, now, error)])


async def advance(gw: Any, sms_hash: str, *statuses: str, device_id: int = 1, sim: int = 0,
                  error: str = "") -> None:
    """Apply status changes to an outgoing message, one transaction each."""
    ident = gw.messages.codec.decode(sms_hash)
    assert ident is not None
    for new_status in statuses:
        await gw.db.write(_apply, gw, ident, new_status, device_id, sim, error)


async def receive(gw: Any, sender: str, sim_number: str, text: str, *, device_id: int = 1,
                  sim: int = 0, owner: str = "alice") -> str:
    """Store an incoming message as the modem pool does; returns its hash."""
    owner_id = await gw.db.read(lambda: User.get(User.login == owner).id)
    incoming = Incoming(device_id=device_id, sim=sim, owner_id=owner_id, sender=sender,
                        recipient=sim_number, text=text, encoding="GSM", parts=1,
                        sc_timestamp=time.time_ns() // 1000, received_at=now_ms())
    ident, _ = await gw.messages.store_incoming(incoming)
    return str(gw.messages.codec.encode(ident))


# -- receivers ---------------------------------------------------------------------------

NO_ANSWER = 0  # the request was abandoned before it was answered


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int

    def json(self) -> Any:
        import json
        return json.loads(self.body)


Behaviour = Callable[[int], Awaitable[int] | int]


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1 that records every request.

    ``behaviour(n)`` gives the status of the n-th request (0-based); it may be async
    (to answer slowly).  Requests answered 2xx are in ``delivered``.
    """

    behaviour: Behaviour = lambda n: 200
    hits: list[Hit] = field(default_factory=list)
    server: TestServer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    @property
    def delivered(self) -> list[Hit]:
        return [h for h in self.hits if 200 <= h.answered < 300]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hit = Hit(dict(request.headers), body, time.monotonic(), NO_ANSWER)
        n = len(self.hits)
        self.hits.append(hit)  # before answering: a slow answer may be abandoned
        outcome = self.behaviour(n)
        hit.answered = await outcome if not isinstance(outcome, int) else outcome
        self._changed.set()
        return web.Response(status=hit.answered, text="ok")

    async def wait(self, predicate: Callable[["Receiver"], bool],
                   timeout: float = 10.0) -> None:
        async def until() -> None:
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)

    async def wait_delivered(self, count: int, timeout: float = 10.0) -> list[Hit]:
        await self.wait(lambda r: len(r.delivered) >= count, timeout)
        return self.delivered


@contextlib.asynccontextmanager
async def receiver_pool() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    """A factory of started receivers, all closed on exit (a test's ``receivers``)."""
    started: list[TestServer] = []

    async def make(behaviour: Behaviour = lambda n: 200) -> Receiver:
        receiver = Receiver(behaviour)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        app.router.add_post("/other", receiver.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        receiver.server = server
        started.append(server)
        return receiver

    yield make
    for server in started:
        await server.close()


async def settle(gw: Any, timeout: float = 10.0) -> None:
    """Wait until no delivery is pending or in flight."""
    from rpcgw.events.models import IN_FLIGHT, PENDING, Delivery

    deadline = time.monotonic() + timeout
    while True:
        open_ = await gw.db.read(lambda: Delivery.select().where(
            Delivery.status.in_([PENDING, IN_FLIGHT])).count())
        if not open_:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{open_} deliveries still open")
        await asyncio.sleep(0.02)


class RunningGateway:
    """A gateway served on loopback that a test can stop (to restart on the same
    database) or run beside another one (several nodes)."""

    def __init__(self, database_url: str, **settings: Any) -> None:
        from .conftest import make_settings
        from rpcgw.app import create_app

        self.app = create_app(make_settings(database_url, **{**FAST, **settings}))
        self.server = TestServer(self.app, host="127.0.0.1")
        self.session: Any = None
        self.rpc: Any = None

    @property
    def gw(self) -> Any:
        from rpcgw.app import GATEWAY
        return self.app[GATEWAY]

    async def start(self, users: bool = True) -> "RunningGateway":
        import aiohttp

        from .conftest import RpcClient, add_users
        await self.server.start_server()
        if users:
            await add_users(self.app)
        self.session = aiohttp.ClientSession()
        self.rpc = RpcClient(self.session, str(self.server.make_url("/json-rpc/v1.1/")))
        return self

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        await self.server.close()


@contextlib.asynccontextmanager
async def gateway_pool() -> AsyncIterator[Callable[..., Awaitable[RunningGateway]]]:
    """A factory of RunningGateway, each stopped on exit if still up."""
    made: list[RunningGateway] = []

    async def make(database_url: str, *, users: bool = True,
                   **settings: Any) -> RunningGateway:
        running = RunningGateway(database_url, **settings)
        made.append(running)
        return await running.start(users)

    yield make
    for running in reversed(made):
        await running.stop()


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0,
                     interval: float = 0.03) -> Any:
    """Await ``check()`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def device_change(gw: Any, device_id: int, sim: int, old_state: str, new_state: str,
                        detail: str = "") -> None:
    """A SIM changes state, announced as the modem pool does (``record_device``)."""
    from rpcgw.models import Sim
    from rpcgw.services.lifecycle import DeviceChange

    def job() -> None:
        now = now_ms()
        Sim.update(state=new_state, state_detail=detail).where(
            Sim.device == device_id, Sim.slot == sim).execute()
        lifecycle.record_device(gw.db, [DeviceChange(device_id, sim, old_state, new_state,
                                                     now, detail)])

    await gw.db.write(job)


class NodeProcess:
    """Another gateway process (``rpcgw serve``) on the same database: a second node.

    Two gateways inside one Python process would share peewee's model binding, so a real
    second node runs in its own process.
    """

    def __init__(self, database_url: str, **settings: Any) -> None:
        import os
        import sys

        env = {k: v for k, v in os.environ.items() if not k.startswith("RPCGW_")}
        for name, value in {**FAST, "simulated_modems": 0, "sqlite_synchronous": "NORMAL",
                            **settings}.items():
            env[f"RPCGW_{name.upper()}"] = str(value)
        self.argv = [sys.executable, "-c",
                     "import sys; from rpcgw.cli import main; sys.exit(main(sys.argv[1:]))",
                     "serve", "--port", "0", "--allow-private-endpoints"]
        env["RPCGW_DATABASE_URL"] = database_url
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> "NodeProcess":
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        assert self.process.stdout is not None
        output = []
        while True:
            line = (await asyncio.wait_for(self.process.stdout.readline(), 30)).decode()
            if not line:
                raise AssertionError("rpcgw serve exited:\n" + "".join(output))
            output.append(line)
            if line.startswith("rpcgw listening on "):
                self.url = line.split()[-1]
                return self

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None


@contextlib.asynccontextmanager
async def node_pool() -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    """A factory of gateway processes, each stopped on exit."""
    started: list[NodeProcess] = []

    async def make(database_url: str, **settings: Any) -> NodeProcess:
        node = NodeProcess(database_url, **settings)
        started.append(node)
        return await node.start()

    yield make
    for node in started:
        await node.stop()
