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
from typing import TYPE_CHECKING, Any, Mapping

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
    Setting("tls_cert", "", "PEM certificate (chain) to serve HTTPS with; see rpcgw cert"),
    Setting("tls_key", "", "PEM private key of tls_cert"),
    Setting("tls_port", 0,
            "HTTPS port when tls_cert is set (0: HTTPS replaces HTTP on port)"),
    Setting("workers", 1,
            "processes serving the API on the same port (SO_REUSEPORT), 0 for one per CPU "
            "core; the modem pool, event delivery and campaigns run in the first one"),
    Setting("role", "all",
            "all: API, modem pool, event delivery and campaigns; api: the API only (the "
            "extra processes of --workers; also for API-only nodes sharing a database)"),
    Setting("max_request_bytes", 1024 * 1024, "largest accepted request body"),
    Setting("max_batch_calls", 1000, "most calls in one JSON-RPC batch or sms.send_batch"),
    Setting("sqlite_synchronous", "FULL",
            "SQLite synchronous pragma: FULL fsyncs every (group) commit before a send is "
            "acknowledged; NORMAL survives a process crash but not a power loss"),
    Setting("switch_interval_ms", 1.0,
            "Python's thread switch interval (sys.setswitchinterval): how long the event "
            "loop may keep the GIL from the database writer thread"),
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
    Setting("reply_window_hours", 168.0,
            "an incoming message is a reply to the last message its SIM sent to that "
            "number within this many hours"),
    Setting("allow_private_endpoints", False,
            "allow webhook endpoints on private, loopback and link-local addresses"),
    Setting("secret_key", "",
            "key that encrypts webhook secrets at rest; generated and stored in the "
            "database on first start when empty"),
    Setting("simulated_modems", 4,
            "simulated modems started when no [[devices]] are configured (0: none)"),
    Setting("node_name", "",
            "name of this gateway node in leases (default: the host name); give each "
            "node sharing a database its own"),
    Setting("pool_poll_seconds", 0.5,
            "how often the pool looks for due messages without being woken (messages "
            "queued by other processes or nodes, send_at reached)"),
    Setting("pool_lease_seconds", 300.0,
            "how long a claimed message stays with a node before another may take it"),
    Setting("pool_max_attempts", 5, "sends tried before a message is ERROR"),
    Setting("pool_retry_seconds", 5.0, "first wait before a failed send is tried again"),
    Setting("pool_retry_max_seconds", 300.0, "longest wait between tries"),
    Setting("pool_maintenance_seconds", 5.0, "how often expiries and leases are checked"),
    Setting("pool_stop_seconds", 10.0, "how long stopping waits for sends in progress"),
    Setting("circuit_failures", 3,
            "failures in a row that take a SIM out of rotation (circuit open)"),
    Setting("circuit_cooldown_seconds", 60.0, "first pause of a SIM whose circuit opened"),
    Setting("circuit_cooldown_max_seconds", 900.0, "longest pause; it doubles each time"),
    Setting("report_timeout_hours", 72.0,
            "a sent message with no delivery report after this long is EXPIRED"),
    Setting("reassembly_timeout_seconds", 600.0,
            "parts of a long incoming message wait this long for the others"),
    Setting("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("webhook_retry_base_seconds", 10.0,
            "first retry delay of a failed webhook delivery; it doubles at each failure"),
    Setting("webhook_retry_max_delay_seconds", 900.0, "longest delay between two tries"),
    Setting("webhook_retry_max_age_hours", 48.0,
            "a webhook delivery not accepted within this many hours is given up (dead)"),
    Setting("webhook_connect_timeout_seconds", 5.0, "connect timeout of a delivery"),
    Setting("webhook_timeout_seconds", 10.0,
            "total time a receiver has to answer a delivery"),
    Setting("webhook_endpoint_concurrency", 8,
            "most deliveries under way to one endpoint at once (per gateway process)"),
    Setting("webhook_max_in_flight", 256,
            "most deliveries under way at once (per gateway process)"),
    Setting("webhook_poll_seconds", 1.0,
            "how often workers look for deliveries written by other gateway processes"),
    Setting("webhook_retention_days", 7.0,
            "finished deliveries and their events are deleted after this many days "
            "(0: keep them)"),
    Setting("webhook_queued_events", False,
            "also announce the creation of an outgoing message (PENDING) to "
            "sms.mt.status_update subscribers; costs a database row per send"),
    Setting("optout_stop_words", "STOP,STOPALL,UNSUBSCRIBE,CANCEL,END,QUIT",
            "comma-separated words that, as the first word of an incoming SMS, opt its "
            "sender out of the receiving user's marketing messages and campaigns"),
    Setting("optout_start_words", "START",
            "comma-separated words that, as the first word of an incoming SMS, opt its "
            "sender back in"),
    Setting("optout_refresh_seconds", 1.0,
            "how often the in-memory opt-out list is brought up to date with changes made "
            "by other gateway processes (changes made here apply at once)"),
    Setting("campaign_priority", -10,
            "priority of campaign messages unless the campaign sets one (single sends "
            "default to 0, urgent ones to 100, so they overtake campaigns)"),
    Setting("campaign_chunk_size", 100,
            "messages a campaign creates per database transaction (larger queues faster "
            "but makes sends wait longer behind each transaction)"),
    Setting("campaign_poll_seconds", 1.0,
            "how often due campaigns are looked for (campaigns created by the command "
            "line or another gateway process, send_at reached)"),
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

    def __post_init__(self) -> None:
        # Plain attributes, so that reading a setting on a hot path is an attribute
        # lookup, not a failed lookup followed by __getattr__.
        for name, value in self.values.items():
            if name not in ("values", "extra"):
                object.__setattr__(self, name, value)

    if TYPE_CHECKING:  # each setting is an attribute (__post_init__)
        def __getattr__(self, name: str) -> Any: ...

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
