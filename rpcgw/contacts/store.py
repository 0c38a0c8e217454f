"""Database jobs for contact lists, contacts and opt-outs.

Every function takes the acting ``user_id`` first and runs inside a transaction: in the
gateway's writer thread (``await db.write(fn, …)``) or reader pool (``db.read``), or in
the command line's own thread (``db.run_sync``), so the API and ``rpcgw contacts import``
share one implementation.  Inputs arrive validated (``rpcgw.contacts.service``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import orjson
from peewee import JOIN, PostgresqlDatabase, fn as sqlfn

from .. import errors
from ..models import Message, database_proxy, now_ms
from ..timefmt import fmt_ms
from .models import Contact, ContactList, ContactListMember, OptOut, OptOutVersion

#: Rows per IN (…) list or multi-row INSERT: far below every backend's parameter limit.
CHUNK = 500
MAX_OPTOUT_LIST = 10_000


@dataclass(frozen=True, slots=True)
class ContactInput:
    """One validated contact as given: ``None`` keeps what is stored."""

    phone: str
    fullname: str | None = None
    fields: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ContactChanges:
    """Validated ``contacts.update`` fields; ``None`` leaves a value as it is."""

    phone: str | None = None
    fullname: str | None = None
    fields: dict[str, str] | None = None
    lists: list[int] | None = None
    opted_out: bool | None = None


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _fields_json(fields: dict[str, str]) -> str:
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


def encode_cursor(ident: int) -> str:
    return base64.urlsafe_b64encode(str(ident).encode()).decode()


def decode_cursor(cursor: str, field: str = "filters.cursor") -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidParams("not a cursor returned by a search", param="filters",
                                   field=field) from None


# -- contact lists ----------------------------------------------------------------------

def _list_dict(row: ContactList, count: int) -> dict[str, Any]:
    return {"id": row.id, "title": row.title, "contacts": count,
            "date_creation": fmt_ms(row.created_at), "date_update": fmt_ms(row.updated_at)}


def _member_counts(list_ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for part in _chunks(list_ids):
        query = (ContactListMember
                 .select(ContactListMember.contact_list, sqlfn.COUNT(ContactListMember.contact))
                 .where(ContactListMember.contact_list.in_(list(part)))
                 .group_by(ContactListMember.contact_list).tuples())
        counts.update({list_id: n for list_id, n in query})
    return counts


def _own_list(user_id: int, list_id: int, param: str = "id") -> ContactList:
    row = ContactList.get_or_none((ContactList.id == list_id) & (ContactList.user == user_id))
    if row is None:
        raise errors.NotFound(f"no contact list {list_id}", param=param)
    return row


def _title_taken(user_id: int, title: str, except_id: int | None = None) -> None:
    query = ContactList.select(ContactList.id).where(ContactList.user == user_id,
                                                     ContactList.title == title)
    if except_id is not None:
        query = query.where(ContactList.id != except_id)
    if query.exists():
        raise errors.Conflict(f"a contact list named {title!r} exists", title=title)


def create_list(user_id: int, title: str) -> dict[str, Any]:
    _title_taken(user_id, title)
    now = now_ms()
    row = ContactList.create(user=user_id, title=title, created_at=now, updated_at=now)
    return _list_dict(row, 0)


def get_lists(user_id: int) -> list[dict[str, Any]]:
    rows = list(ContactList.select().where(ContactList.user == user_id).order_by(ContactList.id))
    counts = _member_counts([r.id for r in rows])
    return [_list_dict(r, counts.get(r.id, 0)) for r in rows]


def update_list(user_id: int, list_id: int, title: str) -> dict[str, Any]:
    row = _own_list(user_id, list_id)
    _title_taken(user_id, title, except_id=list_id)
    row.title, row.updated_at = title, now_ms()
    row.save()
    return _list_dict(row, _member_counts([row.id]).get(row.id, 0))


def delete_list(user_id: int, list_id: int) -> bool:
    """Delete a list and its memberships; the contacts stay."""
    _own_list(user_id, list_id)
    ContactListMember.delete().where(ContactListMember.contact_list == list_id).execute()
    ContactList.delete().where(ContactList.id == list_id).execute()
    return True


def check_list(user_id: int, list_id: int, param: str) -> None:
    _own_list(user_id, list_id, param=param)


def find_list(user_id: int, title: str) -> int | None:
    row = ContactList.get_or_none((ContactList.user == user_id) & (ContactList.title == title))
    return None if row is None else int(row.id)


def check_lists(user_id: int, list_ids: Iterable[int], param: str, field: str) -> None:
    wanted = set(list_ids)
    if not wanted:
        return
    found = {r.id for r in ContactList.select(ContactList.id).where(
        ContactList.user == user_id, ContactList.id.in_(sorted(wanted)))}
    missing = sorted(wanted - found)
    if missing:
        raise errors.NotFound(f"no contact list {missing[0]}", param=param, field=field)


# -- contacts ---------------------------------------------------------------------------

def _contains(field: Any, needle: str) -> Any:
    """Case-insensitive substring test, without LIKE's wildcards to escape."""
    if isinstance(database_proxy.obj, PostgresqlDatabase):
        return sqlfn.strpos(sqlfn.lower(field), needle) > 0
    return sqlfn.instr(sqlfn.lower(field), needle) > 0


