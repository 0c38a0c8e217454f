"""The modem pool's database jobs.  Every function here runs in the database writer
thread, inside a transaction (``await db.write(fn, ...)``), and records each status change
through ``services.lifecycle`` in that same transaction.

The send queue is the ``message`` table itself.  A message is *claimed* by moving it from
PENDING to SENDING with a lease (owner node, expiry).  On PostgreSQL the candidate rows
are locked with ``FOR UPDATE SKIP LOCKED``, so several gateway nodes claim disjoint
messages; on SQLite the writer holds the database write lock (``BEGIN IMMEDIATE``) for
the whole job, and the ``UPDATE … WHERE status = 'PENDING'`` is a compare-and-set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from .. import status as st
from ..gsm import pdu
from ..models import IncomingPart, Message, UnmatchedReport
from ..services import lifecycle
from ..services.lifecycle import Change

if TYPE_CHECKING:
    from ..db import Database
    from ..services.messages import Incoming, MessageService

#: How far back a status report may match a sent part (TP-MR wraps every 256 sends).
REPORT_WINDOW_MS = 7 * 86400 * 1000


@dataclass(frozen=True, slots=True)
class SlotView:
    """What the claim job needs to know about a SIM that is free to send now."""

    key: int          # Sim.id
    device_id: int
    slot: int
    number: str
    score: tuple[Any, ...]  # lower is better: (sent in the last hour, -signal)


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed message, as the SIM worker needs it."""

    id: int
    user_id: int
    sender: str
    recipient: str
    text: str
    encoding: str
    parts: int
    flash: bool
    expires_at: int | None
    attempts: int


_PART_COLUMNS = ("message_id", "seq", "device_id", "sim", "reference", "recipient", "sent_at",
                 "status")
_CLAIM_COLUMNS = ("id", "user_id", "sender", "recipient", "text", "encoding", "parts",
                  "flash", "expires_at", "attempts", "device_id", "sim", "last_sim_id")


def _change(rows: Iterable[tuple[int, int]], old: str, new: str, at: int, error: str = "",
            direction: str = "OUT") -> list[Change]:
    return [Change(mid, uid, direction, old, new, at, error) for mid, uid in rows]


def claim(db: "Database", node: str, slots: list[SlotView], now: int,
          lease_ms: int) -> list[tuple[Job, int]]:
    """Claim up to one due message per free SIM; returns (job, Sim.id) pairs.

    Order: priority, then age.  A message pinned to a device or slot (or sent ``from``
    one of the SIM numbers) only goes there; a retry prefers another SIM than its last
    one; otherwise the best-scored free SIM takes it.
    """
    if not slots:
        return []
    p = db.param
    devices = sorted({s.device_id for s in slots})
    slot_numbers = sorted({s.slot for s in slots})
    sql = (f"SELECT {', '.join(_CLAIM_COLUMNS)} FROM message "
           f"WHERE status = 'PENDING' AND (send_at IS NULL OR send_at <= {p}) "
           f"AND (next_attempt_at IS NULL OR next_attempt_at <= {p}) "
           f"AND (device_id IS NULL OR device_id IN ({', '.join([p] * len(devices))})) "
           f"AND (sim IS NULL OR sim IN ({', '.join([p] * len(slot_numbers))})) "
           f"ORDER BY priority DESC, id LIMIT {p}")
    if db.is_postgres:
        sql += " FOR UPDATE SKIP LOCKED"
    cursor = db.pw.cursor()
    cursor.execute(sql, (now, now, *devices, *slot_numbers, max(8, 4 * len(slots))))
    rows = [dict(zip(_CLAIM_COLUMNS, r)) for r in cursor.fetchall()]
    free = sorted(slots, key=lambda s: s.score)
    by_number = {s.number: s for s in slots if s.number}
    claimed: list[tuple[Job, int]] = []
    expired: list[tuple[int, int]] = []
    for row in rows:
        if not free:
            break
        if row["expires_at"] is not None and row["expires_at"] <= now:
            expired.append((row["id"], row["user_id"]))
            continue
        candidates = [s for s in free
                      if (row["device_id"] is None or s.device_id == row["device_id"])
                      and (row["sim"] is None or s.slot == row["sim"])]
        wanted = by_number.get(row["sender"]) if row["sender"] else None
        if wanted is not None and row["device_id"] is None:
            candidates = [s for s in candidates if s.key == wanted.key]
        if not candidates:
            continue
        fresh = [s for s in candidates if s.key != row["last_sim_id"]]
        chosen = (fresh or candidates)[0]
        cursor.execute(
            f"UPDATE message SET status = 'SENDING', lease_owner = {p}, lease_until = {p}, "
            f"attempts = attempts + 1, last_sim_id = {p}, updated_at = {p} "
            f"WHERE id = {p} AND status = 'PENDING'",
            (node, now + lease_ms, chosen.key, now, row["id"]))
        if cursor.rowcount != 1:
            continue
        free.remove(chosen)
        claimed.append((Job(row["id"], row["user_id"], row["sender"], row["recipient"],
                            row["text"], row["encoding"], row["parts"], bool(row["flash"]),
                            row["expires_at"], row["attempts"] + 1), chosen.key))
    if expired:
        expire_pending(db, [i for i, _ in expired], now)
    lifecycle.record(db, _change([(j.id, j.user_id) for j, _ in claimed], st.PENDING,
                                 st.SENDING, now))
    return claimed


