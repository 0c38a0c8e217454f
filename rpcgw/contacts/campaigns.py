"""Campaigns (SmsGateway24's newsletters): validation, the database jobs, the service.

A campaign is a row in ``campaign``; its messages are ordinary ``message`` rows carrying
its ``campaign_id``, created by the runner (``rpcgw.contacts.runner``) when the campaign
is due.  Pausing, resuming and cancelling act on those rows; progress is counted from
them.  The command line (``rpcgw campaign …``) uses :func:`prepare`, :func:`create_campaign`
and :func:`get_campaign` through ``Database.run_sync``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

import orjson
from peewee import fn as sqlfn

from .. import errors, status as st
from ..models import Message, now_ms
from ..services.messages import date_param
from ..timefmt import fmt_ms
from . import store
from .models import HOLD_MS, Campaign, Contact, ContactListMember

if TYPE_CHECKING:
    from ..auth import Principal
    from ..config import Settings
    from ..db import Database
    from ..services.messages import MessageService

SCHEDULED, QUEUING, SENDING, COMPLETED, CANCELLED = (
    "scheduled", "queuing", "sending", "completed", "cancelled")
ACTIVE_STATES = (SCHEDULED, QUEUING, SENDING)

#: Message options a campaign may set for all its messages (SmsOptions' names).
OPTION_KEYS = ("flash_message", "force_encoding", "user_data", "validity", "priority",
               "webhook", "status_url")
#: A number of the reserved fictional range, to check options and body before any
#: contact is known.
_SAMPLE_NUMBER = "+15555550100"

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,31})\}")


def render(body: str, values: Mapping[str, str]) -> str:
    """Fill ``{fullname}``, ``{phone}`` and custom ``{field}`` placeholders; ``{{`` and
    ``}}`` are literal braces; a field the contact does not have becomes empty."""
    def one(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values.get(match.group(1), "")
    return _PLACEHOLDER.sub(one, body)


def contact_values(phone: str, fullname: str, fields: Mapping[str, str]) -> dict[str, str]:
    """What a body may use: custom fields, then ``fullname`` and ``phone`` (which win)."""
    return {**fields, "fullname": fullname, "phone": phone}


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    """A validated ``campaigns.create``."""

    title: str
    body: str
    sender: str
    lists: list[int]
    device_id: int | None
    sim: int | None
    send_at: int | None
    options: dict[str, Any]
    priority: int

    def message_options(self) -> dict[str, Any]:
        """The options every message of the campaign is built with."""
        options = {k: v for k, v in self.options.items() if k != "priority"}
        options.update(device_id=self.device_id, sim=self.sim, priority=self.priority,
                       nature="MARKETING")
        return options


def prepare(messages: "MessageService", principal: "Principal", raw: dict[str, Any],
            default_priority: int) -> CampaignSpec:
    """Validate a campaign; the options and the body (with empty fields) are checked by
    building one sample message exactly as the runner will build the real ones."""
    title = str(raw["title"]).strip()
    if not title:
        raise errors.InvalidParams("must not be empty", param="campaign",
                                   field="campaign.title")
    body = raw["body"]
    if not body.strip():
        raise errors.InvalidParams("must not be empty", param="campaign",
                                   field="campaign.body")
    lists = list(dict.fromkeys(raw["lists"]))
    send_at = None
    if raw.get("send_at"):
        send_at = date_param(raw["send_at"], "campaign", "campaign.send_at")
    options = {k: v for k, v in (raw.get("options") or {}).items()
               if k in OPTION_KEYS and v is not None}
    priority = int(options.get("priority", default_priority))
    spec = CampaignSpec(title=title, body=body, sender=(raw.get("from") or "").strip(),
                        lists=lists, device_id=raw.get("device_id"), sim=raw.get("sim"),
                        send_at=send_at, options=options, priority=priority)
    sample = dict(spec.message_options(), nature="ALERTING")  # not refused by an opt-out
    try:
        messages.build(principal, spec.sender, _SAMPLE_NUMBER,
                       render(body, contact_values(_SAMPLE_NUMBER, "", {})), sample)
    except errors.InvalidParams as exc:
        inner = exc.data.get("field") or exc.data.get("param") or ""
        exc.data["param"] = "campaign"
        exc.data["field"] = "campaign." + {"from": "from", "text": "body"}.get(inner, inner)
        raise
    return spec


# -- database jobs ----------------------------------------------------------------------

def _own(user_id: int | None, campaign_id: int) -> Campaign:
    query = Campaign.select().where(Campaign.id == campaign_id)
    if user_id is not None:
        query = query.where(Campaign.user == user_id)
    row = query.first()
    if row is None:
        raise errors.NotFound(f"no campaign {campaign_id}", param="id")
    return row


def create_campaign(user_id: int, spec: CampaignSpec) -> dict[str, Any]:
    store.check_lists(user_id, spec.lists, "campaign", "campaign.lists")
    now = now_ms()
    row = Campaign.create(
        user=user_id, title=spec.title, body=spec.body, sender=spec.sender,
        lists=orjson.dumps(spec.lists).decode(), device_id=spec.device_id, sim=spec.sim,
        send_at=spec.send_at, options=orjson.dumps(spec.options).decode(),
        priority=spec.priority, state=SCHEDULED, created_at=now, updated_at=now)
    return campaign_objects([row])[0]


def list_members(list_ids: list[int]) -> Any:
    """The ids of the contacts in any of the lists (a subquery)."""
    return ContactListMember.select(ContactListMember.contact).where(
        ContactListMember.contact_list.in_(list_ids or [0]))


def count_recipients(user_id: int, list_ids: list[int]) -> int:
    return int(Contact.select().where(Contact.user == user_id,
                                      Contact.id.in_(list_members(list_ids))).count())


def _status_counts(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {} for i in campaign_ids}
    if campaign_ids:
        for campaign_id, status, n in (Message
                                       .select(Message.campaign_id, Message.status,
                                               sqlfn.COUNT(Message.id))
                                       .where(Message.campaign_id.in_(campaign_ids))
                                       .group_by(Message.campaign_id, Message.status)
                                       .tuples()):
            counts[campaign_id][status] = n
    return counts


def campaign_objects(rows: list[Campaign]) -> list[dict[str, Any]]:
    counts = _status_counts([r.id for r in rows])
    return [_campaign_dict(r, counts[r.id]) for r in rows]


def _campaign_dict(row: Campaign, by_status: dict[str, int]) -> dict[str, Any]:
    lists = orjson.loads(row.lists)
    recipients = row.recipients
    if row.state == SCHEDULED:
        recipients = count_recipients(row.user_id, lists)
    progress = {
        "recipients": recipients,
        "queued": row.queued,
        "pending": by_status.get(st.PENDING, 0),
        "sending": by_status.get(st.SENDING, 0),
        "sent": by_status.get(st.SENT, 0),
        "delivered": by_status.get(st.DELIVERED, 0),
        "failed": sum(by_status.get(s, 0) for s in (st.FAILED, st.ERROR, st.EXPIRED)),
        "cancelled": by_status.get(st.CANCELLED, 0),
        "opted_out": row.opted_out,
        "skipped": row.skipped,
    }
    return {
        "id": row.id, "title": row.title, "body": row.body, "from": row.sender,
        "lists": lists, "device_id": row.device_id, "sim": row.sim,
        "send_at": fmt_ms(row.send_at) if row.send_at else None,
        "options": orjson.loads(row.options) if row.options else {},
        "priority": row.priority, "status": "paused" if row.paused else row.state,
        "progress": progress, "date_creation": fmt_ms(row.created_at),
        "date_update": fmt_ms(row.updated_at), "date_started": fmt_ms(row.started_at),
        "date_finished": fmt_ms(row.finished_at),
    }


def get_campaign(user_id: int | None, campaign_id: int) -> dict[str, Any]:
    """One campaign with its progress; ``user_id`` None (the command line): any user's."""
    return campaign_objects([_own(user_id, campaign_id)])[0]