def contact_objects(user_id: int, rows: list[Contact]) -> list[dict[str, Any]]:
    """Contact objects with their lists and opt-out flag (two queries per page)."""
    if not rows:
        return []
    memberships: dict[int, list[int]] = {r.id: [] for r in rows}
    for part in _chunks(list(memberships)):
        for contact_id, list_id in (ContactListMember
                                    .select(ContactListMember.contact,
                                            ContactListMember.contact_list)
                                    .where(ContactListMember.contact.in_(list(part)))
                                    .order_by(ContactListMember.contact_list).tuples()):
            memberships[contact_id].append(list_id)
    opted: set[str] = set()
    for part in _chunks([r.phone for r in rows]):
        opted.update(p for (p,) in OptOut.select(OptOut.phone).where(
            OptOut.user == user_id, OptOut.phone.in_(list(part)),
            OptOut.active == True).tuples())  # noqa: E712
    return [{
        "id": r.id, "phone": r.phone, "fullname": r.fullname,
        "fields": orjson.loads(r.fields or "{}"), "lists": memberships[r.id],
        "opted_out": r.phone in opted, "date_creation": fmt_ms(r.created_at),
        "date_update": fmt_ms(r.updated_at),
    } for r in rows]


def _own_contact(user_id: int, contact_id: int) -> Contact:
    row = Contact.get_or_none((Contact.id == contact_id) & (Contact.user == user_id))
    if row is None:
        raise errors.NotFound(f"no contact {contact_id}", param="id")
    return row


def _add_members(list_ids: Iterable[int], contact_ids: Sequence[int], now: int) -> None:
    for list_id in list_ids:
        for part in _chunks(contact_ids):
            (ContactListMember.insert_many(
                [{"contact_list": list_id, "contact": c, "added_at": now} for c in part])
             .on_conflict_ignore().execute())


def upsert_contact(user_id: int, contact: ContactInput, lists: list[int]) -> dict[str, Any]:
    """``contacts.create``: a number is stored once per user; giving it again updates the
    name (when given), merges the fields and adds it to the lists, without error."""
    check_lists(user_id, lists, "contact", "contact.lists")
    statuses = _upsert(user_id, [contact], lists)
    return contact_objects(user_id, [Contact.get_by_id(statuses[0][1])])[0]


def import_contacts(user_id: int, list_id: int,
                    contacts: list[ContactInput]) -> list[tuple[str, int]]:
    """``contacts.import``: (outcome, contact id) per row, outcome ``added``, ``updated``
    (name or fields changed, or newly in the list) or ``unchanged``.  Phones are unique
    among ``contacts`` (the service rejects repeated rows before)."""
    _own_list(user_id, list_id, param="list_id")
    return _upsert(user_id, contacts, [list_id])


