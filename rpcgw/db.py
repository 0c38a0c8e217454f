"""The one module that owns the database.

Peewee is synchronous, so no query runs on the event loop:

* **Writes** go to one writer thread that owns a connection.  Callers ``await
  db.write(fn, *args)``; the thread takes every job waiting in its queue, runs them all in
  one transaction and commits once (group commit), then resolves their futures once the
  commit is durable, so fifty concurrent ``sms.send`` calls cost one fsync instead of
  fifty, and each is acknowledged only after the commit that holds it reached the disk.
  If any job in a group raises, the transaction is rolled back and every job of the group
  is re-run in a transaction of its own, so one bad job cannot fail or commit the others.
  Jobs must therefore only touch the database.
* **Durability is pipelined** on SQLite with ``sqlite_synchronous = "FULL"`` (the
  default).  SQLite's own FULL mode fsyncs the WAL inside every commit, while the writer
  holds the write lock: the next group (and every other process's writer) waits for the
  disk.  Instead the connections run with ``synchronous=NORMAL`` (a commit appends to
  the WAL and returns) and a syncer thread fsyncs the WAL after each commit, outside
  the lock; a group's futures are resolved only after an fsync that began after its
  commit.  So the writer runs group N+1 while group N's fsync is in flight, and one
  fsync covers every group committed before it began (WAL frames are appended in
  order, and fsync writes the whole file).  What a caller awaits is unchanged: nothing
  is acknowledged before it is on disk.  What differs: another connection can *read* a
  commit during the fraction of a millisecond before its fsync; anything that acts on a
  write (a modem's claim is a write job) waits for a later fsync that covers both.
* **Reads** run in a small thread pool, each with a pooled connection.  SQLite in WAL
  mode lets them proceed while the writer commits.

PostgreSQL works the same way; several gateway processes or nodes may share one
database (claims use ``FOR UPDATE SKIP LOCKED`` there, compare-and-set on SQLite).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import queue
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from . import migrations
from .errors import ServiceUnavailable
from .models import database_proxy

log = logging.getLogger("rpcgw.db")

T = TypeVar("T")

#: Most jobs committed together; bounds the latency a very large group adds.
MAX_GROUP = 512
#: How often the SQLite WAL is checkpointed.  Often, so that each checkpoint has little
#: to copy: a checkpoint ends with an fsync of the database file, and on ext4 the
#: writer's next commit (its own fsync of the WAL) waits behind it.  Checkpointing every
#: second under a steady load made one commit in a hundred wait 300–900 ms; every 0.1 s
#: keeps that wait to a few ms (docs/benchmarks.md).  An empty WAL makes it a no-op.
CHECKPOINT_SECONDS = 0.1
#: Bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER: 999 before 3.32).
_SQLITE_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def open_peewee(url: str, *, synchronous: str = "FULL") -> peewee.Database:
    """Make a peewee database from a URL (``sqlite:///file.db`` or ``postgresql://…``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path.db and sqlite:////absolute/path.db, as SQLAlchemy.
        path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise ValueError("a SQLite database must be a file: sqlite:///rpcgw.db")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown sqlite synchronous mode {synchronous!r}")
        return PooledSqliteDatabase(
            path,
            max_connections=16,
            stale_timeout=300,
            check_same_thread=False,
            pragmas={
                "journal_mode": "wal",
                "synchronous": synchronous.upper(),
                "foreign_keys": 1,
                "busy_timeout": 10000,
                # Checkpoints run in their own thread (Database._checkpoint_loop), not
                # inside whichever commit crosses the threshold: with a large database a
                # checkpoint and its fsync stalled every send queued behind it.
                "wal_autocheckpoint": 0,
                "cache_size": -16000,
                "temp_store": "memory",
            },
        )
    if scheme in ("postgres", "postgresql"):
        options = dict(parse_qsl(parts.query))
        return PooledPostgresqlDatabase(
            unquote(parts.path.lstrip("/")),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname or None,
            port=parts.port or None,
            max_connections=32,
            stale_timeout=300,
            **options,
        )
    raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite or postgresql)")


class _FileLock:
    """An exclusive ``flock`` shared by every process that writes one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._mutex = threading.Lock()  # flock is per open file: serialise our threads

    def __enter__(self) -> None:
        self._mutex.acquire()
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            assert self._fd is not None
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


class _Job:
    __slots__ = ("fn", "args", "future", "ok", "value")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...],
                 future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.args = args
        self.future = future
        self.ok = False
        self.value: Any = None


def _settle(jobs: list[_Job]) -> None:
    """Runs on the event loop: hand each job's outcome to its awaiting caller."""
    for job in jobs:
        if job.future.cancelled():
            continue
        if job.ok:
            job.future.set_result(job.value)
        else:
            job.future.set_exception(job.value)


