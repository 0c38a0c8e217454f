"""The database writer on SQLite with ``synchronous = FULL``: commits are made durable by
the syncer thread, and nothing is acknowledged before its fsync (rpcgw/db.py)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rpcgw import errors
from rpcgw.db import Database


def insert(db: Database, value: str) -> int:
    cursor = db.pw.cursor()
    cursor.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (value, value))
    return cursor.lastrowid


async def started(path: Path, synchronous: str = "FULL") -> Database:
    db = Database(f"sqlite:///{path}", synchronous=synchronous)
    await db.start()
    return db


async def test_full_commits_with_normal_and_fsyncs_the_wal_itself(tmp_path: Path) -> None:
    db = await started(tmp_path / "a.db")
    try:
        assert db.pipelined
        mode = await db.read(lambda: db.pw.execute_sql("PRAGMA synchronous").fetchone()[0])
        assert mode == 1  # NORMAL: the commit itself does not wait for the disk
        syncs = db.wal_syncs
        await asyncio.gather(*(db.write(insert, db, f"k{i}") for i in range(200)))
        # Every acknowledged job was covered by an fsync; groups share them.
        assert 1 <= db.wal_syncs - syncs <= db.groups_committed
        # What was acknowledged is in the file, seen by another connection.
        other = sqlite3.connect(tmp_path / "a.db")
        assert other.execute("SELECT count(*) FROM meta WHERE key LIKE 'k%'").fetchone()[0] == 200
        other.close()
    finally:
        await db.close()


async def test_other_modes_keep_sqlite_own_syncing(tmp_path: Path) -> None:
    for mode, pragma in (("NORMAL", 1), ("EXTRA", 3)):
        db = await started(tmp_path / f"{mode}.db", mode)
        try:
            assert not db.pipelined
            assert await db.write(insert, db, "x") > 0
            assert db.wal_syncs == 0
            got = await db.read(lambda: db.pw.execute_sql("PRAGMA synchronous").fetchone()[0])
            assert got == pragma
        finally:
            await db.close()


async def test_a_failed_fsync_fails_the_jobs_it_covered(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that refuses the fsync must not let a write be acknowledged."""
    db = await started(tmp_path / "b.db")
    try:
        real = os.fdatasync
        broken = {"on": True}

        def fdatasync(fd: int) -> Any:
            if broken["on"]:
                raise OSError(5, "Input/output error")
            return real(fd)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        with pytest.raises(errors.ServiceUnavailable, match="durable"):
            await db.write(insert, db, "lost")
        # The writer and the syncer keep going once the disk is back.
        broken["on"] = False
        assert await db.write(insert, db, "kept") > 0
    finally:
        await db.close()


async def test_a_failing_job_in_a_group_still_waits_for_nothing_wrong(tmp_path: Path) -> None:
    """A job that raises is re-run alone; the others of its group are committed, synced
    and answered; the bad one gets its own error."""
    db = await started(tmp_path / "c.db")
    try:
        def bad() -> None:
            insert(db, "dup")
            insert(db, "dup")  # primary key violation

        results = await asyncio.gather(db.write(insert, db, "one"), db.write(bad),
                                       db.write(insert, db, "two"), return_exceptions=True)
        assert isinstance(results[0], int) and isinstance(results[2], int)
        assert isinstance(results[1], Exception)
        keys = await db.read(lambda: [r[0] for r in db.pw.execute_sql(
            "SELECT key FROM meta WHERE key IN ('one', 'two', 'dup') ORDER BY key")])
        assert keys == ["one", "two"]
    finally:
        await db.close()


def test_cli_writes_are_made_durable_too(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/d.db")
    try:
        db.bind()
        before = db.wal_syncs
        db.run_sync(lambda: db.pw.execute_sql(
            "INSERT INTO meta (key, value) VALUES ('cli', 'x')"))
        assert db.wal_syncs == before + 1
    finally:
        db.close_sync()
