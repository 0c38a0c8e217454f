"""The delivery engine: lease due deliveries, POST them, record the outcome, retry.

Theory of operation
===================

The outbox (``outbox.py``) writes one ``webhook_delivery`` row per event and endpoint
in the transaction of the change.  From then on the row is the truth::

    pending ──claim──▶ in_flight ──2xx──▶ delivered
       ▲                  │
       └──retry later─────┤ (anything else: 3xx, 4xx, 5xx, timeout, refused)
                          ├──410 Gone──▶ dead, and the subscription is disabled
                          └──window over (give_up_at)──▶ dead

**Claiming.**  A claim is a writer job: it selects due ``pending`` rows whose chain has
no earlier open delivery (see ordering), locks them (PostgreSQL: ``FOR UPDATE SKIP
LOCKED``, so several gateway nodes never take the same row; SQLite: the writer holds the
database write lock, and the update is a compare-and-set on ``status = 'pending'``),
and marks them ``in_flight`` with a lease (``lease_owner``, ``lease_until``).  Rows whose
lease ran out (their worker died) go back to ``pending`` at the next claim.  A process
holds at most ``webhook_max_in_flight`` leased deliveries; it claims in batches (when a
quarter of that budget is free), and skips endpoints that already have a full round of
deliveries waiting here, so that a slow endpoint cannot take the whole budget.

**Sending.**  Claimed deliveries wait in a queue per endpoint; at most
``webhook_endpoint_concurrency`` requests go to one endpoint at once, so a slow
receiver uses its own slots and never holds up the others.  Each request is one task:
render the body for its format (the same ``event_id`` on every try, ``try`` = attempts
so far), sign it, and POST it through ``http.HttpSender`` (connect and total timeouts,
no redirects, private addresses refused when connecting).  A delivery that waited so
long that its lease would run out during the request is left to expire and be claimed
again, rather than risk being sent twice.

**Recording.**  Outcomes are collected and written together by one writer job (with the
attempt rows: code, latency, error).  Any 2xx is delivered.  Otherwise the next attempt
waits ``base × 2^(n-1)`` seconds (``webhook_retry_base_seconds``, 10 s), capped at
``webhook_retry_max_delay_seconds`` (15 min), with ±25 % jitter so that deliveries
failing together do not retry together; when the next attempt would fall after
``give_up_at`` (``webhook_retry_max_age_hours``, 48 h after the event) the delivery is
dead.  A 410 Gone disables the webhook or callback, kills its pending deliveries and
tells the outbox to stop producing new ones.

**Ordering.**  Deliveries carry a chain (subscription + message).  Only the oldest open
delivery of a chain can be claimed, so a receiver gets the status updates of a message
in the order they happened, even across retries and nodes; different messages and
different endpoints are independent.

**Waking.**  The outbox wakes the engine when it writes deliveries (the claim, a later
writer job, runs after that commit); recording an outcome wakes it too (a chain may
continue); otherwise it sleeps until the next retry is due, or ``webhook_poll_seconds``
(deliveries written by other gateway nodes).

**Stopping and restarting.**  ``stop`` lets requests under way finish for a moment,
cancels the rest and puts them back to ``pending`` without counting an attempt; then it
records every outcome.  A crash leaves leases that expire.  Either way nothing is lost,
and nothing acknowledged is sent again; only a request that was under way when the
process died may arrive twice, with the same ``event_id``, which receivers dedupe on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson

from ..models import now_ms
from . import signing
from .crypto import SecretBox, SecretUnreadable, redact_url
from .formats import render
from .http import Answer, HttpSender
from .models import DEAD, DELIVERED, IN_FLIGHT, KIND_CALLBACK, KIND_MESSAGE, KIND_WEBHOOK, \
    PENDING, bump_version
from ..services.messages import dynamic_webhook_options

if TYPE_CHECKING:
    from ..config import Settings
    from ..db import Database
    from ..ids import HashCodec

log = logging.getLogger("rpcgw.events")

CLAIM_BATCH = 200
#: Most endpoints named in a claim's "skip these, they are busy" list.
MAX_BUSY_LIST = 100
PURGE_EVERY_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay: float = 10.0
    max_delay: float = 900.0
    jitter: float = 0.25

    def delay(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failed attempts (≥ 1)."""
        raw = min(self.max_delay, self.base_delay * 2 ** min(failures - 1, 40))
        return raw * (1 - self.jitter + 2 * self.jitter * random.random())


