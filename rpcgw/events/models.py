"""Tables of event delivery: subscriptions, the outbox, deliveries and their attempts.

* ``Webhook`` (CALLR ``webhooks.*``) and ``Callback`` (SMS Gateway Me ``callbacks.*``) are
  what users subscribe.  Secrets are stored encrypted (``crypto.SecretBox``).
* ``Event`` is one thing that happened (a status change, an incoming message, a SIM going
  offline) with the object it announces, frozen as it was when the change committed.
* ``Delivery`` is one event owed to one endpoint: the unit the workers lease, retry and
  finally mark delivered or dead.  ``DeliveryAttempt`` keeps every try.
* ``EventsVersion`` holds one token that changes whenever a subscription changes, so
  that every gateway process sharing the database notices and reloads its view.

Both rows of the outbox (events and deliveries) are written by the listener in the very
transaction that changed the message (``outbox.py``).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    SmallIntegerField,
    TextField,
)

from ..models import BaseModel, MsField, User, now_ms

if TYPE_CHECKING:
    from ..db import Database

# Delivery statuses.
PENDING = "pending"          # waiting for its time (first try or a retry)
IN_FLIGHT = "in_flight"      # leased by a worker, being POSTed
DELIVERED = "delivered"      # the receiver answered 2xx
DEAD = "dead"                # gave up: retry window over, 410 Gone, unsubscribed
DELIVERY_STATUSES = (PENDING, IN_FLIGHT, DELIVERED, DEAD)

# Delivery kinds: who asked for it.
KIND_WEBHOOK = "webhook"     # a webhooks.subscribe subscription
KIND_CALLBACK = "callback"   # a callbacks.create callback
KIND_MESSAGE = "message"     # sms.send options.webhook.endpoint (hook_hash null)
KIND_STATUS = "status"       # sms.send options.status_url (form POST, seed 002)


class Webhook(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    type = CharField(max_length=64)
    endpoint = TextField()
    hmac_algo = CharField(max_length=8, default="SHA256")
    format = CharField(max_length=16, default="JSON")
    #: Fernet token of the HMAC secret, or null.
    secret = TextField(null=True)
    enabled = BooleanField(default=True)
    disabled_reason = CharField(max_length=255, default="")
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)

    class Meta:
        table_name = "webhook"
        indexes = ((("user", "type", "endpoint"), True),)


class Callback(BaseModel):
    id = AutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    name = CharField(max_length=100)
    event = CharField(max_length=16)
    device_id = IntegerField(null=True)
    filter_type = CharField(max_length=16, null=True)
    #: ``filter`` in the API; named so as not to hide peewee's ``Model.filter``.
    text_filter = TextField(default="", column_name="filter")
    method = CharField(max_length=8, default="HTTP")
    action = TextField()
    secret = TextField(null=True)
    enabled = BooleanField(default=True)
    disabled_reason = CharField(max_length=255, default="")
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)

    class Meta:
        table_name = "callback"
        indexes = ((("user", "id"), False),)


class Event(BaseModel):
    id = BigAutoField()
    #: The public event_id: random, stable across retries (receivers dedupe on it).
    public_id = CharField(max_length=32, unique=True)
    type = CharField(max_length=32)
    message_id = BigIntegerField(null=True)
    device_id = IntegerField(null=True)
    at = MsField()
    #: JSON: the object announced (the SMS object of sms.get, or the SIM state).
    data = TextField()
    #: JSON: what some formats need besides ``data`` (the message a reply answers).
    context = TextField(null=True)

    class Meta:
        table_name = "webhook_event"
        indexes = ((("message_id",), False), (("at",), False))


class Delivery(BaseModel):
    id = BigAutoField()
    event = ForeignKeyField(Event, on_delete="CASCADE", index=True)
    user_id = IntegerField()
    kind = CharField(max_length=8)
    webhook_id = IntegerField(null=True)
    callback_id = IntegerField(null=True)
    endpoint = TextField()
    format = CharField(max_length=16)
    #: Deliveries of one chain go out one at a time, in id order (per subscription and
    #: message): a receiver sees a message's status updates in the order they happened.
    chain = CharField(max_length=64)
    status = CharField(max_length=10, default=PENDING)
    attempts = SmallIntegerField(default=0)
    next_attempt_at = MsField()
    give_up_at = MsField()
    lease_owner = CharField(max_length=64, null=True)
    lease_until = MsField(null=True)
    created_at = MsField(default=now_ms)
    delivered_at = MsField(null=True)
    last_status_code = SmallIntegerField(null=True)
    last_latency_ms = IntegerField(null=True)
    last_error = CharField(max_length=255, default="")

    class Meta:
        table_name = "webhook_delivery"
        indexes = ((("user_id", "id"), False),)


class DeliveryAttempt(BaseModel):
    id = BigAutoField()
    delivery = ForeignKeyField(Delivery, on_delete="CASCADE", index=True)
    number = SmallIntegerField()  # the envelope's "try": 0 for the first
    at = MsField()
    status_code = SmallIntegerField(null=True)
    latency_ms = IntegerField(null=True)
    error = CharField(max_length=255, default="")

    class Meta:
        table_name = "webhook_attempt"


class EventsVersion(BaseModel):
    id = IntegerField(primary_key=True)
    token = CharField(max_length=32)

    class Meta:
        table_name = "events_version"


EVENT_MODELS = (Webhook, Callback, Event, Delivery, DeliveryAttempt, EventsVersion)


def new_token() -> str:
    return secrets.token_hex(16)


def bump_version() -> str:
    """Writer thread: announce a subscription change to every gateway process.

    A random token rather than a counter: a bump rolled back with its transaction can
    never be mistaken for a later, committed one.
    """
    token = new_token()
    EventsVersion.update(token=token).where(EventsVersion.id == 1).execute()
    return token


def migrate_events(db: "Database") -> None:
    """Schema version 2: the event delivery tables (see ``rpcgw.migrations``)."""
    db.pw.create_tables(EVENT_MODELS, safe=True)
    # Due deliveries, in the order the workers take them.
    db.pw.execute_sql(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_due ON webhook_delivery "
        "(next_attempt_at, id) WHERE status = 'pending'")
    # The chain check ("is an earlier delivery of this chain still open?").
    db.pw.execute_sql(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_open_chain ON webhook_delivery "
        "(chain, id) WHERE status IN ('pending', 'in_flight')")
    # Leases of crashed workers.
    db.pw.execute_sql(
        "CREATE INDEX IF NOT EXISTS webhook_delivery_leases ON webhook_delivery "
        "(lease_until) WHERE status = 'in_flight'")
    EventsVersion.insert(id=1, token=new_token()).on_conflict_ignore().execute()


__all__ = [
    "Webhook", "Callback", "Event", "Delivery", "DeliveryAttempt", "EventsVersion",
    "EVENT_MODELS", "migrate_events", "bump_version",
]
