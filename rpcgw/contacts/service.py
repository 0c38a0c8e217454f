"""Contact lists, contacts and opt-outs: validation, then one database job per call.

The JSON-RPC handlers (``rpcgw.api.contacts``) call :class:`ContactService`; the command
line (``rpcgw contacts import``) calls :func:`prepare_rows` and the same ``store``
functions through ``Database.run_sync``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import errors
from ..phone import InvalidNumber, normalize
from . import store
from .store import ContactChanges, ContactInput

if TYPE_CHECKING:
    from ..auth import Principal
    from ..config import Settings
    from ..db import Database
    from ..services.messages import MessageService
    from .optout import OptOutCache

#: Rows of ``contacts.import`` (and of one CLI import) per database job: large enough to
#: be fast, small enough that a send waiting behind it is not held up long.
IMPORT_CHUNK = 1000
MAX_IMPORT_ROWS = 10_000
MAX_FIELDS = 20
MAX_FIELD_LENGTH = 255
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


def normalize_phone(raw: Any, region: str, *, param: str, field: str | None = None) -> str:
    if not isinstance(raw, str):
        raise errors.InvalidParams("must be a string", param=param, field=field)
    try:
        return normalize(raw, region)
    except InvalidNumber as exc:
        raise errors.InvalidParams(str(exc), param=param, field=field) from None


def check_fields(fields: Any, *, param: str, field: str) -> dict[str, str]:
    """Custom fields: at most 20 names of letters, digits and _, values up to 255 chars."""
    if not isinstance(fields, dict):
        raise errors.InvalidParams("must be an object", param=param, field=field)
    if len(fields) > MAX_FIELDS:
        raise errors.InvalidParams(f"at most {MAX_FIELDS} fields", param=param, field=field)
    for name, value in fields.items():
        if not FIELD_NAME.match(name):
            raise errors.InvalidParams(
                f"field name {name!r}: letters, digits and _, not starting with a digit, "
                "at most 32", param=param, field=f"{field}.{name}")
        if not isinstance(value, str) or len(value) > MAX_FIELD_LENGTH:
            raise errors.InvalidParams(f"a text of at most {MAX_FIELD_LENGTH} characters",
                                       param=param, field=f"{field}.{name}")
    return dict(fields)


@dataclass(slots=True)
class PreparedRows:
    """Import rows after validation: the valid ones (with their row index) and the
    outcome of the rejected ones."""

    valid: list[tuple[int, ContactInput]]
    rejected: dict[int, dict[str, Any]]


def prepare_rows(rows: list[dict[str, Any]], region: str) -> PreparedRows:
    """Validate import rows one by one; a bad row is rejected with its reason, never the
    whole import.  A number given twice is kept once (the first row)."""
    valid: list[tuple[int, ContactInput]] = []
    rejected: dict[int, dict[str, Any]] = {}
    first_row: dict[str, int] = {}
    for index, row in enumerate(rows):
        raw = row.get("phone")
        try:
            phone = normalize_phone(raw, region, param="rows", field=f"rows[{index}].phone")
            fullname = row.get("fullname")
            if fullname is not None and (not isinstance(fullname, str) or len(fullname) > 100):
                raise errors.InvalidParams("a text of at most 100 characters", param="rows",
                                           field=f"rows[{index}].fullname")
            fields = None
            if row.get("fields"):
                fields = check_fields(row["fields"], param="rows",
                                      field=f"rows[{index}].fields")
        except errors.InvalidParams as exc:
            rejected[index] = {"index": index, "phone": raw if isinstance(raw, str) else "",
                               "status": "rejected", "reason": exc.data.get("reason", "")}
            continue
        if phone in first_row:
            rejected[index] = {"index": index, "phone": phone, "status": "rejected",
                               "reason": f"the same number as row {first_row[phone]}"}
            continue
        first_row[phone] = index
        valid.append((index, ContactInput(phone, fullname.strip() if fullname else fullname,
                                          fields)))
    return PreparedRows(valid, rejected)


def import_result(total: int, prepared: PreparedRows,
                  outcomes: dict[int, tuple[str, int]],
                  phones: dict[int, str]) -> dict[str, Any]:
    """The answer of ``contacts.import``: counts and one entry per row, in order."""
    results: list[dict[str, Any]] = []
    counts = {"added": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    for index in range(total):
        if index in prepared.rejected:
            entry = prepared.rejected[index]
        else:
            outcome, ident = outcomes[index]
            entry = {"index": index, "phone": phones[index], "status": outcome, "id": ident}
        counts[entry["status"]] += 1
        results.append(entry)
    return {**counts, "rows": results}


class ContactService:
    """The operations behind ``contacts.*``; each one database job (imports: one per
    1000 rows)."""

    def __init__(self, db: "Database", settings: "Settings", messages: "MessageService",
                 optouts: "OptOutCache") -> None:
        self.db = db
        self.settings = settings
        self.messages = messages
        self.optouts = optouts

    # -- lists ----------------------------------------------------------------------------

    async def create_list(self, principal: "Principal", title: str) -> dict[str, Any]:
        return await self.db.write(store.create_list, principal.user_id, _title(title))

    async def get_lists(self, principal: "Principal") -> list[dict[str, Any]]:
        return await self.db.read(store.get_lists, principal.user_id)

    async def update_list(self, principal: "Principal", list_id: int,
                          fields: dict[str, Any]) -> dict[str, Any]:
        title = _title(fields["title"], "fields", "fields.title")
        return await self.db.write(store.update_list, principal.user_id, list_id, title)

    async def delete_list(self, principal: "Principal", list_id: int) -> bool:
        return await self.db.write(store.delete_list, principal.user_id, list_id)

    # -- contacts ---------------------------------------------------------------------------

    def _region(self) -> str:
        return str(self.settings.default_region)

    async def create(self, principal: "Principal", contact: dict[str, Any]) -> dict[str, Any]:
        phone = normalize_phone(contact["phone"], self._region(), param="contact",
                                field="contact.phone")
        fields = None
        if contact.get("fields"):
            fields = check_fields(contact["fields"], param="contact", field="contact.fields")
        fullname = contact.get("fullname")
        given = ContactInput(phone, fullname.strip() if fullname is not None else None, fields)
        return await self.db.write(store.upsert_contact, principal.user_id, given,
                                   list(contact.get("lists") or []))

    async def update(self, principal: "Principal", contact_id: int,
                     fields: dict[str, Any]) -> dict[str, Any]:
        changes = ContactChanges(
            phone=None if fields.get("phone") is None else normalize_phone(
                fields["phone"], self._region(), param="fields", field="fields.phone"),
            fullname=None if fields.get("fullname") is None else fields["fullname"].strip(),
            fields=None if fields.get("fields") is None else check_fields(
                fields["fields"], param="fields", field="fields.fields"),
            lists=None if fields.get("lists") is None else list(fields["lists"]),
            opted_out=fields.get("opted_out"))
        result = await self.db.write(self._update_job, principal.user_id, contact_id, changes)
        if changes.opted_out is not None:
            await self.optouts.refresh()
        return result

    def _update_job(self, user_id: int, contact_id: int,
                    changes: ContactChanges) -> dict[str, Any]:
        result = store.update_contact(user_id, contact_id, changes)
        if changes.opted_out:
            self._cancel_campaign_messages(user_id, result["phone"])
        return result

    def _cancel_campaign_messages(self, user_id: int, phone: str) -> None:
        """Writer thread: an opted-out number gets no more campaign messages, including
        those already queued (not yet handed to a modem)."""
        self.messages.cancel_rows(store.pending_campaign_messages(user_id, phone))

    async def get(self, principal: "Principal", contact_id: int) -> dict[str, Any]:
        return await self.db.read(store.get_contact, principal.user_id, contact_id)

    async def search(self, principal: "Principal", filters: dict[str, Any]) -> dict[str, Any]:
        return await self.db.read(store.search_contacts, principal.user_id, filters)

    async def delete(self, principal: "Principal", contact_id: int) -> bool:
        return await self.db.write(store.delete_contact, principal.user_id, contact_id)

    async def import_rows(self, principal: "Principal", list_id: int,
                          rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Validate every row, then store the valid ones 1000 at a time (separate
        transactions, so sends are not held up behind 10,000 rows; re-running an import
        that failed half-way is harmless: rows already there answer ``unchanged``)."""
        if len(rows) > MAX_IMPORT_ROWS:
            raise errors.InvalidParams(f"at most {MAX_IMPORT_ROWS} rows per call", param="rows")
        prepared = prepare_rows(rows, self._region())
        await self.db.read(store.check_list, principal.user_id, list_id, "list_id")
        outcomes: dict[int, tuple[str, int]] = {}
        for start in range(0, len(prepared.valid), IMPORT_CHUNK):
            part = prepared.valid[start:start + IMPORT_CHUNK]
            done = await self.db.write(store.import_contacts, principal.user_id, list_id,
                                       [c for _, c in part])
            outcomes.update({index: outcome for (index, _), outcome in zip(part, done)})
        phones = {index: c.phone for index, c in prepared.valid}
        return import_result(len(rows), prepared, outcomes, phones)

    # -- opt-outs ---------------------------------------------------------------------------

    async def get_optouts(self, principal: "Principal") -> list[dict[str, Any]]:
        return await self.db.read(store.get_optouts, principal.user_id)

    async def opt_out(self, principal: "Principal", raw_phone: str) -> dict[str, Any]:
        """Opt a number out by hand (idempotent: an opted-out number stays as it is)."""
        phone = normalize_phone(raw_phone, self._region(), param="phone")
        if await self.db.write(self._optout_job, principal.user_id, phone, True):
            await self.optouts.refresh()
        found = await self.db.read(store.get_optout, principal.user_id, phone)
        assert found is not None
        return found

    async def opt_in(self, principal: "Principal", raw_phone: str) -> bool:
        """Lift an opt-out (as a START reply does)."""
        phone = normalize_phone(raw_phone, self._region(), param="phone")
        if not await self.db.write(self._optout_job, principal.user_id, phone, False):
            raise errors.NotFound(f"{phone} has not opted out", param="phone")
        await self.optouts.refresh()
        return True

    def _optout_job(self, user_id: int, phone: str, active: bool) -> bool:
        changed = store.set_optout(user_id, phone, active, "api")
        if active:
            self._cancel_campaign_messages(user_id, phone)
        return changed


def _title(value: str, param: str = "title", field: str | None = None) -> str:
    title = value.strip()
    if not title:
        raise errors.InvalidParams("must not be empty", param=param, field=field)
    return title