@dataclass(slots=True)
class Job:
    """A leased delivery with everything needed to send it."""

    id: int
    attempt: int
    kind: str
    endpoint: str
    format: str
    chain: str
    webhook_id: int | None
    callback_id: int | None
    give_up_at: int
    event_type: str
    public_id: str
    event_at: int
    data: str
    context: str | None
    hook_hash: str | None = None
    title: str = ""
    secret: str | None = field(default=None, repr=False)
    algo: str = signing.DEFAULT_ALGORITHM
    lease_until: int = 0


@dataclass(slots=True)
class Outcome:
    job: Job
    answer: Answer
    at: int


def build_request(job: Job, box: SecretBox | None) -> tuple[bytes, dict[str, str]]:
    """Body and headers of one attempt (also used by test deliveries)."""
    body, content_type = render(
        job.format, event_type=job.event_type, event_id=job.public_id,
        event_at=job.event_at, hook_hash=job.hook_hash, attempt=job.attempt,
        data=orjson.loads(job.data),
        context=orjson.loads(job.context) if job.context else None, title=job.title)
    headers = {"Content-Type": content_type, signing.HEADER_EVENT_ID: job.public_id,
               "X-Rpcgw-Event-Type": job.event_type, "X-Rpcgw-Try": str(job.attempt)}
    if job.secret:
        secret = box.decrypt(job.secret) if box is not None else job.secret
        headers.update(signing.signature_headers(secret, job.algo, body))
    return body, headers