def list_campaigns(user_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    rows = list(Campaign.select().where(Campaign.user == user_id)
                .order_by(Campaign.id.desc()).limit(limit))
    return campaign_objects(rows)


def _finished(row: Campaign) -> errors.InvalidState:
    return errors.InvalidState(f"the campaign is {row.state}", message="CAMPAIGN_FINISHED",
                               status=row.state)


def _lock(campaign_id: int) -> None:
    """PostgreSQL: hold the campaign row until commit, so a runner's chunk and a
    pause/cancel are applied one after the other.  (SQLite's writer holds the whole
    database.)"""
    Campaign.select(Campaign.id).where(Campaign.id == campaign_id).for_update().execute()


def hold(campaign_id: int) -> int:
    """Writer thread: keep a campaign's queued messages from being claimed."""
    return int(Message.update(next_attempt_at=HOLD_MS).where(
        Message.campaign_id == campaign_id, Message.status == st.PENDING,
        (Message.next_attempt_at.is_null()) | (Message.next_attempt_at != HOLD_MS)).execute())


def pause_campaign(user_id: int, campaign_id: int, postgres: bool) -> dict[str, Any]:
    if postgres:
        _lock(campaign_id)
    row = _own(user_id, campaign_id)
    if row.state not in ACTIVE_STATES:
        raise _finished(row)
    if not row.paused:
        row.paused, row.updated_at = True, now_ms()
        row.save()
        hold(campaign_id)
    return campaign_objects([row])[0]


def resume_campaign(user_id: int, campaign_id: int, postgres: bool) -> dict[str, Any]:
    if postgres:
        _lock(campaign_id)
    row = _own(user_id, campaign_id)
    if row.state not in ACTIVE_STATES:
        raise _finished(row)
    if row.paused:
        row.paused, row.updated_at = False, now_ms()
        row.save()
        Message.update(next_attempt_at=None).where(
            Message.campaign_id == campaign_id, Message.status == st.PENDING,
            Message.next_attempt_at == HOLD_MS).execute()
    return campaign_objects([row])[0]


def cancel_campaign(messages: "MessageService", user_id: int, campaign_id: int,
                    postgres: bool) -> dict[str, Any]:
    if postgres:
        _lock(campaign_id)
    row = _own(user_id, campaign_id)
    if row.state == COMPLETED:
        raise _finished(row)
    if row.state != CANCELLED:
        now = now_ms()
        row.state, row.paused, row.updated_at, row.finished_at = CANCELLED, False, now, now
        row.lease_owner = row.lease_until = None
        row.save()
        messages.cancel_rows(Message.campaign_id == campaign_id)
    return campaign_objects([row])[0]


class CampaignService:
    """The operations behind ``campaigns.*``."""

    def __init__(self, db: "Database", settings: "Settings", messages: "MessageService",
                 on_change: Callable[[], None]) -> None:
        self.db = db
        self.settings = settings
        self.messages = messages
        #: Wakes the runner (a campaign was created or resumed here).
        self.on_change = on_change

    async def create(self, principal: "Principal", raw: dict[str, Any]) -> dict[str, Any]:
        spec = prepare(self.messages, principal, raw, int(self.settings.campaign_priority))
        result = await self.db.write(create_campaign, principal.user_id, spec)
        self.on_change()
        return result

    async def get(self, principal: "Principal", campaign_id: int) -> dict[str, Any]:
        return await self.db.read(get_campaign, principal.user_id, campaign_id)

    async def get_list(self, principal: "Principal") -> list[dict[str, Any]]:
        return await self.db.read(list_campaigns, principal.user_id)

    async def pause(self, principal: "Principal", campaign_id: int) -> dict[str, Any]:
        return await self.db.write(pause_campaign, principal.user_id, campaign_id,
                                   self.db.is_postgres)

    async def resume(self, principal: "Principal", campaign_id: int) -> dict[str, Any]:
        result = await self.db.write(resume_campaign, principal.user_id, campaign_id,
                                     self.db.is_postgres)
        self.on_change()
        for wake in self.messages.on_queued:  # the held messages are due again
            wake()
        return result

    async def cancel(self, principal: "Principal", campaign_id: int) -> dict[str, Any]:
        return await self.db.write(cancel_campaign, self.messages, principal.user_id,
                                   campaign_id, self.db.is_postgres)
