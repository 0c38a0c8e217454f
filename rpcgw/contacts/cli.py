"""``rpcgw contacts import`` and ``rpcgw campaign create|watch|list``.

These commands work on the database directly, like ``rpcgw user add``: they need no
running gateway and no credentials, only ``--database``/``--config``.  They call the
same validation and database jobs as the API.  A campaign created here is picked up by a
running gateway within ``campaign_poll_seconds`` (its runner polls the campaign table):
the gateway, not the command, creates and sends the messages, so events, opt-out checks
and priorities are exactly those of a campaign created through ``campaigns.create``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import errors
from ..auth import Principal
from ..models import Meta, User
from . import store
from .campaigns import CANCELLED, COMPLETED, create_campaign, get_campaign, list_campaigns, prepare
from .service import FIELD_NAME, IMPORT_CHUNK, import_result, prepare_rows

if TYPE_CHECKING:
    from ..config import Settings
    from ..db import Database

T = TypeVar("T")

_PHONE_COLUMNS = ("phone", "number", "sendto", "msisdn")
_NAME_COLUMNS = ("fullname", "name")


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from ..cli import _add_common

    contacts = subparsers.add_parser("contacts", help="manage contacts")
    actions = contacts.add_subparsers(dest="contacts_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import", help="import contacts from a CSV file into a list",
        description="Import a CSV file with a header row: a phone column (phone, number, "
                    "sendto or msisdn), optionally fullname (or name); every other column "
                    "becomes a custom field.  The list is created if it does not exist.")
    imp.add_argument("file", metavar="FILE.csv")
    imp.add_argument("--list", required=True, metavar="NAME", help="contact list title")
    imp.add_argument("--user", required=True, metavar="LOGIN", help="owner of the contacts")
    _add_common(imp)
    imp.set_defaults(func=cmd_import)

    campaign = subparsers.add_parser("campaign", help="create and follow campaigns")
    actions = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create a campaign (a running gateway sends it)",
        description="Create a campaign to every number of the lists.  The body may use "
                    "{fullname}, {phone} and custom {field} placeholders.")
    create.add_argument("--user", required=True, metavar="LOGIN")
    create.add_argument("--title", required=True)
    body = create.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="message text")
    body.add_argument("--body-file", metavar="FILE", help="read the message text from FILE")
    create.add_argument("--list", required=True, action="append", dest="lists", metavar="NAME",
                        help="contact list title (repeat for several lists)")
    create.add_argument("--from", dest="sender", default="", help="sender (default: the SIM)")
    create.add_argument("--device-id", type=int, help="send through this device only")
    create.add_argument("--sim", type=int, help="SIM slot of the device")
    create.add_argument("--send-at", metavar="'YYYY-MM-DD HH:MM:SS'", help="start time (UTC)")
    create.add_argument("--priority", type=int, help="message priority, -100..0")
    create.add_argument("--watch", action="store_true", help="then show its progress")
    _add_common(create)
    create.set_defaults(func=cmd_campaign_create)

    watch = actions.add_parser("watch", help="show a campaign's progress until it ends")
    watch.add_argument("id", type=int)
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between updates")
    _add_common(watch)
    watch.set_defaults(func=cmd_campaign_watch)

    listing = actions.add_parser("list", help="list a user's campaigns")
    listing.add_argument("--user", required=True, metavar="LOGIN")
    _add_common(listing)
    listing.set_defaults(func=cmd_campaign_list)


# -- plumbing -----------------------------------------------------------------------------

def _open(args: argparse.Namespace) -> tuple["Settings", "Database"]:
    from ..cli import load_settings
    from ..db import Database

    settings = load_settings(args)
    db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
    db.bind()
    return settings, db


def _read(db: "Database", fn: Callable[..., T], *args: Any) -> T:
    """A read outside any write transaction (``run_sync`` would take SQLite's write
    lock for it)."""
    with db.pw.connection_context():
        return fn(*args)


def _user(db: "Database", login: str) -> Principal:
    row = _read(db, lambda: User.get_or_none(User.login == login))
    if row is None:
        raise errors.NotFound(f"no user {login!r}")
    return Principal(user_id=row.id, login=row.login, is_admin=row.is_admin, method="cli")


def _err() -> Console:
    return Console(stderr=True)


# -- contacts import ----------------------------------------------------------------------

def read_csv(path: str) -> list[dict[str, Any]]:
    """CSV rows as ``contacts.import`` rows (phone, fullname, fields)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(f, dialect=dialect)
        header = [h.strip() for h in reader.fieldnames or []]
        lowered = [h.lower() for h in header]
        phone_col = next((header[lowered.index(c)] for c in _PHONE_COLUMNS if c in lowered),
                         None)
        if phone_col is None:
            raise ValueError(f"{path}: no phone column (one of {', '.join(_PHONE_COLUMNS)})")
        name_col = next((header[lowered.index(c)] for c in _NAME_COLUMNS if c in lowered), None)
        extra = [h for h in header if h not in (phone_col, name_col) and h]
        for name in extra:
            if not FIELD_NAME.match(name):
                raise ValueError(f"{path}: column {name!r} cannot be a field name (letters, "
                                 "digits and _, not starting with a digit)")
        rows = []
        for raw in reader:
            record = {(k or "").strip(): (v or "").strip() for k, v in raw.items()
                      if isinstance(v, str)}
            row: dict[str, Any] = {"phone": record.get(phone_col, "")}
            if name_col and record.get(name_col):
                row["fullname"] = record[name_col]
            fields = {k: record[k] for k in extra if record.get(k)}
            if fields:
                row["fields"] = fields
            rows.append(row)
        return rows