def _upsert(user_id: int, contacts: list[ContactInput],
            lists: list[int]) -> list[tuple[str, int]]:
    now = now_ms()
    lists = sorted(set(lists))
    existing: dict[str, Contact] = {}
    for part in _chunks([c.phone for c in contacts]):
        for row in Contact.select().where(Contact.user == user_id,
                                          Contact.phone.in_(list(part))):
            existing[row.phone] = row
    in_all_lists: set[int] = set()
    if existing and lists:
        seen: dict[int, int] = {}
        for part in _chunks([r.id for r in existing.values()]):
            for (contact_id,) in (ContactListMember.select(ContactListMember.contact)
                                  .where(ContactListMember.contact.in_(list(part)),
                                         ContactListMember.contact_list.in_(lists))
                                  .tuples()):
                seen[contact_id] = seen.get(contact_id, 0) + 1
        in_all_lists = {c for c, n in seen.items() if n == len(lists)}
    outcomes: dict[str, str] = {}
    new_rows: list[dict[str, Any]] = []
    for c in contacts:
        row = existing.get(c.phone)
        if row is None:
            new_rows.append({"user": user_id, "phone": c.phone, "fullname": c.fullname or "",
                             "fields": _fields_json(c.fields or {}), "created_at": now,
                             "updated_at": now})
            outcomes[c.phone] = "added"
            continue
        changes: dict[Any, Any] = {}
        if c.fullname is not None and c.fullname != row.fullname:
            changes[Contact.fullname] = c.fullname
        if c.fields:
            stored = orjson.loads(row.fields or "{}")
            merged = {**stored, **c.fields}
            if merged != stored:
                changes[Contact.fields] = _fields_json(merged)
        if changes:
            changes[Contact.updated_at] = now
            Contact.update(changes).where(Contact.id == row.id).execute()
        joins = bool(lists) and row.id not in in_all_lists
        outcomes[c.phone] = "updated" if changes or joins else "unchanged"
    for part in _chunks(new_rows):
        Contact.insert_many(list(part)).execute()
    ids: dict[str, int] = {phone: row.id for phone, row in existing.items()}
    added = [r["phone"] for r in new_rows]
    for part in _chunks(added):
        ids.update({phone: ident for ident, phone in Contact.select(Contact.id, Contact.phone)
                    .where(Contact.user == user_id, Contact.phone.in_(list(part))).tuples()})
    _add_members(lists, [ids[c.phone] for c in contacts], now)
    return [(outcomes[c.phone], ids[c.phone]) for c in contacts]


def get_contact(user_id: int, contact_id: int) -> dict[str, Any]:
    return contact_objects(user_id, [_own_contact(user_id, contact_id)])[0]


def update_contact(user_id: int, contact_id: int, changes: ContactChanges) -> dict[str, Any]:
    row = _own_contact(user_id, contact_id)
    now = now_ms()
    if changes.lists is not None:
        check_lists(user_id, changes.lists, "fields", "fields.lists")
    if changes.phone is not None and changes.phone != row.phone:
        if Contact.select().where(Contact.user == user_id, Contact.phone == changes.phone,
                                  Contact.id != row.id).exists():
            raise errors.Conflict(f"another contact has the number {changes.phone}",
                                  phone=changes.phone)
        row.phone = changes.phone
    if changes.fullname is not None:
        row.fullname = changes.fullname
    if changes.fields is not None:
        row.fields = _fields_json(changes.fields)
    row.updated_at = now
    row.save()
    if changes.lists is not None:
        ContactListMember.delete().where(
            ContactListMember.contact == row.id,
            ContactListMember.contact_list.not_in(changes.lists or [0])).execute()
        _add_members(changes.lists, [row.id], now)
    if changes.opted_out is not None:
        set_optout(user_id, row.phone, changes.opted_out, "api")
    return contact_objects(user_id, [row])[0]


def delete_contact(user_id: int, contact_id: int) -> bool:
    """Delete a contact and its memberships.  An opt-out of its number stays: it belongs
    to the number, not to the contact."""
    row = _own_contact(user_id, contact_id)
    ContactListMember.delete().where(ContactListMember.contact == row.id).execute()
    Contact.delete().where(Contact.id == row.id).execute()
    return True


