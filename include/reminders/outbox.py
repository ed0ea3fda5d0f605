"""The reminder outbox: every reminder is written to the store first, then sent, each dedupe key once.

This module is the outbox's state in the store (rows, claims, leases); include/reminders/delivery.py sends,
include/reminders/senders.py holds the destinations. As a whole:

``enqueue`` inserts reminders whose key is new (a rerun of the same day adds nothing). ``deliver`` sends
what is pending through a sender (Slack, or a local sink file without a token):
- a row is claimed (``sending``) before it is sent and marked ``sent`` with the receipt after. A claim has an
  owner (``claimed_by``: this machine, its process and a random tag, one per ``deliver`` call) and a lease
  (``lease_until``, ``lease_seconds`` or ``CAMPAIGN_OUTBOX_LEASE_SECONDS``, 120 s by default) that the
  deliverer renews while it runs and gives up when it ends. A claim is one conditional UPDATE (the row still
  pending) and is ours only if the row then names us; every later mark of the row (sent, failed, pending again)
  is conditional on naming us too, so a deliverer that lost its claim cannot overwrite the new owner's outcome;
- so two deliverers at once (the reminders DAG's task and an operator's ``campaign remind``) share the work:
  a row under another deliverer's live lease is never looked up, sent or marked; it is left to that deliverer,
  and ``deliver`` returns once nothing is left that it may act on;
- a row found ``sending`` whose lease has run out or was given up (its deliverer died or ended between claim
  and mark), or whose owner is a process of this machine that no longer exists, is taken over by the same kind
  of conditional UPDATE, then looked up at the destination by its key: found, it is marked sent; not found,
  it is sent again. So a crash, a rerun, a second deliverer or an outage never loses a reminder and never
  sends one twice (leases are read on the deliverers' clocks: keep them within seconds of each other);
- a 429 (after the client has waited out Retry-After) means not delivered: the row goes back to
  pending; a 5xx, a timeout or a dropped connection may have delivered it: the row stays ``sending``
  and is looked up by key before any new attempt. Rounds repeat with backoff, up to ``max_attempts``
  per row; a permanent failure (unknown channel, bad token), in a send or in a lookup, or a sender that breaks
  on a message marks that row failed at once, and the other rows go on.

Delivery is asynchronous (one event loop, slack-sdk's ``AsyncWebClient`` on one kept-alive aiohttp session):
a message costs a fraction of a thread's urllib call, so thousands of channels keep their pace on a small
machine. ``deliver`` itself is an ordinary function.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pendulum
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from include.reminders.policy import Reminder
from include.store.db import insert_or_ignore, session_scope
from include.store.models import OutboxMessage

MAX_ATTEMPTS = 5


LEASE_SECONDS = 120.0


def enqueue(engine: Engine, reminders: Iterable[Reminder], now: dt.datetime | None = None) -> int:
    """Write the reminders whose key is not in the outbox yet; return how many were new."""
    now = now or pendulum.now("UTC")
    rows = [
        {
            "key": r.key, "campaign_id": r.campaign, "milestone": r.milestone, "unit": r.unit, "kind": r.kind,
            "channel": r.channel, "day": r.day, "text": r.text, "state": "pending", "attempts": 0, "created_at": now,
        }
        for r in reminders
    ]  # fmt: skip
    if not rows:
        return 0
    with session_scope(engine) as session:
        before = session.scalar(select(func.count()).select_from(OutboxMessage))
        session.execute(insert_or_ignore(engine, OutboxMessage).on_conflict_do_nothing(index_elements=["key"]), rows)
        session.flush()
        after = session.scalar(select(func.count()).select_from(OutboxMessage))
    return int(after - before)


_HOST = socket.gethostname().replace(":", "-")[:40] or "localhost"


LIVE: set[str] = set()  # the owners of the deliveries running in this process


def _pid_namespace() -> int:
    """The process id namespace (Linux): the same pid in another container is another process."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def owner_id(pid: int | None = None) -> str:
    """A deliverer's id: this machine, its pid namespace, the process and a random tag (one per delivery)."""
    return f"{_HOST}:{_pid_namespace()}:{pid or os.getpid()}:{uuid.uuid4().hex[:8]}"


def _gone(owner: str | None) -> bool:
    """A claim whose deliverer is known to have ended although its lease runs on: a process of this machine (and
    pid namespace) that no longer exists, or a delivery of this very process that is over. Anything else, another
    machine's deliverer in particular, is alive until its lease runs out."""
    parts = (owner or "").rsplit(":", 3)
    if len(parts) != 4 or os.name != "posix":
        return False
    host, namespace, pid, _ = parts
    if host != _HOST or namespace != str(_pid_namespace()) or not pid.isdigit() or int(pid) <= 0:
        return False
    if int(pid) == os.getpid():
        return owner not in LIVE
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's), or cannot be asked: alive
        return False
    return False


