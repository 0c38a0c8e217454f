"""Serving simulated modems on ptys or TCP ports, in the caller's event loop.

:class:`SimulatorHost` owns one :class:`SimulatedModem` per configuration.  Each couples a
sans-IO :class:`~rpcgw.gsm.simulator.engine.ModemEngine` to an endpoint:

* **pty**: ``os.openpty()``; the slave is put in raw mode and *kept open* by the simulator
  (otherwise reads on the master fail with EIO whenever no client holds the slave, modem.md
  §4.1) and a stable symlink points at it.  Any program that opens a serial device (pyserial,
  gammu, smstools) can use the link.
* **tcp**: a listening socket on 127.0.0.1 for pyserial's ``socket://`` URL; one client at a
  time (a new connection replaces the old one, like a re-plugged cable).

Reading is event driven (``loop.add_reader`` / asyncio streams) and the writer task sleeps on
an :class:`asyncio.Event` until the engine has output: an idle simulated modem costs no CPU.

A *hang-up* closes the endpoint (pty master and slave closed, symlink removed; or the TCP
client and listener closed), optionally power-cycles the modem, and brings it back after
``down_for`` seconds (a new pty behind the same symlink, or the same TCP port).

The control socket (``--control PATH``) speaks JSON lines: one request object per line,
answered by ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``; see
:meth:`SimulatorHost.handle_request` for the commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import tempfile
import tty
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from rpcgw.gsm.simulator.engine import CmsFault, ModemEngine, SimModemConfig, WedgeFault
from rpcgw.gsm.simulator.network import Rule, UnknownNumber, VirtualNetwork

__all__ = [
    "FAULT_KINDS",
    "SimulatedModem",
    "SimulatedModemInfo",
    "SimulatorHost",
    "control_request",
    "luhn",
    "make_configs",
    "parse_fault",
]

log = logging.getLogger("rpcgw.gsm.simulator")

FAULT_KINDS = ("slow", "wedge", "cms-error", "garbage", "hangup", "urc-storm", "pin")
#: How long a write waits for a client to drain the port before the bytes are dropped.
WRITE_STALL = 0.5


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def luhn(digits: str) -> str:
    """``digits`` with its Luhn check digit appended (IMEI, ICCID)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return digits + str((10 - total % 10) % 10)


def make_configs(
    count: int,
    *,
    first_number: str = "+15550001000",
    numbers: Sequence[str] | None = None,
    pin: str | None = None,
    accept_delay: float = 0.05,
    **overrides: Any,
) -> list[SimModemConfig]:
    """Configurations for ``count`` modems: ``sim0``..., numbers ``+1555000100N``..."""
    configs = []
    base = int(first_number.lstrip("+"))
    for i in range(count):
        number = numbers[i] if numbers and i < len(numbers) else f"+{base + i}"
        configs.append(
            SimModemConfig(
                name=f"sim{i}",
                number=number,
                imei=luhn(f"35000000{i:06d}"),
                imsi=f"00101{i + 1:010d}",
                iccid=luhn(f"890141032111185{i:04d}"),
                pin=pin,
                accept_delay=accept_delay,
                **overrides,
            )
        )
    return configs


def parse_fault(spec: str) -> tuple[str | None, str, dict[str, Any]]:
    """Parse ``[MODEM=]KIND[:key=value,...]`` (the CLI's ``--fault``)."""
    target: str | None = None
    head, _, params_text = spec.partition(":")
    if "=" in head:
        target, head = head.split("=", 1)
    kind = head.strip()
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r} (one of {', '.join(FAULT_KINDS)})")
    params: dict[str, Any] = {}
    for item in filter(None, params_text.split(",")):
        key, _, value = item.partition("=")
        params[key.strip().replace("-", "_")] = _literal(value.strip())
    return target, kind, params


def _literal(value: str) -> Any:
    lowered = value.lower()
    if lowered in ("true", "yes"):
        return True
    if lowered in ("false", "no"):
        return False
    if lowered in ("none", "null", ""):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