def mark_sent(db: "Database", job: Job, device_id: int, slot: int, number: str,
              references: list[int | None], now: int) -> int:
    """The modem accepted every part: SENDING → SENT, parts stored for their reports.

    Reports that arrived before this job ran (a fast network) wait in
    ``unmatched_report``; they are applied here, in the same transaction.

    This and :func:`apply_report` run for every message a SIM sends, while the SIM waits
    for them: plain SQL, no query building.
    """
    p = db.param
    cursor = db.pw.cursor()
    cursor.execute(
        f"UPDATE message SET status = '{st.SENT}', sent_at = {p}, sent_device_id = {p}, "
        f"sent_sim = {p}, sender = {p}, lease_owner = NULL, lease_until = NULL, "
        f"updated_at = {p}, result_info = {p}, status_error = '' WHERE id = {p}",
        (now, device_id, slot, job.sender or number, now, st.RESULT_INFO[st.SENT], job.id))
    db.insert_rows(
        "message_part", _PART_COLUMNS,
        [(job.id, seq, device_id, slot, ref if ref is not None else -1, job.recipient, now,
          st.SENT) for seq, ref in enumerate(references, start=1)])
    lifecycle.record(db, [Change(job.id, job.user_id, "OUT", st.SENDING, st.SENT, now)])
    known = [r for r in references if r is not None] or [-1]
    cursor.execute(
        "SELECT id, reference, recipient, report_status, received_at FROM unmatched_report "
        f"WHERE device_id = {p} AND sim = {p} AND received_at >= {p} "
        f"AND reference IN ({', '.join([p] * len(known))})",
        (device_id, slot, now - 600_000, *known))
    applied = 0
    for report_id, reference, recipient, report_status, received_at in cursor.fetchall():
        if apply_report(db, device_id, slot, reference, recipient, report_status,
                        received_at, keep_unmatched=False):
            cursor.execute(f"DELETE FROM unmatched_report WHERE id = {p}", (report_id,))
            applied += 1
    return applied


def release(db: "Database", jobs: list[Job], now: int, reason: str) -> int:
    """Claimed messages that were never handed to a modem go back to the queue; the
    claim does not count as an attempt."""
    ids = [j.id for j in jobs]
    if not ids:
        return 0
    Message.update(status=st.PENDING, lease_owner=None, lease_until=None, updated_at=now,
                   attempts=Message.attempts - 1).where(
        Message.id.in_(ids), Message.status == st.SENDING).execute()
    lifecycle.record(db, _change([(j.id, j.user_id) for j in jobs], st.SENDING, st.PENDING,
                                 now, reason))
    return len(ids)


