"""Opt-outs: STOP and START replies, and the in-memory answer ``sms.send`` asks.

Two halves, joined by the ``contact_optout`` table:

* :class:`OptOutListener` is a ``db.status_listeners`` entry.  It runs in the writer
  transaction that stores an incoming message, reads that message's first word and, for
  a STOP word, opts the sender out for the user the message was assigned to (and cancels
  that user's campaign messages to the number still waiting for a modem); for a START
  word it opts the number back in.  Being in the same transaction, an opt-out can never
  be lost: the STOP is stored with its effect or not at all.  For any other change (every
  outgoing status change goes through it too) it returns after one comparison.
* :class:`OptOutCache` holds every active opt-out as a set of numbers per user, so that
  the send check (``MessageService.checks``, run on the event loop for every send)
  answers from memory.  It loads the table at start and then follows the
  ``contact_optout_counter`` row: at most every ``optout_refresh_seconds`` it reads
  the counter and, if it moved, the rows changed since (``version > last seen``), which
  also picks up changes made by other gateway processes sharing the database.  A change
  made here (API, STOP reply) triggers a refresh at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Callable

from .. import errors, status as st
from ..models import Message
from ..phone import InvalidNumber, normalize
from . import store

if TYPE_CHECKING:
    from ..config import Settings
    from ..db import Database
    from ..services.lifecycle import Change
    from ..services.messages import MessageService, NewMessage

log = logging.getLogger("rpcgw.contacts")

_WORD = re.compile(r"[^\W_]+")


def keyword_list(value: str) -> frozenset[str]:
    """``"STOP, Unsubscribe"`` → ``{"STOP", "UNSUBSCRIBE"}`` (a setting's value)."""
    return frozenset(w.strip().upper() for w in value.split(",") if w.strip())


def first_word(text: str) -> str:
    """The first word of a message, upper-cased, without punctuation: ``"Stop."`` →
    ``"STOP"``.  Only the first word counts, so "stop by tomorrow?" is not caught."""
    parts = text.strip().split(maxsplit=1)
    if not parts:
        return ""
    match = _WORD.search(parts[0])
    return match.group(0).upper() if match and match.start() == 0 else ""


class OptOutListener:
    """Applies STOP/START replies inside the transaction that stores them."""

    def __init__(self, db: "Database", settings: "Settings", messages: "MessageService",
                 on_change: Callable[[], None]) -> None:
        self.db = db
        self.messages = messages
        self.region = settings.default_region
        self.stop_words = keyword_list(settings.optout_stop_words)
        self.start_words = keyword_list(settings.optout_start_words)
        self.on_change = on_change

    def __call__(self, changes: list["Change"]) -> None:
        users = {c.message_id: c.user_id for c in changes
                 if c.direction == "IN" and c.new_status == st.RECEIVED}
        if not users:
            return
        changed = False
        for ident, sender, text in (Message.select(Message.id, Message.sender, Message.text)
                                    .where(Message.id.in_(list(users))).tuples()):
            word = first_word(text)
            if word in self.stop_words:
                active = True
            elif word in self.start_words:
                active = False
            else:
                continue
            phone = self._phone(sender)
            user_id = users[ident]
            if store.set_optout(user_id, phone, active, "sms", word, ident):
                changed = True
            if active:
                self.messages.cancel_rows(store.pending_campaign_messages(user_id, phone))
        if changed:
            self.on_change()

    def _phone(self, sender: str) -> str:
        try:
            return normalize(sender, self.region)
        except InvalidNumber:
            return sender.strip()


class OptOutCache:
    """Every active opt-out, per user, in memory; follows the database (module doc)."""

    def __init__(self, db: "Database", settings: "Settings") -> None:
        self.db = db
        self.refresh_seconds = float(settings.optout_refresh_seconds)
        self._numbers: dict[int, set[str]] = {}
        self._version = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the send check (event loop, every send) ------------------------------------------

    def is_opted_out(self, user_id: int, phone: str) -> bool:
        numbers = self._numbers.get(user_id)
        return numbers is not None and phone in numbers

    def check(self, message: "NewMessage") -> None:
        """``MessageService.checks`` entry: refuse a non-ALERTING send to an opted-out
        number."""
        if message.nature == "ALERTING" or not self.is_opted_out(message.user_id,
                                                                 message.recipient):
            return
        raise errors.RecipientOptedOut(
            f"{message.recipient} has opted out (replied STOP); only messages with "
            "nature ALERTING are sent to it", to=message.recipient)

    # -- following the database -----------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.refresh()
        self._task = asyncio.create_task(self._follow(), name="rpcgw-optout-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def wake_threadsafe(self) -> None:
        """Called by the listener in the writer thread: refresh once that commits."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _follow(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.refresh_seconds)
                self._wake.clear()
                # The STOP that woke us is in a writer group that may not have committed
                # yet; a writer job queued now completes only after it did.
                await self.db.write(_barrier)
            except asyncio.TimeoutError:
                pass
            try:
                await self.refresh()
            except errors.RpcgwError as exc:
                log.warning("opt-out cache not refreshed: %s", exc)

    async def refresh(self) -> None:
        """Apply every change committed since the last refresh."""
        async with self._lock:
            version = await self.db.read(store.optout_version)
            if version == self._version:
                return
            changes = await self.db.read(store.optout_changes, self._version)
            for row_version, user_id, phone, active in changes:
                numbers = self._numbers.setdefault(user_id, set())
                if active:
                    numbers.add(phone)
                else:
                    numbers.discard(phone)
                version = max(version, row_version)
            self._version = version


def _barrier() -> None:
    """An empty writer job (see ``OptOutCache._follow``)."""
