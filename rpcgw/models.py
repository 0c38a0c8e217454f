"""Peewee models: the shape of everything rpcgw stores.

All models bind to ``database_proxy``; ``rpcgw.db.Database`` initialises it with SQLite
or PostgreSQL.  Times are stored as integer UTC milliseconds (``MsField``): exact,
compact, ordered the same on both backends, and cheap to write from the raw-SQL send
path.  The public API formats them as CALLR's ``YYYY-MM-DD HH:MM:SS``.

Each object is owned by a user (``user_id``); services filter on it, never handlers.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DatabaseProxy,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
)

database_proxy = DatabaseProxy()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, timezone.utc)


def datetime_to_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


class MsField(BigIntegerField):
    """A UTC instant stored as integer milliseconds since the epoch.

    Accepts ints (already milliseconds) or datetimes when writing; reads back ints, which
    services format; keeping ints avoids a datetime per row in list queries.
    """

    def db_value(self, value):  # type: ignore[no-untyped-def]
        if isinstance(value, datetime):
            return datetime_to_ms(value)
        return value


class BaseModel(Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class Meta(BaseModel):
    """Installation-wide values: the hash-id key, the secret-encryption key, ..."""

    key = CharField(primary_key=True, max_length=64)
    value = TextField()


class SchemaVersion(BaseModel):
    version = IntegerField(primary_key=True)
    applied_at = MsField()


class User(BaseModel):
    login = CharField(max_length=64, unique=True)
    password_hash = CharField(max_length=255)
    is_admin = BooleanField(default=False)
    enabled = BooleanField(default=True)
    #: Bumped whenever the password changes or the user is disabled, so that cached
    #: verifications of the old credentials stop working.
    auth_version = IntegerField(default=1)
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)


class LoginFailure(BaseModel):
    """Consecutive failed logins per existing login, shared by all gateway nodes."""

    login = CharField(primary_key=True, max_length=64)
    failures = IntegerField(default=0)
    locked_until = MsField(null=True)
    last_failure_at = MsField(default=now_ms)


class ApiKey(BaseModel):
    user = ForeignKeyField(User, on_delete="CASCADE", backref="api_keys")
    name = CharField(max_length=100)
    #: SHA-256 of the token: tokens carry 400 random bits, so a fast hash is enough.
    token_hash = CharField(max_length=64, unique=True)
    created_at = MsField(default=now_ms)
    last_used_at = MsField(null=True)


class Session(BaseModel):
    user = ForeignKeyField(User, on_delete="CASCADE", backref="sessions")
    token_hash = CharField(max_length=64, unique=True)
    refresh_hash = CharField(max_length=64, unique=True)
    valid_until = MsField()
    refresh_until = MsField()
    created_at = MsField(default=now_ms)


class Device(BaseModel):
    """A modem (one or more SIM slots), configured in the TOML file or simulated.

    The configuration file owns ports and default limits; ``devices.update`` may change
    ``title``, ``enabled`` and the limits, which are kept here and win over the file.
    """

    name = CharField(max_length=64, unique=True)
    title = CharField(max_length=100, default="")
    #: Incoming messages that are not replies go to this user (default: first admin).
    owner = ForeignKeyField(User, null=True, on_delete="SET NULL")
    enabled = BooleanField(default=True)
    simulated = BooleanField(default=False)
    imei = CharField(max_length=32, default="")
    serial_number = CharField(max_length=64, default="")
    manufacturer = CharField(max_length=64, default="")
    model = CharField(max_length=64, default="")
    firmware = CharField(max_length=100, default="")
    created_at = MsField(default=now_ms)
    last_seen_at = MsField(null=True)
    #: JSON: limits and options set through devices.update (override the file).
    overrides = TextField(default="{}")


class Sim(BaseModel):
    """One SIM slot of a device: the unit that sends, receives and is rate-limited."""

    device = ForeignKeyField(Device, on_delete="CASCADE", backref="sims")
    slot = SmallIntegerField(default=0)
    port = CharField(max_length=255, default="")
    iccid = CharField(max_length=32, default="")
    imsi = CharField(max_length=32, default="")
    number = CharField(max_length=32, default="")
    operator = CharField(max_length=64, default="")
    country = CharField(max_length=8, default="")
    roaming = BooleanField(default=False)
    signal_dbm = SmallIntegerField(null=True)
    registration = CharField(max_length=16, default="")
    #: online, offline, disabled, circuit_open, sim_error
    state = CharField(max_length=16, default="offline")
    state_detail = CharField(max_length=255, default="")
    failures_in_row = SmallIntegerField(default=0)
    circuit_open_until = MsField(null=True)
    last_seen_at = MsField(null=True)
    last_send_at = MsField(null=True)
    #: The gateway node that drives this SIM now (several nodes may share a database).
    node = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("device", "slot"), True),)


class Message(BaseModel):
    """One SMS, outgoing (``OUT``) or incoming (``IN``).

    The public ``hash`` is not stored: it is a keyed permutation of ``id``
    (``rpcgw.ids``), unique by construction and cheap to map back.
    """

    id = BigAutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    direction = CharField(max_length=3)
    sender = CharField(max_length=32)
    recipient = CharField(max_length=32)
    text = TextField()
    encoding = CharField(max_length=8)
    parts = SmallIntegerField(default=1)
    status = CharField(max_length=10)
    status_error = CharField(max_length=255, default="")
    #: SmsGateway24 failure code and SMS Manager result_info, set when a modem reports.
    error_code = SmallIntegerField(null=True)
    result_info = CharField(max_length=255, default="")
    options = TextField(null=True)
    user_data = CharField(max_length=255, default="")
    nature = CharField(max_length=10, default="MARKETING")
    flash = BooleanField(default=False)
    priority = SmallIntegerField(default=0)
    send_at = MsField(null=True)
    expires_at = MsField(null=True)
    device_id = IntegerField(null=True)
    sim = SmallIntegerField(null=True)
    customer_id = CharField(max_length=64, null=True)
    custom_ticket = CharField(max_length=255, null=True)
    status_url = TextField(null=True)
    webhook_endpoint = TextField(null=True)
    idempotency_key = CharField(max_length=128, null=True)
    in_reply_to = BigIntegerField(null=True)
    campaign_id = BigIntegerField(null=True)
    #: Incoming only: identifies one received SMS (SIM, sender, service-centre time,
    #: content), so the same PDU read twice is stored once.
    dedupe_key = CharField(max_length=64, null=True)
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)
    sent_at = MsField(null=True)
    received_at = MsField(null=True)
    # Send queue (modem pool): who holds the message, until when, how often tried.
    lease_owner = CharField(max_length=64, null=True)
    lease_until = MsField(null=True)
    attempts = SmallIntegerField(default=0)
    next_attempt_at = MsField(null=True)
    sent_device_id = IntegerField(null=True)
    sent_sim = SmallIntegerField(null=True)
    #: The SIM (``Sim.id``) of the last attempt, so that a retry prefers another one.
    last_sim_id = IntegerField(null=True)

    class Meta:
        # Every index costs each send an update, so only sms.search's filters are full
        # indexes; the others are partial (PARTIAL_INDEXES, created by the migrations)
        # and cost nothing for the rows they leave out.
        indexes = (
            (("user", "id"), False),
            (("user", "status", "id"), False),
            (("user", "recipient", "id"), False),
            (("user", "sender", "id"), False),
            (("user", "created_at"), False),
        )


#: name, table, columns, unique, condition.
PARTIAL_INDEXES: tuple[tuple[str, str, str, bool, str], ...] = (
    # the send queue, in the order messages are taken
    ("message_queue", "message", "priority DESC, id", False, "status = 'PENDING'"),
    ("message_expiry", "message", "expires_at", False,
     "status = 'PENDING' AND expires_at IS NOT NULL"),
    ("message_customer", "message", "user_id, customer_id, id", False,
     "customer_id IS NOT NULL"),
    ("message_idempotency", "message", "user_id, idempotency_key", True,
     "idempotency_key IS NOT NULL"),
    ("message_dedupe", "message", "dedupe_key", True, "dedupe_key IS NOT NULL"),
    # replies: the last message a SIM sent to a number
    ("message_reply", "message", "recipient, sent_device_id, sent_sim, sent_at", False,
     "sent_at IS NOT NULL"),
    # per-SIM counters (devices.get_list) and rate limits after a restart
    ("message_sim_sent", "message", "sent_device_id, sent_sim, sent_at", False,
     "sent_at IS NOT NULL"),
    # upkeep: leases of a node that died, reports that never came
    ("message_leases", "message", "lease_until", False, "status = 'SENDING'"),
    ("message_awaiting_report", "message", "sent_at", False, "status = 'SENT'"),
)


class MessagePart(BaseModel):
    """One part of a sent message, as the modem accepted it: the key that matches its
    status report (SIM, TP-MR, recipient, time)."""

    message = ForeignKeyField(Message, on_delete="CASCADE", index=True)
    seq = SmallIntegerField()
    device_id = IntegerField()
    sim = SmallIntegerField()
    reference = SmallIntegerField()  # TP-MR, 0-255, wraps
    recipient = CharField(max_length=32)
    sent_at = MsField()
    #: SENT, DELIVERED, FAILED (pending reports keep SENT)
    status = CharField(max_length=10, default="SENT")
    report_status = SmallIntegerField(null=True)  # TP-ST
    report_at = MsField(null=True)

    class Meta:
        indexes = ((("device_id", "sim", "reference", "sent_at"), False),)


class UnmatchedReport(BaseModel):
    """A status report that matched no sent part: kept and counted, never dropped."""

    device_id = IntegerField()
    sim = SmallIntegerField()
    reference = SmallIntegerField()
    recipient = CharField(max_length=32)
    report_status = SmallIntegerField()
    received_at = MsField(default=now_ms)
    pdu = TextField(default="")


class IncomingPart(BaseModel):
    """One part of a long incoming message, kept until all parts are there (or the
    reassembly time runs out), so reassembly survives a restart."""

    device_id = IntegerField()
    sim = SmallIntegerField()
    sender = CharField(max_length=32)
    reference = IntegerField()
    total = SmallIntegerField()
    seq = SmallIntegerField()
    text = TextField()
    encoding = CharField(max_length=8)
    sc_timestamp = MsField()
    received_at = MsField(default=now_ms)

    class Meta:
        indexes = ((("device_id", "sim", "sender", "reference", "total", "seq"), True),)


class StatusChange(BaseModel):
    """``status_history``: one row per status change of a message."""

    message = ForeignKeyField(Message, on_delete="CASCADE", index=True)
    old_status = CharField(max_length=10)
    new_status = CharField(max_length=10)
    at = MsField(default=now_ms)
    error = CharField(max_length=255, default="")


MODELS: tuple[type[BaseModel], ...] = (
    Meta, SchemaVersion, User, LoginFailure, ApiKey, Session, Device, Sim, Message,
    MessagePart, UnmatchedReport, IncomingPart, StatusChange,
)