def search_contacts(user_id: int, filters: dict[str, Any]) -> dict[str, Any]:
    query = Contact.select().where(Contact.user == user_id)
    if filters.get("list_id") is not None:
        query = query.join(ContactListMember, JOIN.INNER,
                           on=(ContactListMember.contact == Contact.id)).where(
            ContactListMember.contact_list == filters["list_id"])
    if filters.get("text"):
        needle = filters["text"].lower()
        query = query.where(_contains(Contact.fullname, needle)
                            | _contains(Contact.phone, needle)
                            | _contains(Contact.fields, needle))
    if filters.get("opted_out") is not None:
        opted = OptOut.select(OptOut.phone).where(OptOut.user == user_id,
                                                  OptOut.active == True)  # noqa: E712
        query = query.where(Contact.phone.in_(opted) if filters["opted_out"]
                            else Contact.phone.not_in(opted))
    if filters.get("count_only"):
        return {"count": query.count()}
    if filters.get("cursor"):
        query = query.where(Contact.id > decode_cursor(filters["cursor"]))
    limit = int(filters.get("limit") or 100)
    rows = list(query.order_by(Contact.id).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": contact_objects(user_id, rows),
            "next_cursor": encode_cursor(rows[-1].id) if more else None}


# -- opt-outs ---------------------------------------------------------------------------

def _bump_version() -> int:
    OptOutVersion.update(version=OptOutVersion.version + 1).where(
        OptOutVersion.id == 1).execute()
    return int(OptOutVersion.get_by_id(1).version)


def set_optout(user_id: int, phone: str, active: bool, source: str, keyword: str = "",
               message_id: int | None = None) -> bool:
    """Opt a number out (``active``) or back in; returns whether anything changed."""
    row = OptOut.get_or_none((OptOut.user == user_id) & (OptOut.phone == phone))
    if row is None and not active:
        return False
    if row is not None and row.active == active:
        return False
    now = now_ms()
    version = _bump_version()
    if row is None:
        OptOut.create(user=user_id, phone=phone, active=True, source=source, keyword=keyword,
                      message_id=message_id, version=version, created_at=now, updated_at=now)
    else:
        OptOut.update(active=active, source=source, keyword=keyword, message_id=message_id,
                      version=version, updated_at=now).where(OptOut.id == row.id).execute()
    return True


def optout_object(row: OptOut) -> dict[str, Any]:
    return {"phone": row.phone, "source": row.source, "keyword": row.keyword,
            "date_creation": fmt_ms(row.updated_at)}


def get_optouts(user_id: int) -> list[dict[str, Any]]:
    rows = (OptOut.select().where(OptOut.user == user_id, OptOut.active == True)  # noqa: E712
            .order_by(OptOut.updated_at.desc(), OptOut.id.desc()).limit(MAX_OPTOUT_LIST))
    return [optout_object(r) for r in rows]


def get_optout(user_id: int, phone: str) -> dict[str, Any] | None:
    row = OptOut.get_or_none((OptOut.user == user_id) & (OptOut.phone == phone)
                             & (OptOut.active == True))  # noqa: E712
    return None if row is None else optout_object(row)


def optout_version() -> int:
    return int(OptOutVersion.get_by_id(1).version)


def optout_changes(since: int) -> list[tuple[int, int, str, bool]]:
    """(version, user id, phone, active) of every change after ``since``, in order; with
    ``since`` 0, the active opt-outs only (a first load)."""
    query = (OptOut.select(OptOut.version, OptOut.user, OptOut.phone, OptOut.active)
             .where(OptOut.version > since).order_by(OptOut.version))
    if since == 0:
        query = query.where(OptOut.active == True)  # noqa: E712
    return [(v, u, p, bool(a)) for v, u, p, a in query.tuples()]


def pending_campaign_messages(user_id: int, phone: str) -> Any:
    """The ``where`` of a user's campaign messages to ``phone`` that no modem has taken."""
    return ((Message.user == user_id) & (Message.recipient == phone)
            & Message.campaign_id.is_null(False))
