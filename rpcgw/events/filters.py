"""Which callbacks an event matches: event name, device, and a filter on the text.

Filter types (SMS Gateway Me's, plus seed 002's keyword groups):

* ``contains``, ``equals``, ``starts_with``, ``ends_with``: case-insensitive (Unicode
  case folding), on the whole text;
* ``keyword``: the first word of the text, case-insensitive, without the punctuation
  around it (``"Stop!"`` is the keyword ``STOP``), as keyword platforms match;
* ``regex``: a regular expression (``regex`` module syntax, case-sensitive unless it
  says ``(?i)``), searched anywhere in the text.

Regular expressions come from users and run in the database writer thread, so they
are bounded three ways: a pattern is at most ``MAX_FILTER`` characters and must compile
when the callback is saved; matching uses the ``regex`` module, whose ``timeout`` stops
a catastrophic backtrack (``(a+)+$`` on ``aaaa…b``) after ``REGEX_TIMEOUT`` seconds; a
timed-out match counts as no match and is logged.  A pattern cannot be judged safe by
inspection in general, so the timeout is the guarantee and the compile check only gives
early feedback.
"""

from __future__ import annotations

import logging
from typing import Any

import regex

from .. import status as st

log = logging.getLogger("rpcgw.events")

MAX_FILTER = 256
REGEX_TIMEOUT = 0.02
FILTER_TYPES = ("contains", "equals", "starts_with", "ends_with", "regex", "keyword")

#: Callback event names, with SMS Gateway Me's SDK spellings as aliases.
CALLBACK_EVENTS = ("received", "sent", "delivered", "failed")
EVENT_ALIASES = {f"MESSAGE_{e.upper()}": e for e in CALLBACK_EVENTS}
EVENT_ALIASES.update({e.upper(): e for e in CALLBACK_EVENTS})

_PUNCTUATION = ".,;:!?¡¿\"'()[]{}<>«»“”‘’"


def normalize_event(name: str) -> str | None:
    lowered = name.strip()
    if lowered.lower() in CALLBACK_EVENTS:
        return lowered.lower()
    return EVENT_ALIASES.get(lowered.upper())


def callback_event(direction: str, new_status: str) -> str | None:
    """The callback event a status change is, if any."""
    if direction == "IN":
        return "received" if new_status == st.RECEIVED else None
    if new_status == st.SENT:
        return "sent"
    if new_status == st.DELIVERED:
        return "delivered"
    if new_status in (st.FAILED, st.ERROR, st.EXPIRED):
        return "failed"
    return None


def keyword_of(text: str) -> str:
    words = text.split(None, 1)
    return words[0].strip(_PUNCTUATION).upper() if words else ""


class InvalidFilter(ValueError):
    pass


class TextFilter:
    """A compiled filter; ``matches(text)`` is cheap and never runs unbounded."""

    __slots__ = ("kind", "value", "_folded", "_regex")

    def __init__(self, kind: str | None, value: str | None) -> None:
        self.kind = kind or None
        self.value = value or ""
        self._folded = self.value.casefold()
        self._regex: Any = None
        if self.kind is None:
            return
        if self.kind not in FILTER_TYPES:
            raise InvalidFilter(f"unknown filter type {self.kind!r}")
        if len(self.value) > MAX_FILTER:
            raise InvalidFilter(f"a filter has at most {MAX_FILTER} characters")
        if self.kind == "regex":
            try:
                self._regex = regex.compile(self.value)
            except (regex.error, ValueError, OverflowError) as exc:
                raise InvalidFilter(f"not a valid regular expression: {exc}") from None
        elif self.kind == "keyword" and not self.value.strip():
            raise InvalidFilter("a keyword filter needs a keyword")

    def matches(self, text: str) -> bool:
        kind = self.kind
        if kind is None or (not self.value and kind != "regex"):
            return True
        if kind == "regex":
            try:
                return self._regex.search(text, timeout=REGEX_TIMEOUT) is not None
            except TimeoutError:
                log.warning("a callback's regex filter timed out; treated as no match")
                return False
        if kind == "keyword":
            return keyword_of(text) == self.value.strip().upper()
        folded = text.casefold()
        if kind == "contains":
            return self._folded in folded
        if kind == "equals":
            return folded.strip() == self._folded.strip()
        if kind == "starts_with":
            return folded.startswith(self._folded)
        return folded.endswith(self._folded)