class DeliveryEngine:
    def __init__(self, db: "Database", settings: "Settings", box: SecretBox,
                 webhook_codec: "HashCodec", on_subscription_disabled: Callable[[], None]
                 ) -> None:
        """``on_subscription_disabled`` runs in the writer thread, in the transaction
        that disabled a webhook or callback (the outbox reloads its view)."""
        self.db = db
        self.box = box
        self.codec = webhook_codec
        self.on_subscription_disabled = on_subscription_disabled
        self.node = f"{secrets.token_hex(6)}"
        self.policy = RetryPolicy(base_delay=settings.webhook_retry_base_seconds,
                                  max_delay=settings.webhook_retry_max_delay_seconds)
        self.poll = max(0.01, float(settings.webhook_poll_seconds))
        self.timeout = float(settings.webhook_timeout_seconds)
        self.lease_ms = int((2 * self.timeout + 30) * 1000)
        self.max_in_flight = max(1, int(settings.webhook_max_in_flight))
        self.per_endpoint = max(1, int(settings.webhook_endpoint_concurrency))
        self.retention_ms = int(settings.webhook_retention_days * 86_400_000)
        self.sender = HttpSender(
            allow_private=bool(settings.allow_private_endpoints),
            connect_timeout=float(settings.webhook_connect_timeout_seconds),
            timeout=self.timeout, max_connections=self.max_in_flight)
        self._wake = asyncio.Event()
        self._stopping = False
        self._runner: asyncio.Task[None] | None = None
        #: Deliveries being sent, by delivery id.
        self._tasks: dict[int, asyncio.Task[None]] = {}
        #: Leased deliveries waiting for a free slot of their endpoint, in claim order.
        self._queues: dict[str, deque[Job]] = {}
        #: Requests under way per endpoint.
        self._active: dict[str, int] = {}
        #: Leased deliveries held by this process (queued or being sent).
        self._held = 0
        self.max_held = self.max_in_flight
        self._outcomes: list[Outcome] = []
        self._flusher: asyncio.Task[None] | None = None
        self._next_purge = 0
        self._secrets: dict[str, str] = {}
        self._next_due: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Deliveries recorded (delivered or not), for tests and benchmarks.
        self.recorded = 0
        p = db.param
        lock = " FOR UPDATE OF d SKIP LOCKED" if db.is_postgres else ""
        self._sql_due = (
            "SELECT d.id FROM webhook_delivery d WHERE d.status = 'pending' "
            f"AND d.next_attempt_at <= {p} AND NOT EXISTS (SELECT 1 FROM webhook_delivery e "
            "WHERE e.chain = d.chain AND e.status IN ('pending', 'in_flight') "
            "AND e.id < d.id) {busy} ORDER BY d.next_attempt_at, d.id LIMIT " + p + lock)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.sender.start()
        self._runner = asyncio.create_task(self._run(), name="rpcgw-webhooks")

    def wake(self) -> None:
        self._wake.set()

    def wake_threadsafe(self) -> None:
        """From the writer thread (the outbox)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def stop(self, grace: float = 2.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._runner is not None:
            await self._runner
        queued = [job.id for q in self._queues.values() for job in q]
        self._queues.clear()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.wait(tasks, timeout=min(grace, self.timeout))
        unfinished = [i for i, t in self._tasks.items() if not t.done()]
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush_now()
        if unfinished or queued:
            await self.db.write(self._release, unfinished + queued)
        await self.sender.close()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = self.poll
            try:
                room = self.max_held - self._held
                # Claim in batches: after a few completions, wait for more room rather
                # than paying a writer job for every freed slot.
                if room >= min(CLAIM_BATCH, self.max_held // 4) or self._held == 0:
                    if await self._claim_and_queue(min(room, CLAIM_BATCH)):
                        continue
                    if self._next_due is not None:
                        wait = min(wait, max(0.0, (self._next_due - now_ms()) / 1000))
                await self._maybe_purge()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep delivering; the database may be back
                log.exception("webhook delivery loop failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _claim_and_queue(self, limit: int) -> bool:
        """Claim what is due; True when more may be due already (the claim was full)."""
        busy = [e for e, q in self._queues.items() if len(q) >= self.per_endpoint]
        jobs, self._next_due = await self.db.write(self._claim, limit,
                                                   busy[:MAX_BUSY_LIST])
        lease_until = now_ms() + self.lease_ms
        for job in jobs:
            job.lease_until = lease_until
            self._queues.setdefault(job.endpoint, deque()).append(job)
        self._held += len(jobs)
        for endpoint in {job.endpoint for job in jobs}:
            self._pump(endpoint)
        return len(jobs) == limit

    def _pump(self, endpoint: str) -> None:
        """Start queued deliveries of ``endpoint`` while it has free slots."""
        queue = self._queues.get(endpoint)
        if queue is None:
            return
        active = self._active.get(endpoint, 0)
        now = now_ms()
        while queue and active < self.per_endpoint and not self._stopping:
            job = queue.popleft()
            if job.lease_until - now < self.timeout * 1000 + 1000:
                # Waited so long behind a slow endpoint that the lease would run out
                # while sending: leave it; the expired lease returns it to the queue.
                self._held -= 1
                continue
            active += 1
            self._tasks[job.id] = asyncio.create_task(self._send(job))
        self._active[endpoint] = active
        if not queue:
            del self._queues[endpoint]

    async def _send(self, job: Job) -> None:
        try:
            try:
                body, headers = self._signed(job) if job.secret else build_request(job, None)
            except SecretUnreadable as exc:
                answer = Answer(None, 0, str(exc))
            else:
                answer = await self.sender.post(job.endpoint, body, headers)
            if not answer.ok:
                log.info("delivery %s of event %s to %s failed (try %d): %s",
                         job.id, job.public_id, redact_url(job.endpoint), job.attempt,
                         answer.error or f"HTTP {answer.status}")
            self._record(Outcome(job, answer, now_ms()))
        finally:
            self._tasks.pop(job.id, None)
            self._held -= 1
            left = self._active.get(job.endpoint, 1) - 1
            if left > 0:
                self._active[job.endpoint] = left
            else:
                self._active.pop(job.endpoint, None)
            self._pump(job.endpoint)

    def _signed(self, job: Job) -> tuple[bytes, dict[str, str]]:
        assert job.secret is not None
        plain = self._secrets.get(job.secret)
        if plain is None:
            plain = self.box.decrypt(job.secret)
            if len(self._secrets) > 1000:
                self._secrets.clear()
            self._secrets[job.secret] = plain
        clear = Job(**{**{f: getattr(job, f) for f in Job.__dataclass_fields__},
                       "secret": plain})
        return build_request(clear, None)

    # -- outcomes ----------------------------------------------------------------------

    def _record(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._outcomes:
            try:
                await self._flush_now()
            except Exception:  # noqa: BLE001 - the database may be back in a moment
                log.exception("recording webhook outcomes failed; retrying")
                if self._stopping:
                    return
                await asyncio.sleep(min(1.0, self.poll * 10))

    async def _flush_now(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            await self.db.write(self._apply, batch)
        except BaseException:
            self._outcomes[:0] = batch
            raise
        self.recorded += len(batch)
        self._wake.set()

    # -- writer-thread jobs --------------------------------------------------------------

    def _claim(self, limit: int, busy: list[str]) -> tuple[list[Job], int | None]:
        p = self.db.param
        now = now_ms()
        cursor = self.db.pw.cursor()
        cursor.execute(
            f"UPDATE webhook_delivery SET status = '{PENDING}', lease_owner = NULL, "
            f"lease_until = NULL, last_error = {p} WHERE status = '{IN_FLIGHT}' "
            f"AND lease_until < {p}", ("lease expired: its worker stopped", now))
        busy_sql = (f"AND d.endpoint NOT IN ({', '.join([p] * len(busy))})" if busy
                    else "")
        cursor.execute(self._sql_due.format(busy=busy_sql), (now, *busy, limit))
        ids = [row[0] for row in cursor.fetchall()]
        jobs: list[Job] = []
        if ids:
            marks = ", ".join([p] * len(ids))
            cursor.execute(
                f"UPDATE webhook_delivery SET status = '{IN_FLIGHT}', lease_owner = {p}, "
                f"lease_until = {p} WHERE id IN ({marks}) AND status = '{PENDING}'",
                (self.node, now + self.lease_ms, *ids))
            cursor.execute(
                "SELECT d.id, d.attempts, d.kind, d.endpoint, d.format, d.chain, "
                "d.webhook_id, d.callback_id, d.give_up_at, e.type, e.public_id, e.at, "
                "e.data, e.context FROM webhook_delivery d JOIN webhook_event e ON "
                f"e.id = d.event_id WHERE d.id IN ({marks}) AND d.lease_owner = {p} "
                f"AND d.status = '{IN_FLIGHT}' ORDER BY d.id", (*ids, self.node))
            jobs = [Job(*row) for row in cursor.fetchall()]
            self._add_subscription_details(cursor, jobs)
        cursor.execute(f"SELECT MIN(next_attempt_at) FROM webhook_delivery WHERE status = "
                       f"'{PENDING}' AND next_attempt_at > {p}", (now,))
        found = cursor.fetchone()
        return jobs, (found[0] if found else None)

    def _add_subscription_details(self, cursor: Any, jobs: list[Job]) -> None:
        p = self.db.param
        hooks = sorted({j.webhook_id for j in jobs if j.webhook_id is not None})
        calls = sorted({j.callback_id for j in jobs if j.callback_id is not None})
        hook_rows: dict[int, tuple[Any, ...]] = {}
        call_rows: dict[int, tuple[Any, ...]] = {}
        if hooks:
            cursor.execute("SELECT id, secret, hmac_algo, type FROM webhook WHERE id IN "
                           f"({', '.join([p] * len(hooks))})", hooks)
            hook_rows = {r[0]: r for r in cursor.fetchall()}
        if calls:
            cursor.execute("SELECT id, secret, name FROM callback WHERE id IN "
                           f"({', '.join([p] * len(calls))})", calls)
            call_rows = {r[0]: r for r in cursor.fetchall()}
        # A per-message webhook's options (secret sealed, algorithm) live with its message,
        # whose id ends the delivery's chain ("m:<id>").
        messages = sorted({int(j.chain[2:]) for j in jobs if j.kind == KIND_MESSAGE})
        dynamic: dict[int, dict[str, Any]] = {}
        if messages:
            cursor.execute("SELECT id, options FROM message WHERE id IN "
                           f"({', '.join([p] * len(messages))})", messages)
            dynamic = {r[0]: dynamic_webhook_options(orjson.loads(r[1] or "{}"))
                       for r in cursor.fetchall()}
        for job in jobs:
            if job.kind == KIND_WEBHOOK and job.webhook_id in hook_rows:
                _, job.secret, job.algo, job.title = hook_rows[job.webhook_id]
                job.hook_hash = self.codec.encode(job.webhook_id)
            elif job.kind == KIND_CALLBACK and job.callback_id in call_rows:
                _, job.secret, job.title = call_rows[job.callback_id]
            elif job.kind == KIND_MESSAGE:
                options = dynamic.get(int(job.chain[2:]), {})
                job.secret = options.get("hmac_secret") or None
                job.algo = options.get("hmac_algo") or signing.DEFAULT_ALGORITHM

    def _release(self, ids: list[int]) -> None:
        p = self.db.param
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            self.db.pw.cursor().execute(
                f"UPDATE webhook_delivery SET status = '{PENDING}', lease_owner = NULL, "
                f"lease_until = NULL WHERE id IN ({', '.join([p] * len(chunk))}) "
                f"AND status = '{IN_FLIGHT}' AND lease_owner = {p}", (*chunk, self.node))

    def _apply(self, batch: list[Outcome]) -> None:
        """Writer thread: store outcomes and their attempts."""
        p = self.db.param
        cursor = self.db.pw.cursor()
        attempts: list[tuple[Any, ...]] = []
        delivered: list[tuple[Any, ...]] = []
        retry: list[tuple[Any, ...]] = []
        dead: list[tuple[Any, ...]] = []
        gone: list[Job] = []
        for o in batch:
            job, answer = o.job, o.answer
            attempts.append((job.id, job.attempt, o.at, answer.status, answer.latency_ms,
                             answer.error[:255]))
            tries = job.attempt + 1
            if answer.ok:
                delivered.append((tries, o.at, answer.status, answer.latency_ms, job.id))
                continue
            error = (answer.error or f"HTTP {answer.status}")[:200]
            if answer.status == 410:
                gone.append(job)
                dead.append((tries, answer.status, answer.latency_ms,
                             f"410 Gone: {error}"[:255], job.id, self.node))
                continue
            next_at = o.at + int(self.policy.delay(tries) * 1000)
            if next_at > job.give_up_at:
                dead.append((tries, answer.status, answer.latency_ms,
                             f"gave up after {tries} attempts: {error}"[:255], job.id,
                             self.node))
            else:
                retry.append((tries, next_at, answer.status, answer.latency_ms, error,
                              job.id, self.node))
        self.db.insert_rows("webhook_attempt", ("delivery_id", "number", "at", "status_code",
                                                "latency_ms", "error"), attempts)
        if delivered:
            # Delivered even if the lease was lost meanwhile: the receiver has it.
            self.db.executemany(
                f"UPDATE webhook_delivery SET status = '{DELIVERED}', attempts = {p}, "
                f"delivered_at = {p}, last_status_code = {p}, last_latency_ms = {p}, "
                "last_error = '', lease_owner = NULL, lease_until = NULL "
                f"WHERE id = {p} AND status != '{DELIVERED}'", delivered)
        mine = f"WHERE id = {p} AND status = '{IN_FLIGHT}' AND lease_owner = {p}"
        if retry:
            self.db.executemany(
                f"UPDATE webhook_delivery SET status = '{PENDING}', attempts = {p}, "
                f"next_attempt_at = {p}, last_status_code = {p}, last_latency_ms = {p}, "
                f"last_error = {p}, lease_owner = NULL, lease_until = NULL {mine}", retry)
        if dead:
            self.db.executemany(
                f"UPDATE webhook_delivery SET status = '{DEAD}', attempts = {p}, "
                f"last_status_code = {p}, last_latency_ms = {p}, last_error = {p}, "
                f"lease_owner = NULL, lease_until = NULL {mine}", dead)
        for job in gone:
            self._gone(cursor, job, now_ms())

    def _gone(self, cursor: Any, job: Job, at: int) -> None:
        """The endpoint answered 410 Gone: stop sending it anything of this kind."""
        p = self.db.param
        reason = "the endpoint answered 410 Gone"
        arg: int | str
        if job.kind == KIND_WEBHOOK and job.webhook_id is not None:
            cursor.execute(f"UPDATE webhook SET enabled = {p}, disabled_reason = {p}, "
                           f"updated_at = {p} WHERE id = {p}",
                           (False, reason, at, job.webhook_id))
            where, arg = "webhook_id", job.webhook_id
        elif job.kind == KIND_CALLBACK and job.callback_id is not None:
            cursor.execute(f"UPDATE callback SET enabled = {p}, disabled_reason = {p}, "
                           f"updated_at = {p} WHERE id = {p}",
                           (False, reason, at, job.callback_id))
            where, arg = "callback_id", job.callback_id
        else:
            where, arg = "chain", job.chain
        cursor.execute(f"UPDATE webhook_delivery SET status = '{DEAD}', last_error = {p} "
                       f"WHERE {where} = {p} AND status = '{PENDING}'",
                       (f"not sent: {reason}", arg))
        if job.kind in (KIND_WEBHOOK, KIND_CALLBACK):
            bump_version()
            self.on_subscription_disabled()
            log.warning("%s %s disabled: %s answered 410 Gone", job.kind,
                        job.webhook_id or job.callback_id, redact_url(job.endpoint))

    # -- housekeeping ------------------------------------------------------------------

    async def _maybe_purge(self) -> None:
        now = now_ms()
        if now < self._next_purge or self.retention_ms <= 0:
            return
        self._next_purge = now + PURGE_EVERY_MS
        await self.db.write(self._purge, now - self.retention_ms)

    def _purge(self, before: int) -> int:
        """Writer thread: forget events older than the retention whose deliveries are
        all finished (their deliveries and attempts go with them)."""
        p = self.db.param
        cursor = self.db.pw.cursor()
        cursor.execute(
            "DELETE FROM webhook_event WHERE id IN (SELECT ev.id FROM webhook_event ev "
            f"WHERE ev.at < {p} AND NOT EXISTS (SELECT 1 FROM webhook_delivery d WHERE "
            f"d.event_id = ev.id AND d.status IN ('{PENDING}', '{IN_FLIGHT}')) LIMIT 5000)",
            (before,))
        return int(cursor.rowcount or 0)