@dataclass(frozen=True)
class SimulatedModemInfo:
    """How to reach one simulated modem, as :meth:`SimulatorHost.start` reports it."""

    name: str
    number: str
    imei: str
    imsi: str
    iccid: str
    #: A pyserial URL: the pty symlink path, or ``socket://127.0.0.1:PORT``.
    url: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _PtyEndpoint:
    """A pty whose slave side is what clients open (through a stable symlink)."""

    def __init__(self, link: str, on_data: Callable[[bytes], None]) -> None:
        self.link = link
        self._on_data = on_data
        self._master: int | None = None
        self._slave: int | None = None
        self._loop = asyncio.get_running_loop()

    @property
    def url(self) -> str:
        return self.link

    async def start(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._loop.add_reader(master, self._on_readable)
        temporary = f"{self.link}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        os.symlink(os.ttyname(slave), temporary)
        os.replace(temporary, self.link)

    def _on_readable(self) -> None:
        if self._master is None:
            return
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # EIO cannot happen while we hold the slave; treat anything else as a hang-up.
            self._close_fds()
            return
        if data:
            self._on_data(data)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._master is not None:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                written = 0
            except OSError:
                return
            view = view[written:]
            if view and not await self._writable():
                log.debug("%s: nobody reads the pty, %d bytes dropped", self.link, len(view))
                return

    async def _writable(self) -> bool:
        master = self._master
        if master is None:
            return False
        ready = self._loop.create_future()
        self._loop.add_writer(master, _resolve, ready)
        try:
            async with asyncio.timeout(WRITE_STALL):
                await ready
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            if self._master == master:
                self._loop.remove_writer(master)

    def _close_fds(self) -> None:
        if self._master is not None:
            self._loop.remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    async def stop(self) -> None:
        self._close_fds()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link)