@dataclass(frozen=True)
class Lease:
    owner: str
    seconds: float

    def until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.seconds)


def _lapsed(now: dt.datetime) -> ColumnElement[bool]:
    """A lease that has run out, or was given up (or never set: a row claimed before claims had owners)."""
    return or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)


def _of(query, campaign: str | None):  # noqa: ANN001, ANN202 - a select or an update, returned as it came
    return query.where(OutboxMessage.campaign_id == campaign) if campaign else query


def mark_row(engine: Engine, row_id: int, lease: Lease, **values: object) -> bool:
    """Mark one of our rows; False when the claim is not ours any more (it lapsed and another took it over)."""
    with session_scope(engine) as session:
        done = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == row_id, OutboxMessage.state == "sending", OutboxMessage.claimed_by == lease.owner
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return done.rowcount == 1


def claim_rows(session: Session, ids: list[int], lease: Lease) -> set[int]:
    """Take pending rows for sending, in one conditional UPDATE; the ones another deliverer took first are left
    out. (A row left ``sending`` is never claimed here, where it would be sent at once: ``take_over`` takes it
    when its lease has lapsed, so that it is looked up first.)"""
    if not ids:
        return set()
    now = pendulum.now("UTC")
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.state == "pending")
        .values(
            state="sending",
            claimed_at=now,
            claimed_by=lease.owner,
            lease_until=lease.until(now),
            attempts=OutboxMessage.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    taken = select(OutboxMessage.id).where(
        OutboxMessage.id.in_(ids), OutboxMessage.state == "sending", OutboxMessage.claimed_by == lease.owner
    )
    return set(session.scalars(taken))


def take_over(engine: Engine, campaign: str | None, lease: Lease) -> list[OutboxMessage]:
    """The ``sending`` rows this deliverer may resolve, now its own: its own, and those whose lease lapsed or whose
    deliverer is gone (one conditional UPDATE). ``claimed_at`` stays: a lookup searches from the last attempt."""
    with session_scope(engine) as session:
        owners = session.scalars(
            _of(select(OutboxMessage.claimed_by).where(OutboxMessage.state == "sending").distinct(), campaign)
        )
        gone = sorted({owner for owner in owners if owner and owner != lease.owner and _gone(owner)})
    now = pendulum.now("UTC")
    ours = [OutboxMessage.claimed_by == lease.owner, _lapsed(now)]
    if gone:
        ours.append(OutboxMessage.claimed_by.in_(gone))
    with session_scope(engine) as session:  # the write first: on SQLite a read then a write may not upgrade
        session.execute(
            _of(update(OutboxMessage).where(OutboxMessage.state == "sending", or_(*ours)), campaign)
            .values(claimed_by=lease.owner, lease_until=lease.until(now))
            .execution_options(synchronize_session=False)
        )
        query = select(OutboxMessage).where(OutboxMessage.state == "sending", OutboxMessage.claimed_by == lease.owner)
        rows = list(session.scalars(_of(query, campaign).order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def renew_lease(engine: Engine, lease: Lease, until: dt.datetime | None) -> None:
    """Renew the leases of the rows this deliverer holds (``until`` None: give them up, at its end)."""
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == "sending", OutboxMessage.claimed_by == lease.owner)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )


def anything_left(engine: Engine, campaign: str | None, lease: Lease) -> bool:
    """Rows this deliverer can still act on: pending ones, and ``sending`` ones that are its own or that it may
    take over. Rows under another live deliverer's lease are that deliverer's business."""
    now = pendulum.now("UTC")
    with session_scope(engine) as session:
        mine = and_(OutboxMessage.state == "sending", or_(OutboxMessage.claimed_by == lease.owner, _lapsed(now)))
        query = select(OutboxMessage.id).where(or_(OutboxMessage.state == "pending", mine)).limit(1)
        if session.scalar(_of(query, campaign)) is not None:
            return True
        owners = _of(select(OutboxMessage.claimed_by).where(OutboxMessage.state == "sending").distinct(), campaign)
        return any(_gone(owner) for owner in session.scalars(owners))


def rows_in(engine: Engine, state: str, campaign: str | None) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.state == state).order_by(OutboxMessage.id)
        if campaign:
            query = query.where(OutboxMessage.campaign_id == campaign)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def counts(engine: Engine, campaign: str | None = None) -> dict[str, int]:
    with session_scope(engine) as session:
        query = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
        if campaign:
            query = query.where(OutboxMessage.campaign_id == campaign)
        return {state: int(n) for state, n in session.execute(query)}
