"""Shared fixtures: real databases (SQLite file, PostgreSQL server) and a real gateway.

Every test that takes ``database_url`` runs twice: on a SQLite file and on a PostgreSQL
server that this file starts on a loopback port (``initdb`` + ``pg_ctl``, from the
``postgresql`` Debian package that ``.ci/run`` installs) and stops at the end.
"""

from __future__ import annotations

import base64
import glob
import itertools
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Iterator

import aiohttp
import pytest

from rpcgw.app import GATEWAY, create_app
from rpcgw.config import Settings

ADMIN = ("admin", "admin-password-1")
ALICE = ("alice", "alice-password-1")
BOB = ("bob", "bob-password-12")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No RPCGW_* variable from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("RPCGW_"):
            monkeypatch.delenv(key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- PostgreSQL ------------------------------------------------------------------------

class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1, run as the ``postgres`` user."""

    def __init__(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql); "
                               ".ci/run installs it")
        self.bindir = os.path.dirname(candidates[-1])
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="rpcgw-pg-")
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        self.counter = itertools.count(1)

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.dir, self.user)
        data = os.path.join(self.dir, "data")
        self._run(f"{self.bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8")
        self._run(f"{self.bindir}/pg_ctl", "-D", data, "-w", "-t", "60", "-l",
                  os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c full_page_writes=off -c max_connections=400",
                  "start")

    def stop(self) -> None:
        try:
            self._run(f"{self.bindir}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m",
                      "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def new_database(self) -> str:
        import psycopg2
        name = f"rpcgw_test_{next(self.counter)}"
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        conn.close()
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/rpcgw.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/rpcgw.db"


# -- a running gateway -----------------------------------------------------------------

def basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


class RpcClient:
    """Posts raw JSON-RPC to a live gateway; keeps the HTTP answer for assertions."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.counter = itertools.count(1)
        self.auth = basic(*ALICE)

    async def post(self, payload: Any, *, auth: str | None = "default",
                   headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        hdrs = {"Content-Type": "application/json-rpc; charset=utf-8"}
        if auth == "default":
            auth = self.auth
        if auth is not None:
            hdrs["Authorization"] = auth
        hdrs.update(headers or {})
        data = raw if raw is not None else json.dumps(payload).encode()
        async with self.session.post(self.url, data=data, headers=hdrs) as resp:
            body = await resp.read()
            parsed = json.loads(body) if body else None
            return resp.status, parsed, resp

    async def call(self, method: str, *params: Any, auth: str | None = "default",
                   headers: dict[str, str] | None = None) -> Any:
        """Return ``result``; raise AssertionError carrying the error otherwise."""
        rid = next(self.counter)
        status, body, _ = await self.post(
            {"jsonrpc": "2.0", "id": rid, "method": method, "params": list(params)},
            auth=auth, headers=headers)
        assert status == 200, (status, body)
        assert body["id"] == rid
        if "error" in body:
            raise RpcError(body["error"])
        return body["result"]

    async def error(self, method: str, *params: Any, **kw: Any) -> dict[str, Any]:
        try:
            result = await self.call(method, *params, **kw)
        except RpcError as exc:
            return exc.error
        raise AssertionError(f"{method} succeeded with {result!r}; an error was expected")


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error)
        self.error = error


def make_settings(database_url: str, extra: dict[str, Any] | None = None,
                  **overrides: Any) -> Settings:
    """Test settings: no modems unless asked, private endpoints allowed (loopback
    receivers), and ``extra`` for the configuration tables ([[devices]], [simulator])."""
    values = {"database_url": database_url, "sqlite_synchronous": "NORMAL",
              "allow_private_endpoints": True, "simulated_modems": 0}
    values.update(overrides)
    settings = Settings.load(environ={}, **values)
    return Settings(settings.values, dict(extra or {}))


_HASHES: dict[str, str] = {}


def password_hash(password: str) -> str:
    """scrypt costs ~50 ms; hash each test password once per run."""
    from rpcgw.services import accounts
    if password not in _HASHES:
        _HASHES[password] = accounts.prepare_password(password)
    return _HASHES[password]


async def add_users(app: Any) -> None:
    from rpcgw.services import accounts
    gw = app[GATEWAY]
    for (login, password), admin in ((ADMIN, True), (ALICE, False), (BOB, False)):
        await gw.db.write(accounts.create_user, login, password_hash(password), admin)


@pytest.fixture
async def gateway_factory(aiohttp_server: Any) -> Any:
    """Start a gateway on a loopback port; returns (app, RpcClient)."""
    sessions: list[aiohttp.ClientSession] = []

    async def start(database_url: str, extra: dict[str, Any] | None = None,
                    **overrides: Any) -> tuple[Any, RpcClient]:
        app = create_app(make_settings(database_url, extra, **overrides))
        server = await aiohttp_server(app)
        await add_users(app)
        session = aiohttp.ClientSession()
        sessions.append(session)
        return app, RpcClient(session, str(server.make_url("/json-rpc/v1.1/")))

    yield start
    for s in sessions:
        await s.close()


@pytest.fixture
async def rpc(gateway_factory: Any, database_url: str) -> RpcClient:
    _, client = await gateway_factory(database_url)
    return client


@pytest.fixture
async def gw_rpc(gateway_factory: Any, database_url: str) -> tuple[Any, RpcClient]:
    app, client = await gateway_factory(database_url)
    return app[GATEWAY], client


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


@pytest.fixture
async def receivers() -> Any:
    """A factory of HTTP receivers on loopback that record what they get (events tests);
    every receiver is closed at the end of the test."""
    from .events_helpers import receiver_pool
    async with receiver_pool() as make:
        yield make
