"""Tables of contacts, contact lists, opt-outs and campaigns, and their migration.

Like every rpcgw table, each row belongs to a user (``user_id``) and times are UTC
milliseconds (``MsField``).  Opt-outs are kept per (user, number) and never deleted: a
START clears ``active`` and bumps ``version``, so other gateway processes can follow
every change with one indexed query (``version > last seen``), deletions included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from peewee import (
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    ForeignKeyField,
    IntegerField,
    SmallIntegerField,
    TextField,
)

from ..models import BaseModel, MsField, User, now_ms

if TYPE_CHECKING:
    from ..db import Database

#: A ``send_at`` / ``next_attempt_at`` no claim ever reaches (9999-12-31 23:59:59 UTC):
#: how a campaign holds its queued messages back (``rpcgw.contacts.runner``).
HOLD_MS = 253_402_300_799_000


class ContactList(BaseModel):
    """SmsGateway24's "tag": a named group of contacts."""

    id = BigAutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    title = CharField(max_length=100)
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)

    class Meta:
        table_name = "contact_list"
        indexes = ((("user", "title"), True),)


class Contact(BaseModel):
    """One phone number of a user (E.164, unique per user), with a name and free fields."""

    id = BigAutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    phone = CharField(max_length=32)
    fullname = CharField(max_length=100, default="")
    #: JSON object of custom fields (name → text), usable in campaign bodies.
    fields = TextField(default="{}")
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)

    class Meta:
        table_name = "contact"
        indexes = ((("user", "phone"), True), (("user", "id"), False))


class ContactListMember(BaseModel):
    contact_list = ForeignKeyField(ContactList, on_delete="CASCADE", column_name="list_id",
                                   index=False)
    contact = ForeignKeyField(Contact, on_delete="CASCADE", index=True)
    added_at = MsField(default=now_ms)

    class Meta:
        table_name = "contact_list_member"
        primary_key = CompositeKey("contact_list", "contact")


class OptOut(BaseModel):
    """A number that asked one user to stop sending (STOP), or was opted out by the user."""

    id = BigAutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    phone = CharField(max_length=32)
    active = BooleanField(default=True)
    #: "sms" (a STOP/START reply), "api" (contacts.optouts.*, contacts.update).
    source = CharField(max_length=8)
    #: The word that opted the number out or in ("STOP", "START"), empty through the API.
    keyword = CharField(max_length=32, default="")
    #: The incoming message that carried the keyword.
    message_id = BigIntegerField(null=True)
    #: ``OptOutVersion.version`` when this row last changed.
    version = BigIntegerField(index=True)
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)

    class Meta:
        table_name = "contact_optout"
        indexes = ((("user", "phone"), True),)


class OptOutVersion(BaseModel):
    """One row: bumped by every opt-out change.  Updating it takes a row lock, so on
    PostgreSQL the changes of concurrent nodes commit in version order."""

    id = IntegerField(primary_key=True)
    version = BigIntegerField(default=0)

    class Meta:
        table_name = "contact_optout_counter"


class Campaign(BaseModel):
    """SmsGateway24's "newsletter": one body sent to every number of some lists."""

    id = BigAutoField()
    user = ForeignKeyField(User, on_delete="CASCADE", index=False)
    title = CharField(max_length=100)
    body = TextField()
    sender = CharField(max_length=32, default="")
    #: JSON array of contact list ids.
    lists = TextField()
    device_id = IntegerField(null=True)
    sim = SmallIntegerField(null=True)
    send_at = MsField(null=True)
    #: JSON object: the message options every message of the campaign gets.
    options = TextField(null=True)
    priority = SmallIntegerField()
    #: scheduled, queuing, sending, completed, cancelled (``paused`` is a separate flag).
    state = CharField(max_length=12)
    paused = BooleanField(default=False)
    #: Messages are created in contact id order; the last contact id done.
    cursor = BigIntegerField(default=0)
    recipients = IntegerField(default=0)
    queued = IntegerField(default=0)
    skipped = IntegerField(default=0)
    opted_out = IntegerField(default=0)
    #: The runner (gateway process) creating its messages, and until when.
    lease_owner = CharField(max_length=64, null=True)
    lease_until = MsField(null=True)
    created_at = MsField(default=now_ms)
    updated_at = MsField(default=now_ms)
    started_at = MsField(null=True)
    finished_at = MsField(null=True)

    class Meta:
        table_name = "campaign"
        indexes = ((("user", "id"), False), (("state",), False))


CONTACT_MODELS: tuple[type[BaseModel], ...] = (
    ContactList, Contact, ContactListMember, OptOut, OptOutVersion, Campaign,
)


def migrate_contacts(db: "Database") -> None:
    """The contacts schema version: contacts, lists, opt-outs, campaigns (``rpcgw.migrations``)."""
    db.pw.create_tables(CONTACT_MODELS, safe=True)
    # A campaign's messages by status: progress counts, pause, resume, cancel.
    db.pw.execute_sql(
        "CREATE INDEX IF NOT EXISTS message_campaign ON message (campaign_id, status) "
        "WHERE campaign_id IS NOT NULL")
    OptOutVersion.insert(id=1, version=0).on_conflict_ignore().execute()


__all__ = [
    "HOLD_MS", "ContactList", "Contact", "ContactListMember", "OptOut", "OptOutVersion",
    "Campaign", "CONTACT_MODELS", "migrate_contacts",
]