def mark_sent_and_claim(db: "Database", job: Job, device_id: int, slot: int, number: str,
                        references: list[int | None], now: int, node: str,
                        next_for: SlotView | None, lease_ms: int) -> Job | None:
    """``mark_sent``, then (when ``next_for`` is given) claim this SIM's next message in
    the same transaction: a busy SIM goes from one message to the next with one
    database round trip instead of two (the dispatcher's claim would be the second)."""
    mark_sent(db, job, device_id, slot, number, references, now)
    if next_for is None:
        return None
    claimed = claim(db, node, [next_for], now, lease_ms)
    return claimed[0][0] if claimed else None


def retry_or_fail(db: "Database", job: Job, now: int, *, retry: bool, error: str,
                  error_code: int, result_info: str, max_attempts: int,
                  backoff_ms: int) -> str:
    """A send did not go through: back to the queue with backoff, or ERROR."""
    if retry and job.attempts < max_attempts:
        Message.update(status=st.PENDING, lease_owner=None, lease_until=None,
                       next_attempt_at=now + backoff_ms, updated_at=now,
                       status_error=error[:255]).where(Message.id == job.id).execute()
        lifecycle.record(db, [Change(job.id, job.user_id, "OUT", st.SENDING, st.PENDING, now,
                                     error)])
        return st.PENDING
    Message.update(status=st.ERROR, lease_owner=None, lease_until=None, updated_at=now,
                   status_error=error[:255], error_code=error_code,
                   result_info=result_info[:255]).where(Message.id == job.id).execute()
    lifecycle.record(db, [Change(job.id, job.user_id, "OUT", st.SENDING, st.ERROR, now, error)])
    return st.ERROR


def _digits(number: str | None) -> str:
    return "".join(c for c in number or "" if c.isdigit())


def _same_number(a: str | None, b: str | None) -> bool:
    """Reports give the recipient as the network wrote it (national, no +, ...)."""
    da, db_ = _digits(a), _digits(b)
    if not da or not db_:
        return True  # a report without recipient matches on SIM and reference alone
    shorter, longer = sorted((da, db_), key=len)
    return len(shorter) >= 6 and longer.endswith(shorter)