def _batches(source: "queue.SimpleQueue[Any]", limit: int = 1 << 30) -> Iterator[list[Any]]:
    """Block for an item, then take every other one already waiting (``limit`` in all
    at most) and yield them as one batch; end at the stop sentinel (None)."""
    while True:
        first = source.get()
        if first is None:
            return
        items = [first]
        while len(items) < limit:
            try:
                item = source.get_nowait()
            except queue.Empty:
                break
            if item is None:
                yield items
                return
            items.append(item)
        yield items


class Database:
    """Owns the peewee database, the writer thread and the reader pool."""

    def __init__(self, url: str, *, synchronous: str = "FULL", readers: int = 4) -> None:
        self.url = url
        mode = synchronous.upper()
        #: FULL on SQLite: commits with NORMAL, fsynced by the syncer thread (module doc).
        self.pipelined = mode == "FULL" and urlsplit(url).scheme.lower() == "sqlite"
        self.pw = open_peewee(url, synchronous="NORMAL" if self.pipelined else mode)
        self.is_sqlite = isinstance(self.pw, peewee.SqliteDatabase)
        self._wal_path = self.pw.database + "-wal" if self.is_sqlite else ""
        self._syncs: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        self._syncer: threading.Thread | None = None
        self._write_lock = (_FileLock(self.pw.database + ".writelock") if self.is_sqlite
                            else contextlib.nullcontext())
        self.is_postgres = not self.is_sqlite
        #: Placeholder for raw SQL ("?" for sqlite3, "%s" for psycopg2).
        self.param = self.pw.param
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readers = ThreadPoolExecutor(max_workers=readers,
                                           thread_name_prefix="rpcgw-db-read")
        self._reader_count = readers
        #: Called in the writer transaction with every batch of status changes
        #: (``services.lifecycle``): event delivery writes its outbox rows there.
        self.status_listeners: list[Callable[[list[Any]], None]] = []
        #: The same for SIM/device state changes (``lifecycle.record_device``).
        self.device_listeners: list[Callable[[list[Any]], None]] = []
        #: Number of groups and jobs committed, and of WAL fsyncs made by the syncer
        #: thread, for benchmarks and tests.
        self.groups_committed = 0
        self.jobs_committed = 0
        self.wal_syncs = 0

    # -- lifecycle -------------------------------------------------------------------

    def bind(self) -> None:
        """Point the models at this database and bring the schema up to date."""
        database_proxy.initialize(self.pw)
        with self.pw.connection_context():
            migrations.migrate(self)
        self._make_durable()

    async def start(self) -> None:
        self.bind()
        self._loop = asyncio.get_running_loop()
        self._writer = threading.Thread(target=self._write_loop, name="rpcgw-db-writer",
                                        daemon=True)
        self._writer.start()
        if self.pipelined:
            self._syncer = threading.Thread(target=self._sync_loop, name="rpcgw-db-sync",
                                            daemon=True)
            self._syncer.start()
        if self.is_sqlite:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop,
                                                  name="rpcgw-db-checkpoint", daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        """Copy the WAL back into the database every second (PASSIVE: never waits for
        or blocks a writer), so commits stay short and the WAL does not grow."""
        while not self._stop_checkpoints.wait(CHECKPOINT_SECONDS):
            try:
                with self.pw.connection_context():
                    self.pw.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except peewee.DatabaseError as exc:
                log.warning("WAL checkpoint failed: %s", exc)

    async def close(self) -> None:
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.join)
            self._checkpointer = None
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._writer.join)
            self._writer = None
        if self._syncer is not None:  # after the writer: its last groups are queued
            self._syncs.put(None)
            await asyncio.get_running_loop().run_in_executor(None, self._syncer.join)
            self._syncer = None
        self._readers.shutdown(wait=True)
        self.pw.close_all()

    def close_sync(self) -> None:
        self.pw.close_all()

    # -- writes ----------------------------------------------------------------------

    def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run ``fn(*args, **kwargs)`` in the writer thread inside a (group) transaction.

        Returns a future that completes once the transaction holding the job committed.
        """
        assert self._loop is not None, "Database.start() was not awaited"
        if kwargs:
            fn = functools.partial(fn, **kwargs)
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Job(fn, args, future))
        return future

    def _write_loop(self) -> None:
        assert self._loop is not None
        loop = self._loop
        for jobs in _batches(self._queue, MAX_GROUP):
            self._run_group(jobs)
            if self.pipelined:
                self._syncs.put(jobs)
            else:
                loop.call_soon_threadsafe(_settle, jobs)
        if not self.pw.is_closed():
            self.pw.close()

    def _sync_loop(self) -> None:
        """Make committed groups durable: fsync the WAL, then settle every group that
        was committed before the fsync began (all of them queued by then)."""
        assert self._loop is not None
        loop = self._loop
        for groups in _batches(self._syncs):
            jobs = [job for group in groups for job in group]
            try:
                self._make_durable()
            except ServiceUnavailable as exc:
                for job in jobs:
                    if job.ok:
                        job.ok = False
                        job.value = exc
            loop.call_soon_threadsafe(_settle, jobs)

    def _make_durable(self) -> None:
        """fsync the WAL (pipelined mode; a no-op otherwise).  Raises ServiceUnavailable
        if the disk refused: what was committed may then be lost on a power failure."""
        if not self.pipelined:
            return
        try:
            fd = os.open(self._wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return  # no WAL: it was checkpointed into the (synced) database file
        try:
            os.fdatasync(fd)
        except OSError as exc:
            log.error("fsync of %s failed: %s", self._wal_path, exc)
            raise ServiceUnavailable(
                "the database could not make the change durable") from exc
        finally:
            os.close(fd)
        self.wal_syncs += 1

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if not self.is_sqlite:
            with self.pw.atomic():
                yield
            return
        # SQLite lets one writer in at a time and makes the others poll with sleeps that
        # grow to 100 ms, which starves a process under load (seconds of p99 with two
        # API processes).  A blocking flock on a side file queues the writers of all
        # processes instead, and hands the lock over at once.
        with self._write_lock, self.pw.atomic("IMMEDIATE"):
            yield

    def _run_group(self, jobs: list[_Job]) -> None:
        try:
            self.pw.connect(reuse_if_open=True)
            with self.transaction():
                for job in jobs:
                    job.value = job.fn(*job.args)
                    job.ok = True
            self.groups_committed += 1
            self.jobs_committed += len(jobs)
            return
        except Exception as exc:  # noqa: BLE001 - re-run alone below, or report
            group_error = exc
        if isinstance(group_error, peewee.OperationalError) or isinstance(
                group_error, peewee.InterfaceError):
            self._reset_connection()
        if len(jobs) == 1:
            self._fail(jobs[0], group_error)
            return
        for job in jobs:
            job.ok = False
            try:
                self.pw.connect(reuse_if_open=True)
                with self.transaction():
                    job.value = job.fn(*job.args)
                    job.ok = True
                self.groups_committed += 1
                self.jobs_committed += 1
            except Exception as exc:  # noqa: BLE001
                self._fail(job, exc)

    def _fail(self, job: _Job, exc: BaseException) -> None:
        job.ok = False
        if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError)):
            log.error("database write failed: %s", exc)
            job.value = ServiceUnavailable("the database is unavailable; nothing was stored")
        else:
            job.value = exc

    def _reset_connection(self) -> None:
        try:
            self.pw.close()
        except Exception:  # noqa: BLE001 - the connection is already broken
            pass

    def insert_rows(self, table: str, columns: Sequence[str],
                    rows: list[Sequence[Any]]) -> int | None:
        """``INSERT INTO table (columns) VALUES (…), (…), …``: many rows in one statement.

        For the writer thread's jobs.  One statement instead of ``executemany``'s one
        step per row matters beyond the round trips: sqlite3 releases the GIL around
        every step and must win it back from the event loop each time, so a job of a
        hundred rows queued a hundred times behind the loop.

        Returns, on SQLite, the rowid of the last row inserted (``lastrowid``)."""
        if not rows:
            return None
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        cursor = self.pw.cursor()
        if self.is_postgres:
            from psycopg2.extras import execute_values
            execute_values(cursor, head + " %s", rows, page_size=1000)
            return None
        width = len(columns)
        one = "(" + ", ".join("?" * width) + ")"
        step = max(1, _SQLITE_MAX_VARIABLES // width)
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            cursor.execute(f"{head} {', '.join([one] * len(chunk))}",
                           [value for row in chunk for value in row])
        return cursor.lastrowid

    def executemany(self, sql: str, rows: list[Any]) -> None:
        """Run one statement for many rows, in few round trips.

        psycopg2's ``executemany`` is one round trip per row; ``execute_batch`` sends
        them in pages of statements.  For the writer thread's jobs."""
        if not rows:
            return
        cursor = self.pw.cursor()
        if self.is_postgres:
            from psycopg2.extras import execute_batch
            execute_batch(cursor, sql, rows, page_size=200)
        else:
            cursor.executemany(sql, rows)

    # -- reads -----------------------------------------------------------------------

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a reader thread with a pooled connection."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_call, fn, args)

    def _read_call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            with self.pw.connection_context():
                return fn(*args)
        except (peewee.OperationalError, peewee.InterfaceError) as exc:
            log.error("database read failed: %s", exc)
            raise ServiceUnavailable("the database is unavailable") from exc

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """For the CLI: run ``fn`` in this thread, in a transaction."""
        with self.pw.connection_context():
            with self.transaction():
                result = fn(*args)
        self._make_durable()
        return result