class _TcpEndpoint:
    """A loopback TCP listener for ``socket://`` clients, one client at a time."""

    def __init__(self, host: str, port: int, on_data: Callable[[bytes], None]) -> None:
        self.host = host
        self.port = port
        self._on_data = on_data
        self._server: asyncio.base_events.Server | None = None
        self._client: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._client is not None:
            self._client.close()
        self._client = writer
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                self._on_data(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            if self._client is writer:
                self._client = None
            writer.close()

    async def write(self, data: bytes) -> None:
        client = self._client
        if client is None or client.is_closing():
            return
        client.write(data)
        try:
            async with asyncio.timeout(WRITE_STALL):
                await client.drain()
        except (asyncio.TimeoutError, ConnectionError, OSError):
            client.close()

    async def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None


class SimulatedModem:
    """One simulated modem: its engine, its endpoint and its fault controls."""

    def __init__(
        self,
        engine: ModemEngine,
        endpoint_factory: Callable[[Callable[[bytes], None]], _PtyEndpoint | _TcpEndpoint],
    ) -> None:
        self.engine = engine
        self.endpoint = endpoint_factory(self._feed)
        self._wake = asyncio.Event()
        engine.on_output = self._wake.set
        self._writer: asyncio.Task[None] | None = None
        self._storm: asyncio.Task[None] | None = None
        self._hangup: asyncio.Task[None] | None = None
        self.down = False

    @property
    def name(self) -> str:
        return self.engine.config.name

    @property
    def info(self) -> SimulatedModemInfo:
        config = self.engine.config
        return SimulatedModemInfo(config.name, config.number, config.imei, config.imsi,
                                  config.iccid, self.endpoint.url)

    async def start(self) -> None:
        await self.endpoint.start()
        self._writer = asyncio.create_task(self._write_loop(), name=f"sim-writer {self.name}")

    async def stop(self) -> None:
        for task in (self._writer, self._storm, self._hangup):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._writer = self._storm = self._hangup = None
        await self.endpoint.stop()

    async def _write_loop(self) -> None:
        """Write the engine's outbox in order; pauses model slow answers and pacing."""
        outbox = self.engine.outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                item = outbox.popleft()
                if isinstance(item, float):
                    await asyncio.sleep(item)
                    continue
                chunk = bytearray(item)
                while outbox and isinstance(outbox[0], bytes):
                    following = outbox.popleft()
                    assert isinstance(following, bytes)
                    chunk += following
                if not self.down:
                    await self.endpoint.write(bytes(chunk))

    def _feed(self, data: bytes) -> None:
        if not self.down:
            self.engine.feed(data)

    # ----------------------------------------------------------------- faults

    def set_fault(self, kind: str, **params: Any) -> None:
        """Switch on a fault (see ``FAULT_KINDS`` and docs/gsm.md for the parameters)."""
        faults = self.engine.faults
        if kind == "slow":
            faults.delay = float(params.get("delay", 2.0))
        elif kind == "wedge":
            self.engine.set_wedge(WedgeFault(
                trigger=params.get("trigger", "now"),
                until=params.get("until", "power"),
                deliver=bool(params.get("deliver", True)),
                duration=params.get("duration"),
            ))
        elif kind == "cms-error":
            faults.cms = CmsFault(code=int(params.get("code", 38)), count=params.get("count"),
                                  probability=float(params.get("probability", 1.0)))
        elif kind == "garbage":
            faults.garbage = float(params.get("probability", 0.5))
        elif kind == "urc-storm":
            faults.urc_storm = float(params.get("rate", 50.0))
            if self._storm is None or self._storm.done():
                self._storm = asyncio.create_task(self._storm_loop(), name=f"storm {self.name}")
        elif kind == "pin":
            self.engine.lock_sim(str(params.get("pin", "1234")))
        elif kind == "hangup":
            if self._hangup is None or self._hangup.done():
                self._hangup = asyncio.create_task(
                    self.hangup(float(params.get("down_for", 1.0)),
                                power_cycle=bool(params.get("power_cycle", True))),
                    name=f"hangup {self.name}",
                )
        else:
            raise ValueError(f"unknown fault {kind!r}")

    def clear_fault(self, kind: str | None = None) -> None:
        """Switch off one fault, or all of them (a PIN lock is lifted too)."""
        faults = self.engine.faults
        if kind in (None, "slow"):
            faults.delay = 0.0
        if kind in (None, "wedge"):
            self.engine.set_wedge(None)
        if kind in (None, "cms-error"):
            faults.cms = None
        if kind in (None, "garbage"):
            faults.garbage = 0.0
        if kind in (None, "urc-storm"):
            faults.urc_storm = 0.0
        if kind in (None, "pin") and self.engine.config.pin:
            self.engine.config.pin = None
            self.engine.sim_state = "READY"

    async def _storm_loop(self) -> None:
        """Unsolicited-result storm: ``^RSSI``/``+CREG``/``+CSQ`` URCs at ``rate`` per second."""
        rng = self.engine.rng
        while self.engine.faults.urc_storm > 0:
            rate = self.engine.faults.urc_storm
            tick = max(0.02, 1.0 / rate)
            for _ in range(max(1, round(rate * tick))):
                choice = rng.randrange(3)
                if choice == 0:
                    self.engine.urc(f"^RSSI: {rng.randint(5, 31)}")
                elif choice == 1:
                    self.engine.urc(f"+CREG: {rng.choice((1, 1, 5, 2))}")
                else:
                    self.engine.urc(f"+CIEV: 2,{rng.randint(0, 5)}")
            await asyncio.sleep(tick)

    async def hangup(self, down_for: float = 1.0, *, power_cycle: bool = True) -> None:
        """Close the port (the client sees EOF/EIO) and bring it back after ``down_for``."""
        log.info("%s: hang-up for %.1fs", self.name, down_for)
        self.down = True
        await self.endpoint.stop()
        self.engine.outbox.clear()
        await asyncio.sleep(down_for)
        if power_cycle:
            self.engine.power_cycle()
        await self.endpoint.start()
        self.down = False
        self._wake.set()

    def power_cycle(self) -> None:
        """Power the modem off and on (clears a wedge; the SIM asks for its PIN again)."""
        self.engine.power_cycle()


class SimulatorHost:
    """Runs simulated modems in the current event loop.

    ``transport`` is ``"pty"`` (links in ``pty_dir``, a temporary directory by default) or
    ``"tcp"`` (ports from ``tcp_base_port``, 0 = any free port).  ``faults`` maps a modem
    name (or ``"*"``) to ``(kind, params)`` pairs switched on at start.
    """

    def __init__(
        self,
        network: VirtualNetwork,
        configs: Sequence[SimModemConfig],
        *,
        transport: str = "pty",
        pty_dir: str | None = None,
        tcp_host: str = "127.0.0.1",
        tcp_base_port: int = 0,
        control_path: str | None = None,
        faults: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] | None = None,
        seed: int | None = None,
    ) -> None:
        if transport not in ("pty", "tcp"):
            raise ValueError("transport must be 'pty' or 'tcp'")
        self.network = network
        self.configs = [replace(config) for config in configs]
        self.transport = transport
        self.pty_dir = pty_dir
        self.tcp_host = tcp_host
        self.tcp_base_port = tcp_base_port
        self.control_path = control_path
        self.faults = dict(faults or {})
        self.seed = seed
        self.modems: dict[str, SimulatedModem] = {}
        self._own_dir = False
        self._control: asyncio.base_events.Server | None = None
        self._control_tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> list[SimulatedModemInfo]:
        """Open every endpoint; return how to reach each modem."""
        loop = asyncio.get_running_loop()
        if self.transport == "pty" and self.pty_dir is None:
            self.pty_dir = tempfile.mkdtemp(prefix="rpcgw-sim-")
            self._own_dir = True
        try:
            for i, config in enumerate(self.configs):
                rng = random.Random(None if self.seed is None else self.seed + i)
                engine = ModemEngine(config, rng=rng, schedule=loop.call_later)
                self.network.attach(engine)
                modem = SimulatedModem(engine, self._endpoint_factory(i, config))
                await modem.start()
                self.modems[config.name] = modem
                for kind, params in [*self.faults.get("*", ()), *self.faults.get(config.name, ())]:
                    modem.set_fault(kind, **dict(params))
            if self.control_path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.control_path)
                self._control = await asyncio.start_unix_server(self._serve_control,
                                                                self.control_path)
        except BaseException:
            await self.stop()
            raise
        return self.infos

    def _endpoint_factory(
        self, i: int, config: SimModemConfig
    ) -> Callable[[Callable[[bytes], None]], _PtyEndpoint | _TcpEndpoint]:
        def factory(on_data: Callable[[bytes], None]) -> _PtyEndpoint | _TcpEndpoint:
            if self.transport == "pty":
                assert self.pty_dir is not None
                return _PtyEndpoint(os.path.join(self.pty_dir, config.name), on_data)
            port = self.tcp_base_port + i if self.tcp_base_port else 0
            return _TcpEndpoint(self.tcp_host, port, on_data)

        return factory

    @property
    def infos(self) -> list[SimulatedModemInfo]:
        return [modem.info for modem in self.modems.values()]

    async def stop(self) -> None:
        """Close everything that :meth:`start` opened (safe to call twice)."""
        if self._control is not None:
            self._control.close()
            for task in list(self._control_tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._control.wait_closed(), 1.0)
            self._control = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.control_path or "")
        for modem in self.modems.values():
            await modem.stop()
            self.network.detach(modem.engine)
        self.modems.clear()
        self.network.close()
        if self._own_dir and self.pty_dir:
            shutil.rmtree(self.pty_dir, ignore_errors=True)
            self._own_dir = False
            self.pty_dir = None

    async def __aenter__(self) -> SimulatorHost:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def modem(self, name_or_number: str) -> SimulatedModem:
        """Find a modem by name, number or IMSI."""
        for modem in self.modems.values():
            config = modem.engine.config
            if name_or_number in (config.name, config.number, config.imsi):
                return modem
        raise KeyError(name_or_number)

    def set_fault(self, modem: str | None, kind: str, **params: Any) -> None:
        """Switch a fault on for one modem (``None``: all of them)."""
        for target in self._targets(modem):
            target.set_fault(kind, **params)

    def clear_fault(self, modem: str | None = None, kind: str | None = None) -> None:
        for target in self._targets(modem):
            target.clear_fault(kind)

    async def power_cycle(self, modem: str) -> None:
        """Power-cycle one modem (usable as the driver supervisor's hard-reset hook)."""
        self.modem(modem).power_cycle()

    def _targets(self, modem: str | None) -> list[SimulatedModem]:
        return list(self.modems.values()) if modem in (None, "", "*") else [self.modem(modem)]

    # --------------------------------------------------------- control socket

    async def _serve_control(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._control_tasks.add(task)
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    result = await self.handle_request(request)
                    answer: dict[str, Any] = {"ok": True, "result": result}
                except (ValueError, KeyError, TypeError, UnknownNumber) as exc:
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._control_tasks.discard(task)
            writer.close()

    async def handle_request(self, request: Mapping[str, Any]) -> Any:
        """Run one control command.

        ``modems``; ``inject`` (from, to, text, encoding?); ``traffic`` (recipient?, sim?,
        text?, since?, complete?); ``fault`` (modem?, kind, params?); ``clear-fault``
        (modem?, kind?); ``rule`` (spec); ``clear-rules``; ``power-cycle`` (modem).
        """
        command = request.get("cmd")
        if command == "modems":
            return [info.as_dict() for info in self.infos]
        if command == "inject":
            result = self.network.inject(str(request["from"]), request.get("to") or None,
                                         str(request["text"]), encoding=request.get("encoding"))
            return result.as_dict()
        if command == "traffic":
            filters = {key: request[key] for key in ("recipient", "sim", "text", "since",
                                                     "complete") if request.get(key) is not None}
            return [record.as_dict() for record in self.network.traffic(**filters)]
        if command == "fault":
            self.set_fault(request.get("modem"), str(request["kind"]),
                           **dict(request.get("params") or {}))
            return None
        if command == "clear-fault":
            self.clear_fault(request.get("modem"), request.get("kind"))
            return None
        if command == "rule":
            rule = Rule.parse(str(request["spec"]))
            self.network.rules.append(rule)
            return asdict(rule)
        if command == "clear-rules":
            self.network.clear_rules()
            return None
        if command == "power-cycle":
            await self.power_cycle(str(request["modem"]))
            return None
        raise ValueError(f"unknown command {command!r}")


async def control_request(path: str, request: Mapping[str, Any], *,
                          timeout: float = 10.0) -> Any:
    """Send one request to a running simulator's control socket and return its result."""
    # A traffic listing can be megabytes on one line: lift the 64 KiB line limit.
    reader, writer = await asyncio.wait_for(
        asyncio.open_unix_connection(path, limit=64 * 1024 * 1024), timeout)
    try:
        writer.write(json.dumps(dict(request)).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    if not line:
        raise ConnectionError("the simulator closed the control connection")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error", "request failed"))
    return answer.get("result")