def apply_report(db: "Database", device_id: int, slot: int, reference: int,
                 recipient: str | None, report_status: int, at: int, *,
                 keep_unmatched: bool = True, pdu_hex: str = "") -> bool:
    """Match a status report to the part it reports on and update its message.

    Matching key: (device, SIM slot, TP-MR, recipient) among parts sent in the last week
    that have no final report yet, newest first (TP-MR wraps every 256 sends).  Returns
    False when nothing matched; the report is then kept in ``unmatched_report``.
    """
    outcome = pdu.status_outcome(report_status)
    p = db.param
    cursor = db.pw.cursor()
    cursor.execute(
        "SELECT id, message_id, recipient FROM message_part "
        f"WHERE device_id = {p} AND sim = {p} AND reference = {p} AND sent_at >= {p} "
        f"AND status = '{st.SENT}' ORDER BY sent_at DESC, id DESC LIMIT 8",
        (device_id, slot, reference, at - REPORT_WINDOW_MS))
    part = next((row for row in cursor.fetchall() if _same_number(row[2], recipient)), None)
    if part is None:
        if keep_unmatched:
            UnmatchedReport.create(device_id=device_id, sim=slot, reference=reference,
                                   recipient=recipient or "", report_status=report_status,
                                   received_at=at, pdu=pdu_hex)
        return False
    part_id, message_id, _ = part
    if outcome == "pending":  # the SC keeps trying: a final report will follow
        cursor.execute(f"UPDATE message_part SET report_status = {p}, report_at = {p} "
                       f"WHERE id = {p}", (report_status, at, part_id))
        return True
    new_part_status = st.DELIVERED if outcome == "delivered" else st.FAILED
    cursor.execute(f"UPDATE message_part SET status = {p}, report_status = {p}, "
                   f"report_at = {p} WHERE id = {p}",
                   (new_part_status, report_status, at, part_id))
    cursor.execute(f"SELECT status, user_id FROM message WHERE id = {p}", (message_id,))
    status, user_id = cursor.fetchone()
    if status != st.SENT:
        return True  # already final (e.g. expired, or failed by another part)
    cursor.execute(f"SELECT status FROM message_part WHERE message_id = {p}", (message_id,))
    statuses = [row[0] for row in cursor.fetchall()]
    if st.FAILED in statuses:
        new_status = st.FAILED
    elif all(s == st.DELIVERED for s in statuses):
        new_status = st.DELIVERED
    else:
        return True  # other parts still wait for their reports
    error = "" if new_status == st.DELIVERED else pdu.status_description(report_status)
    info = (st.RESULT_INFO[st.DELIVERED] if new_status == st.DELIVERED
            else f"[{report_status}] {error}")
    cursor.execute(f"UPDATE message SET status = {p}, updated_at = {p}, status_error = {p}, "
                   f"result_info = {p} WHERE id = {p}",
                   (new_status, at, error[:255], info[:255], message_id))
    lifecycle.record(db, [Change(message_id, user_id, "OUT", st.SENT, new_status, at, error)])
    return True


def expire_pending(db: "Database", ids: list[int], now: int) -> int:
    """PENDING messages whose validity ended before any modem took them → EXPIRED."""
    rows = [(m.id, m.user_id) for m in Message.select(Message.id, Message.user).where(
        Message.id.in_(ids), Message.status == st.PENDING)]
    if not rows:
        return 0
    Message.update(status=st.EXPIRED, updated_at=now, status_error="validity period ended",
                   result_info=st.RESULT_INFO[st.EXPIRED]).where(
        Message.id.in_([i for i, _ in rows])).execute()
    lifecycle.record(db, _change(rows, st.PENDING, st.EXPIRED, now, "validity period ended"))
    return len(rows)


def maintain(db: "Database", node: str, now: int, *,
             report_timeout_ms: int) -> dict[str, int]:
    """Periodic upkeep: expire overdue messages, requeue lost leases."""
    done = {"expired": 0, "requeued": 0, "no_report": 0}
    overdue = [m.id for m in Message.select(Message.id).where(
        Message.status == st.PENDING, Message.expires_at <= now).limit(1000)]
    done["expired"] = expire_pending(db, overdue, now)
    # A node died while holding leases: the messages go back to the queue.  The one a
    # modem was sending at that moment may have left; it may be sent twice (at-least-once).
    # This node's own leases are its sends in progress (a send may outlast its lease);
    # they were released at start-up if a previous run left any.
    stale = [(m.id, m.user_id) for m in Message.select(Message.id, Message.user).where(
        Message.status == st.SENDING, Message.lease_until < now,
        Message.lease_owner != node).limit(1000)]
    if stale:
        Message.update(status=st.PENDING, lease_owner=None, lease_until=None,
                       updated_at=now).where(Message.id.in_([i for i, _ in stale]),
                                             Message.status == st.SENDING).execute()
        lifecycle.record(db, _change(stale, st.SENDING, st.PENDING, now, "lease expired"))
        done["requeued"] = len(stale)
    silent = [(m.id, m.user_id) for m in Message.select(Message.id, Message.user).where(
        Message.status == st.SENT, Message.sent_at < now - report_timeout_ms).limit(1000)]
    if silent:
        Message.update(status=st.EXPIRED, updated_at=now,
                       status_error="no delivery report in time",
                       result_info=st.RESULT_INFO[st.EXPIRED]).where(
            Message.id.in_([i for i, _ in silent])).execute()
        lifecycle.record(db, _change(silent, st.SENT, st.EXPIRED, now,
                                     "no delivery report in time"))
        done["no_report"] = len(silent)
    return done