def cmd_import(args: argparse.Namespace) -> int:
    settings, db = _open(args)
    try:
        principal = _user(db, args.user)
        rows = read_csv(args.file)
        list_id = _read(db, store.find_list, principal.user_id, args.list)
        if list_id is None:
            list_id = db.run_sync(store.create_list, principal.user_id, args.list)["id"]
            print(f"created list {args.list!r} (id {list_id})")
        prepared = prepare_rows(rows, settings.default_region)
        outcomes: dict[int, tuple[str, int]] = {}
        with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=_err()) as progress:
            task = progress.add_task("import", total=len(rows))
            progress.advance(task, len(prepared.rejected))
            for start in range(0, len(prepared.valid), IMPORT_CHUNK):
                part = prepared.valid[start:start + IMPORT_CHUNK]
                done = db.run_sync(store.import_contacts, principal.user_id, list_id,
                                   [c for _, c in part])
                outcomes.update({i: outcome for (i, _), outcome in zip(part, done)})
                progress.advance(task, len(part))
        result = import_result(len(rows), prepared, outcomes,
                               {i: c.phone for i, c in prepared.valid})
        print(f"{Path(args.file).name} → list {args.list!r}: {result['added']} added, "
              f"{result['updated']} updated, {result['unchanged']} unchanged, "
              f"{result['rejected']} rejected")
        for entry in result["rows"]:
            if entry["status"] == "rejected":
                # Row numbers as in the file: the header is line 1.
                print(f"  line {entry['index'] + 2}: {entry['phone']!r}: {entry['reason']}")
        return 0
    finally:
        db.close_sync()


# -- campaigns ----------------------------------------------------------------------------

def cmd_campaign_create(args: argparse.Namespace) -> int:
    from ..ids import HashCodec
    from ..services.messages import MessageService

    settings, db = _open(args)
    try:
        principal = _user(db, args.user)
        list_ids = []
        for title in args.lists:
            list_id = _read(db, store.find_list, principal.user_id, title)
            if list_id is None:
                raise errors.NotFound(f"no contact list {title!r}")
            list_ids.append(list_id)
        body = args.body if args.body is not None else Path(args.body_file).read_text("utf-8")
        raw: dict[str, Any] = {"title": args.title, "body": body, "lists": list_ids,
                               "from": args.sender, "device_id": args.device_id,
                               "sim": args.sim, "send_at": args.send_at}
        if args.priority is not None:
            if not -100 <= args.priority <= 0:
                raise errors.InvalidParams("--priority must be between -100 and 0")
            raw["options"] = {"priority": args.priority}
        key = _read(db, lambda: Meta.get_by_id("hash_key").value)
        messages = MessageService(db, settings, HashCodec(key, "sms"))
        spec = prepare(messages, principal, raw, int(settings.campaign_priority))
        campaign = db.run_sync(create_campaign, principal.user_id, spec)
        print(f"created campaign {campaign['id']} ({campaign['progress']['recipients']} "
              f"recipients, {campaign['status']}); a running gateway sends it")
        if args.watch:
            return _watch(db, campaign["id"], 0.5)
        return 0
    finally:
        db.close_sync()


def cmd_campaign_watch(args: argparse.Namespace) -> int:
    _, db = _open(args)
    try:
        return _watch(db, args.id, max(0.05, args.interval))
    finally:
        db.close_sync()


def describe(progress: dict[str, Any]) -> str:
    return (f"queued {progress['queued']} · sent {progress['sent']} · delivered "
            f"{progress['delivered']} · failed {progress['failed']} · cancelled "
            f"{progress['cancelled']} · skipped {progress['skipped']} (opted out "
            f"{progress['opted_out']})")


def finished(progress: dict[str, Any]) -> int:
    """Recipients that need nothing more from the gateway (sent on, or not sent)."""
    return (progress["sent"] + progress["delivered"] + progress["failed"]
            + progress["cancelled"] + progress["skipped"])


def _watch(db: "Database", campaign_id: int, interval: float) -> int:
    campaign = _read(db, get_campaign, None, campaign_id)
    with Progress(TextColumn("[bold]{task.fields[status]:<9}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=_err()) as bar:
        task = bar.add_task("", total=max(1, campaign["progress"]["recipients"]),
                            status=campaign["status"])
        while True:
            progress = campaign["progress"]
            bar.update(task, total=max(1, progress["recipients"]), completed=finished(progress),
                       description=describe(progress), status=campaign["status"])
            if campaign["status"] in (COMPLETED, CANCELLED):
                break
            time.sleep(interval)
            campaign = _read(db, get_campaign, None, campaign_id)
    print(f"campaign {campaign_id} {campaign['status']}: {describe(campaign['progress'])}")
    return 0


def cmd_campaign_list(args: argparse.Namespace) -> int:
    _, db = _open(args)
    try:
        principal = _user(db, args.user)
        for c in _read(db, list_campaigns, principal.user_id):
            print(f"{c['id']}\t{c['status']}\t{c['progress']['recipients']}\t{c['title']}")
        return 0
    finally:
        db.close_sync()


__all__ = ["add_commands", "read_csv", "describe", "finished"]
