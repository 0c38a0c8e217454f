"""The campaign runner: turns due campaigns into queued messages and follows them.

Theory of operation
-------------------

The queue is the ``message`` table, as for every other send: the runner's only job is
to create a campaign's messages, in chunks, when the campaign is due, and to notice when
they are all done.  The modem pool sends them like any message; they carry the
campaign's ``priority`` (default ``campaign_priority`` = -10), so a single send
(priority 0) or an urgent one (100) queued during a 10,000-recipient campaign is claimed
before the campaign's next message (the claim orders by ``priority DESC, id``).

Each tick (woken by a local ``campaigns.create``/``resume``, else every
``campaign_poll_seconds``, which is how campaigns created by ``rpcgw campaign create``
or by another gateway process are noticed):

1. **Claim.**  One writer job takes due campaigns (``scheduled`` or ``queuing``, not
   paused, ``send_at`` reached) with a lease (owner, ``LEASE_MS``), compare-and-set, so
   of several gateway processes sharing a database one queues a campaign.  A
   ``scheduled`` campaign becomes ``queuing`` and its recipients are counted.
2. **Queue, chunk by chunk** (``campaign_chunk_size`` contacts, in contact id order
   after ``cursor``): read the contacts of the campaign's lists with their opt-out
   flag; skip opted-out numbers (``opted_out``, also counted in ``skipped``); render the
   body with the contact's fields; build each message with ``MessageService.build``
   (the same validation and checks as ``sms.send``; a message it refuses is
   ``skipped``); then ``send_many`` the chunk as one insert.  The messages are inserted
   **held** (``send_at`` = ``HOLD_MS``) and released by the next writer job, ``advance``,
   which also moves the cursor and the counters, all in one transaction with the
   campaign row locked.  So a pause or cancel committed while a chunk was being built
   applies to that chunk too: ``advance`` holds it (paused) or cancels it (cancelled),
   and no modem can take a message in between.
3. **Crash safety.**  Each message has the idempotency key ``campaign:<id>:<contact
   id>``: if the process dies between a chunk's insert and its ``advance``, the next
   runner re-builds the chunk from the unchanged cursor, the insert finds the existing
   messages instead of creating new ones, and ``advance`` releases them.  No contact is
   sent twice and none is forgotten.
4. **Done.**  When no contact is left the campaign is ``sending``; a later tick marks
   it ``completed`` once none of its messages is PENDING or SENDING.

Pause sets the campaign's PENDING messages' ``next_attempt_at`` to ``HOLD_MS`` (the
claim skips messages whose ``next_attempt_at`` is in the future; no new status is
needed, so ``sms.get`` keeps saying PENDING); resume clears it.  A message a modem held
when the pause came may fail and come back PENDING with a retry time: each tick re-holds
the messages of paused campaigns.  Cancel uses ``MessageService.cancel_rows``: PENDING
messages not leased by a modem become CANCELLED, with their status events.

Contacts are read when each chunk is queued, not when the campaign is created: a contact
added to a list before its turn comes is included, one removed is not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .. import errors, status as st
from ..auth import Principal
from ..models import Message, now_ms
from .campaigns import (ACTIVE_STATES, CANCELLED, COMPLETED, QUEUING, SCHEDULED, SENDING,
                        contact_values, count_recipients, hold, list_members, render)
from .models import HOLD_MS, Campaign, Contact, OptOut

if TYPE_CHECKING:
    from ..db import Database
    from ..gateway import Gateway
    from ..services.messages import MessageService, NewMessage

log = logging.getLogger("rpcgw.campaigns")

#: How long a runner owns a campaign it is queuing without renewing (every chunk renews).
LEASE_MS = 60_000
#: Most campaigns claimed per tick.
CLAIM_BATCH = 10


@dataclass(frozen=True, slots=True)
class Due:
    """A claimed campaign, as the runner needs it."""

    id: int
    user_id: int
    body: str
    sender: str
    lists: list[int]
    options: dict[str, Any]
    cursor: int


@dataclass(frozen=True, slots=True)
class Recipient:
    contact_id: int
    phone: str
    fullname: str
    fields: dict[str, str]
    opted_out: bool


# -- database jobs ----------------------------------------------------------------------

def _due(node: str, now: int) -> Any:
    lease_free = (Campaign.lease_owner.is_null() | (Campaign.lease_owner == node)
                  | (Campaign.lease_until < now))
    return (Campaign.state.in_([SCHEDULED, QUEUING]) & (Campaign.paused == False)  # noqa: E712
            & (Campaign.send_at.is_null() | (Campaign.send_at <= now)) & lease_free)


def any_due(node: str, now: int) -> bool:
    """Reader: is there a campaign to claim?  (So an idle gateway writes nothing.)"""
    return bool(Campaign.select(Campaign.id).where(_due(node, now)).exists())


def claim_due(db: "Database", node: str, now: int) -> list[Due]:
    """Writer thread: lease due campaigns to ``node``."""
    due = _due(node, now)
    query = Campaign.select().where(due).order_by(Campaign.id).limit(CLAIM_BATCH)
    if db.is_postgres:
        query = query.for_update(skip_locked=True)
    claimed: list[Due] = []
    for row in list(query):
        lists = orjson.loads(row.lists)
        changes: dict[Any, Any] = {Campaign.lease_owner: node,
                                   Campaign.lease_until: now + LEASE_MS,
                                   Campaign.state: QUEUING, Campaign.updated_at: now}
        if row.state == SCHEDULED:
            changes[Campaign.started_at] = now
            changes[Campaign.recipients] = count_recipients(row.user_id, lists)
        if Campaign.update(changes).where(Campaign.id == row.id, due).execute() != 1:
            continue
        options = orjson.loads(row.options) if row.options else {}
        options = {k: v for k, v in options.items() if k != "priority"}
        options.update(device_id=row.device_id, sim=row.sim, priority=row.priority,
                       nature="MARKETING")
        claimed.append(Due(row.id, row.user_id, row.body, row.sender, lists, options,
                           row.cursor))
    return claimed


def next_chunk(user_id: int, lists: list[int], cursor: int, size: int) -> list[Recipient]:
    """Reader: the next contacts of the lists after ``cursor``, with their opt-out flag."""
    rows = list(Contact.select(Contact.id, Contact.phone, Contact.fullname, Contact.fields)
                .where(Contact.user == user_id, Contact.id > cursor,
                       Contact.id.in_(list_members(lists)))
                .order_by(Contact.id).limit(size).tuples())
    opted = {p for (p,) in OptOut.select(OptOut.phone).where(
        OptOut.user == user_id, OptOut.active == True,  # noqa: E712
        OptOut.phone.in_([r[1] for r in rows] or [""])).tuples()}
    return [Recipient(i, phone, name, orjson.loads(fields or "{}"), phone in opted)
            for i, phone, name, fields in rows]


def advance(db: "Database", messages: "MessageService", campaign_id: int, node: str,
            old_cursor: int, new_cursor: int, queued: int, skipped: int, opted_out: int,
            last: bool) -> bool:
    """Writer thread: account for one queued chunk and release (or hold, or cancel) its
    messages; returns whether the runner should go on with the next chunk."""
    query = Campaign.select().where(Campaign.id == campaign_id)
    if db.is_postgres:
        query = query.for_update()
    row = query.first()
    if row is None:
        return False
    if row.lease_owner != node or row.cursor != old_cursor:
        # Lost the lease (this process stalled for LEASE_MS) or the campaign ended: the
        # chunk's messages were found or created by the idempotency keys; whoever owns the
        # campaign now accounts for them.  Leave them held unless the campaign is over.
        if row.state == CANCELLED:
            messages.cancel_rows(Message.campaign_id == campaign_id)
        return False
    now = now_ms()
    if row.state == CANCELLED:
        messages.cancel_rows(Message.campaign_id == campaign_id)
        return False
    Message.update(send_at=row.send_at).where(
        Message.campaign_id == campaign_id, Message.status == st.PENDING,
        Message.send_at == HOLD_MS).execute()
    if row.paused:
        hold(campaign_id)
    changes: dict[Any, Any] = {
        Campaign.cursor: new_cursor, Campaign.queued: Campaign.queued + queued,
        Campaign.skipped: Campaign.skipped + skipped,
        Campaign.opted_out: Campaign.opted_out + opted_out,
        Campaign.updated_at: now, Campaign.lease_until: now + LEASE_MS}
    go_on = not row.paused and not last
    if last:
        changes[Campaign.state] = SENDING
        changes[Campaign.recipients] = row.queued + queued + row.skipped + skipped
    if not go_on:
        changes[Campaign.lease_owner] = None
        changes[Campaign.lease_until] = None
    Campaign.update(changes).where(Campaign.id == campaign_id).execute()
    return go_on


def active_campaigns() -> tuple[list[int], list[int]]:
    """Reader: (campaigns sending and not paused, paused campaigns with messages)."""
    sending, paused = [], []
    for ident, state, is_paused in (Campaign.select(Campaign.id, Campaign.state,
                                                    Campaign.paused)
                                    .where(Campaign.state.in_(list(ACTIVE_STATES))).tuples()):
        if is_paused and state != SCHEDULED:
            paused.append(ident)
        elif state == SENDING:
            sending.append(ident)
    return sending, paused


def maintain(sending: list[int], paused: list[int], now: int) -> None:
    """Writer thread: complete finished campaigns; keep paused campaigns' messages held
    (a retry brings a message back PENDING with its own retry time)."""
    for campaign_id in sending:
        busy = Message.select(Message.id).where(
            Message.campaign_id == campaign_id,
            Message.status.in_([st.PENDING, st.SENDING])).exists()
        if not busy:
            Campaign.update(state=COMPLETED, finished_at=now, updated_at=now).where(
                Campaign.id == campaign_id, Campaign.state == SENDING,
                Campaign.paused == False).execute()  # noqa: E712
    for campaign_id in paused:
        hold(campaign_id)


# -- the component ----------------------------------------------------------------------

class CampaignRunner:
    """Creates due campaigns' messages (module documentation)."""

    def __init__(self, gw: "Gateway") -> None:
        self.db = gw.db
        self.messages: "MessageService" = gw.messages
        self.settings = gw.settings
        self.node = (f"{self.settings.node_name or socket.gethostname()}:{os.getpid()}:"
                     f"{secrets.token_hex(3)}")
        self.chunk_size = int(self.settings.campaign_chunk_size)
        self.poll_seconds = float(self.settings.campaign_poll_seconds)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rpcgw-campaign-runner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except errors.RpcgwError as exc:
                log.warning("campaign runner: %s", exc)
            except Exception:  # noqa: BLE001 - keep the runner alive, say why
                log.exception("campaign runner tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def tick(self) -> None:
        if await self.db.read(any_due, self.node, now_ms()):
            for due in await self.db.write(claim_due, self.db, self.node, now_ms()):
                await self._queue(due)
        sending, paused = await self.db.read(active_campaigns)
        if sending or paused:
            await self.db.write(maintain, sending, paused, now_ms())

    async def _queue(self, due: Due) -> None:
        principal = Principal(user_id=due.user_id, login="", is_admin=False, method="campaign")
        cursor = due.cursor
        while True:
            chunk = await self.db.read(next_chunk, due.user_id, due.lists, cursor,
                                       self.chunk_size)
            batch: list["NewMessage"] = []
            skipped = opted_out = 0
            for r in chunk:
                if r.opted_out:
                    opted_out += 1
                    continue
                text = render(due.body, contact_values(r.phone, r.fullname, r.fields))
                try:
                    message = self.messages.build(principal, due.sender, r.phone, text,
                                                  due.options)
                except errors.RecipientOptedOut:
                    opted_out += 1
                    continue
                except errors.RpcgwError as exc:
                    log.info("campaign %s: contact %s skipped: %s", due.id, r.contact_id, exc)
                    skipped += 1
                    continue
                message.campaign_id = due.id
                message.idempotency_key = f"campaign:{due.id}:{r.contact_id}"
                message.send_at = HOLD_MS
                batch.append(message)
            if batch:
                await self.messages.send_many(batch)
            new_cursor = chunk[-1].contact_id if chunk else cursor
            go_on = await self.db.write(
                advance, self.db, self.messages, due.id, self.node, cursor, new_cursor,
                len(batch), skipped + opted_out, opted_out, len(chunk) < self.chunk_size)
            if batch:
                for wake in self.messages.on_queued:  # released: due now
                    wake()
            if not go_on:
                return
            cursor = new_cursor
