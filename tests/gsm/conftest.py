"""Fixtures for the GSM tests: simulated modems on real ptys (or TCP), always stopped."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rpcgw.gsm.modem import (
    IncomingSms,
    ModemConfig,
    ModemState,
    ModemSupervisor,
    StateChange,
    StatusReport,
)
from rpcgw.gsm.simulator import SimulatorHost, VirtualNetwork, make_configs

#: Driver settings small enough that every fault is detected within a second or two.
FAST = dict(
    command_timeout=1.0,
    prompt_timeout=1.0,
    send_timeout=1.5,
    health_interval=0.3,
    sweep_interval=30.0,
    reset_backoff=0.05,
    reset_backoff_max=0.5,
    transient_delay=0.01,
)


def fast_config(name: str, url: str, **overrides: Any) -> ModemConfig:
    return ModemConfig(name=name, url=url, **{**FAST, **overrides})


class Recorder:
    """Collects what a supervisor reports; tests wait on conditions, never sleep."""

    def __init__(self) -> None:
        self.messages: list[IncomingSms] = []
        self.reports: list[StatusReport] = []
        self.states: list[StateChange] = []
        self.fail_messages = False
        self._changed = asyncio.Condition()

    async def _note(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def on_message(self, message: IncomingSms) -> None:
        if self.fail_messages:
            raise RuntimeError("database unavailable")
        self.messages.append(message)
        await self._note()

    async def on_status_report(self, report: StatusReport) -> None:
        self.reports.append(report)
        await self._note()

    async def on_state(self, change: StateChange) -> None:
        self.states.append(change)
        await self._note()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    def saw(self, state: ModemState) -> bool:
        return any(change.new is state for change in self.states)


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0,
                     step: float = 0.02) -> None:
    """Poll a condition on simulator state (which has no events to wait on)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


SimFactory = Callable[..., Awaitable[SimulatorHost]]


@pytest.fixture
async def sim_factory(tmp_path: Path) -> AsyncIterator[SimFactory]:
    """Start simulator hosts (pty in ``tmp_path`` by default); all stopped at teardown."""
    hosts: list[SimulatorHost] = []

    async def start(count: int = 2, *, transport: str = "pty",
                    delivery_delay: float = 0.05, network: VirtualNetwork | None = None,
                    config_overrides: dict[str, Any] | None = None,
                    **host_options: Any) -> SimulatorHost:
        network = network or VirtualNetwork(delivery_delay=delivery_delay, rng=random.Random(7))
        configs = make_configs(count, accept_delay=0.01)
        if config_overrides:
            configs = [replace(config, **config_overrides) for config in configs]
        pty_dir = tmp_path / f"pty{len(hosts)}"
        pty_dir.mkdir()
        host = SimulatorHost(network, configs, transport=transport, pty_dir=str(pty_dir),
                             seed=len(hosts), **host_options)
        hosts.append(host)
        await host.start()
        return host

    try:
        yield start
    finally:
        for host in hosts:
            await host.stop()


@pytest.fixture
async def sim(sim_factory: SimFactory) -> SimulatorHost:
    """Two simulated modems on ptys joined by a fast virtual network."""
    return await sim_factory()


SupervisorFactory = Callable[..., Awaitable[tuple[ModemSupervisor, Recorder]]]


@pytest.fixture
async def supervise() -> AsyncIterator[SupervisorFactory]:
    """Start supervisors with a :class:`Recorder`; stopped at teardown.

    At teardown each supervisor's task must still be running: no exception escaped it.
    """
    started: list[ModemSupervisor] = []

    async def start(url: str, *, name: str = "m0", wait: bool = True,
                    hard_reset: Callable[[], Awaitable[None]] | None = None,
                    **overrides: Any) -> tuple[ModemSupervisor, Recorder]:
        recorder = Recorder()
        supervisor = ModemSupervisor(
            fast_config(name, url, **overrides),
            on_message=recorder.on_message,
            on_status_report=recorder.on_status_report,
            on_state=recorder.on_state,
            hard_reset=hard_reset,
        )
        started.append(supervisor)
        await supervisor.start()
        if wait:
            await supervisor.wait_ready(timeout=5)
        return supervisor, recorder

    try:
        yield start
    finally:
        escaped = []
        for supervisor in started:
            task = supervisor._task
            if task is not None and task.done() and not task.cancelled():
                escaped.append(task.exception())
            await supervisor.stop()
        assert not escaped, f"an exception escaped a supervisor: {escaped!r}"
