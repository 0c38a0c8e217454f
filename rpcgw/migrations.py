"""Schema versions, applied in order at start-up (``Database.bind``).

Each migration is a function of the ``Database`` that runs in its own transaction and
records its number in ``schema_version``.  Several gateway processes may start at once on
one database: on PostgreSQL an advisory lock serialises them, on SQLite the
``BEGIN IMMEDIATE`` write lock does.

Rule for later migrations: never edit a released one; add a new function that alters
what exists (``playhouse.migrate``) and tolerates having run before.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Callable

from .contacts.models import migrate_contacts
from .events.models import migrate_events
from .models import MODELS, PARTIAL_INDEXES, Meta, SchemaVersion, now_ms

if TYPE_CHECKING:
    from .db import Database

_ADVISORY_LOCK = 0x72706367  # "rpcg"


def _v1_initial(db: "Database") -> None:
    db.pw.create_tables(MODELS, safe=True)
    for name, table, columns, unique, condition in PARTIAL_INDEXES:
        db.pw.execute_sql(f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS {name} "
                          f"ON {table} ({columns}) WHERE {condition}")
    # Keys of this installation: the permutation behind message hashes, and the key that
    # encrypts stored secrets when the configuration gives none.
    for key in ("hash_key", "secret_key"):
        Meta.insert(key=key, value=secrets.token_hex(16)).on_conflict_ignore().execute()


MIGRATIONS: tuple[Callable[["Database"], None], ...] = (_v1_initial, migrate_events,
                                                        migrate_contacts)


def current_version(db: "Database") -> int:
    if not db.pw.table_exists("schema_version"):
        return 0
    row = SchemaVersion.select(SchemaVersion.version).order_by(
        SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate(db: "Database") -> int:
    """Apply every missing migration; return the resulting version."""
    for number, migration in enumerate(MIGRATIONS, start=1):
        with db.transaction():
            if db.is_postgres:
                db.pw.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            if number <= current_version(db):
                continue
            migration(db)
            SchemaVersion.create(version=number, applied_at=now_ms())
    return len(MIGRATIONS)
