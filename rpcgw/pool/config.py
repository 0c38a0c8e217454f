"""Device configuration (``[[devices]]`` in the TOML file) and per-SIM sending limits.

```toml
[[devices]]
name = "usb0"                 # unique, stable: the database keys the device by it
title = "Huawei E3372, desk"
pin = "1234"                  # optional SIM PIN (never retried automatically)
owner = "alice"               # optional: who gets incoming messages that are not replies

[[devices.ports]]
url = "/dev/ttyUSB0"          # any pyserial URL: /dev/tty…, socket://host:port, rfc2217://…
sim = 0                       # SIM slot number this port drives
per_minute = 6                # limits: 0 = none
per_hour = 100
per_day = 500
min_delay = 5.0               # seconds between two messages (SmsGateway24's delaybetweeneachsms)
random_delay = 3.0            # plus up to this many random seconds
working_hours = "08:00-20:00" # UTC; messages wait outside these hours
```
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any, Mapping

LIMIT_KEYS = ("per_minute", "per_hour", "per_day", "min_delay", "random_delay",
              "working_hours")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Limits:
    per_minute: int = 0
    per_hour: int = 0
    per_day: int = 0
    min_delay: float = 0.0
    random_delay: float = 0.0
    working_hours: str = ""

    def __post_init__(self) -> None:
        for name in ("per_minute", "per_hour", "per_day"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (no limit) or more")
        if self.min_delay < 0 or self.random_delay < 0:
            raise ConfigError("delays must not be negative")
        if self.working_hours:
            parse_hours(self.working_hours)

    def merged(self, overrides: Mapping[str, Any]) -> "Limits":
        known = {k: v for k, v in overrides.items() if k in LIMIT_KEYS and v is not None}
        return replace(self, **known)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_hours(text: str) -> tuple[int, int]:
    """``"08:00-20:00"`` → minutes since midnight (start, end); end < start wraps."""
    try:
        start, end = text.split("-")
        sh, sm = (int(x) for x in start.strip().split(":"))
        eh, em = (int(x) for x in end.strip().split(":"))
    except ValueError:
        raise ConfigError(f"working_hours {text!r} must look like 08:00-20:00") from None
    if not (0 <= sh < 24 and 0 <= eh <= 24 and 0 <= sm < 60 and 0 <= em < 60):
        raise ConfigError(f"working_hours {text!r} is not a time range")
    return sh * 60 + sm, eh * 60 + em


@dataclass(frozen=True)
class PortSpec:
    url: str
    slot: int = 0
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    title: str = ""
    pin: str | None = None
    owner: str | None = None
    ports: tuple[PortSpec, ...] = ()
    simulated: bool = False
    #: Driver options passed to ``ModemConfig`` (timeouts, receive_mode, smsc, ...).
    modem_options: Mapping[str, Any] = field(default_factory=dict)


_DRIVER_KEYS = ("baudrate", "command_timeout", "prompt_timeout", "send_timeout", "smsc",
                "storage", "receive_mode", "report_mode", "health_interval",
                "sweep_interval")


def parse_devices(raw: Any) -> list[DeviceSpec]:
    """Validate the ``devices`` array of the configuration; errors name the entry."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("devices must be an array of tables ([[devices]])")
    specs: list[DeviceSpec] = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"devices[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: needs a name")
        name = entry["name"]
        if name in names:
            raise ConfigError(f"{where}: device name {name!r} used twice")
        names.add(name)
        ports_raw = entry.get("ports") or ([{"url": entry["url"]}] if "url" in entry else [])
        if not ports_raw:
            raise ConfigError(f"{where} ({name}): needs at least one port (url)")
        ports = []
        slots: set[int] = set()
        for j, port in enumerate(ports_raw):
            if not isinstance(port, dict) or not isinstance(port.get("url"), str):
                raise ConfigError(f"{where}.ports[{j}]: needs a url")
            slot = int(port.get("sim", j))
            if slot in slots:
                raise ConfigError(f"{where}.ports[{j}]: SIM slot {slot} used twice")
            slots.add(slot)
            try:
                limits = Limits().merged({k: port.get(k, entry.get(k)) for k in LIMIT_KEYS})
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"{where}.ports[{j}]: {exc}") from None
            ports.append(PortSpec(port["url"], slot, limits))
        options = {k: entry[k] for k in _DRIVER_KEYS if k in entry}
        specs.append(DeviceSpec(name=name, title=str(entry.get("title", "")),
                                pin=str(entry["pin"]) if entry.get("pin") else None,
                                owner=entry.get("owner"), ports=tuple(ports),
                                modem_options=options))
    return specs


class RateGate:
    """Decides when a SIM may send next: per-minute/hour/day windows, a minimum plus
    random delay between messages, and working hours.  Times are epoch seconds."""

    def __init__(self, limits: Limits, rng: random.Random | None = None) -> None:
        self.limits = limits
        self._rng = rng or random.Random()
        self._sent: deque[float] = deque()
        self._next_at = 0.0

    def note_send(self, now: float) -> None:
        self._sent.append(now)
        delay = self.limits.min_delay
        if self.limits.random_delay:
            delay += self._rng.uniform(0, self.limits.random_delay)
        self._next_at = now + delay

    def preload(self, times: list[float]) -> None:
        """Sends made before a restart, so limits hold across restarts."""
        for t in sorted(times):
            self._sent.append(t)

    def sent_within(self, seconds: float, now: float) -> int:
        return sum(1 for t in self._sent if t > now - seconds)

    def wait(self, now: float) -> float:
        """Seconds until this SIM may send (0: now)."""
        while self._sent and self._sent[0] <= now - 86400:
            self._sent.popleft()
        wait = max(0.0, self._next_at - now)
        for window, limit in ((60, self.limits.per_minute), (3600, self.limits.per_hour),
                              (86400, self.limits.per_day)):
            if limit and len(self._sent) >= limit:
                inside = [t for t in self._sent if t > now - window]
                if len(inside) >= limit:
                    wait = max(wait, inside[-limit] + window - now)
        if self.limits.working_hours:
            wait = max(wait, _until_open(self.limits.working_hours, now))
        return wait


def _until_open(hours: str, now: float) -> float:
    start, end = parse_hours(hours)
    moment = datetime.fromtimestamp(now, timezone.utc)
    minute = moment.hour * 60 + moment.minute + moment.second / 60
    inside = start <= minute < end if start <= end else (minute >= start or minute < end)
    if inside:
        return 0.0
    return ((start - minute) % 1440) * 60
