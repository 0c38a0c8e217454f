"""Settings as data: one table of name, default and help (after datasette's SETTINGS).

Values come, lowest priority first, from the defaults below, a TOML file
(``--config FILE`` or ``RPCGW_CONFIG``), ``RPCGW_<NAME>`` environment variables, and the
command line.  The TOML file may also hold tables that are not plain settings
(``[[devices]]`` for the modem pool, ``[simulator]``); they are kept in ``Settings.extra``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_DATABASE_URL = "sqlite:///rpcgw.db"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", DEFAULT_DATABASE_URL,
            "sqlite:///relative.db, sqlite:////absolute.db or postgresql://user:pw@host/db"),
    Setting("host", "127.0.0.1", "address to listen on"),
    Setting("port", 8080, "port to listen on (0 picks a free one)"),
    Setting("max_request_bytes", 1024 * 1024, "largest accepted request body"),
    Setting("max_batch_calls", 1000, "most calls in one JSON-RPC batch or sms.send_batch"),
    Setting("sqlite_synchronous", "FULL",
            "SQLite synchronous pragma: FULL fsyncs every (group) commit before a send is "
            "acknowledged; NORMAL survives a process crash but not a power loss"),
    Setting("auth_cache_seconds", 60.0,
            "how long a verified login/password is trusted without re-hashing; changes made "
            "on this node take effect at once, on other nodes within this time"),
    Setting("login_max_failures", 5, "failed logins in a row before a login is locked"),
    Setting("login_lock_seconds", 30.0,
            "first lock period; it doubles with every further failure"),
    Setting("login_lock_max_seconds", 900.0, "longest lock period"),
    Setting("session_seconds", 3600.0, "lifetime of a session token"),
    Setting("refresh_seconds", 30 * 86400.0, "lifetime of a session's refresh token"),
    Setting("default_region", "",
            "ISO country (e.g. FR) for numbers written without +country; empty: refuse them"),
    Setting("default_validity_minutes", 0,
            "validity applied when a send gives none (0: messages never expire unsent)"),
    Setting("allow_private_endpoints", False,
            "allow webhook endpoints on private, loopback and link-local addresses"),
    Setting("secret_key", "",
            "key that encrypts webhook secrets at rest; generated and stored in the "
            "database on first start when empty"),
    Setting("simulated_modems", 4,
            "simulated modems started when no [[devices]] are configured (0: none)"),
    Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR"),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _coerce(setting: Setting, value: Any) -> Any:
    """Convert ``value`` to the type of the setting's default (env values are strings)."""
    kind = type(setting.default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is bool:
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
        raise ValueError(f"setting {setting.name}: expected true or false, got {value!r}")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"setting {setting.name}: expected {kind.__name__}, got {value!r}") from None


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, Any]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def replace(self, **changes: Any) -> "Settings":
        merged = dict(self.values)
        for name, value in changes.items():
            merged[name] = _coerce(_BY_NAME[name], value)
        return Settings(merged, self.extra)

    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        environ = os.environ if environ is None else environ
        values = {s.name: s.default for s in SETTINGS}
        extra: dict[str, Any] = {}
        config_file = config_file or environ.get("RPCGW_CONFIG") or None
        if config_file:
            data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
            for key, value in data.items():
                if key in _BY_NAME:
                    values[key] = _coerce(_BY_NAME[key], value)
                else:
                    extra[key] = value
        for s in SETTINGS:
            env_value = environ.get(f"RPCGW_{s.name.upper()}")
            if env_value is not None:
                values[s.name] = _coerce(s, env_value)
        for name, value in overrides.items():
            if value is not None:
                if name not in _BY_NAME:
                    raise KeyError(f"unknown setting {name!r}")
                values[name] = _coerce(_BY_NAME[name], value)
        return cls(values, extra)


def settings_help() -> str:
    width = max(len(s.name) for s in SETTINGS)
    return "\n".join(f"{s.name:<{width}}  {s.help} (default: {s.default!r})" for s in SETTINGS)