def release_own_leases(db: "Database", node: str, now: int) -> int:
    """At start-up: this node's leases belong to a previous run that is gone."""
    rows = [(m.id, m.user_id) for m in Message.select(Message.id, Message.user).where(
        Message.status == st.SENDING, Message.lease_owner == node)]
    if rows:
        Message.update(status=st.PENDING, lease_owner=None, lease_until=None,
                       updated_at=now).where(Message.id.in_([i for i, _ in rows])).execute()
        lifecycle.record(db, _change(rows, st.SENDING, st.PENDING, now,
                                     "gateway restarted while sending"))
    return len(rows)


def store_part(db: "Database", messages: "MessageService", device_id: int, slot: int,
               owner_id: int, sender: str, recipient: str, reference: int, total: int,
               seq: int, text: str, encoding: str, sc_timestamp: int, now: int) -> int | None:
    """Keep one part of a long incoming message; when the set is complete, store the
    whole message (same transaction) and drop the parts.  Returns the message id then."""
    IncomingPart.insert(device_id=device_id, sim=slot, sender=sender, reference=reference,
                        total=total, seq=seq, text=text, encoding=encoding,
                        sc_timestamp=sc_timestamp, received_at=now).on_conflict_ignore().execute()
    where = ((IncomingPart.device_id == device_id) & (IncomingPart.sim == slot)
             & (IncomingPart.sender == sender) & (IncomingPart.reference == reference)
             & (IncomingPart.total == total))
    parts = list(IncomingPart.select().where(where).order_by(IncomingPart.seq))
    if len(parts) < total:
        return None
    return _assemble(db, messages, parts, owner_id, recipient, where)


def _assemble(db: "Database", messages: "MessageService", parts: list[IncomingPart],
              owner_id: int, recipient: str, where: Any) -> int:
    from ..services.messages import Incoming
    first = parts[0]
    seqs = {p.seq for p in parts}
    text = "".join(p.text for p in parts)
    if len(seqs) < first.total:  # reassembly timed out: say so where parts are missing
        text = "".join(next((p.text for p in parts if p.seq == s), "[…]")
                       for s in range(1, first.total + 1))
    encoding = "UNICODE" if any(p.encoding == "UNICODE" for p in parts) else "GSM"
    incoming = Incoming(device_id=first.device_id, sim=first.sim, owner_id=owner_id,
                        sender=first.sender, recipient=recipient, text=text,
                        encoding=encoding, parts=first.total,
                        sc_timestamp=min(p.sc_timestamp for p in parts))
    message_id, _ = messages.insert_incoming(incoming)
    IncomingPart.delete().where(where).execute()
    return message_id


def flush_stale_parts(db: "Database", messages: "MessageService", older_than: int,
                      owners: dict[int, int], numbers: dict[tuple[int, int], str]) -> int:
    """Long messages whose missing parts never came: store what arrived."""
    groups = {(p.device_id, p.sim, p.sender, p.reference, p.total) for p in
              IncomingPart.select().where(IncomingPart.received_at < older_than).limit(500)}
    for device_id, slot, sender, reference, total in groups:
        where = ((IncomingPart.device_id == device_id) & (IncomingPart.sim == slot)
                 & (IncomingPart.sender == sender) & (IncomingPart.reference == reference)
                 & (IncomingPart.total == total))
        parts = list(IncomingPart.select().where(where).order_by(IncomingPart.seq))
        if parts:
            _assemble(db, messages, parts, owners.get(device_id, 0),
                      numbers.get((device_id, slot), ""), where)
    return len(groups)


def insert_single(db: "Database", messages: "MessageService", incoming: "Incoming") -> int:
    message_id, _ = messages.insert_incoming(incoming)
    return message_id
