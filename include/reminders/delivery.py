"""Sending what the outbox holds: ``deliver`` runs one event loop over the pending rows, a queue per channel,
claims and leases kept by include/reminders/outbox.py, answers read as include/reminders/senders.py's errors."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

import pendulum
from sqlalchemy import bindparam, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from include.reminders.outbox import (
    LEASE_SECONDS,
    LIVE,
    MAX_ATTEMPTS,
    Lease,
    anything_left,
    claim_rows,
    mark_row,
    owner_id,
    renew_lease,
    rows_in,
    take_over,
)
from include.reminders.senders import AmbiguousError, PermanentError, Sender, TransientError
from include.store.db import session_scope
from include.store.models import OutboxMessage


@dataclass
class Delivery:
    sent: int = 0
    recovered: int = 0  # found delivered at the destination after a crash
    retried: int = 0  # transient failures left pending
    failed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"sent": self.sent, "recovered": self.recovered, "retried": self.retried, "failed": self.failed}


def deliver(
    engine: Engine,
    sender: Sender,
    *,
    campaign: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    backoff: float = 0.5,
    workers: int = 1,
    per_channel_interval: float = 0.0,
    progress: Callable[[str], None] = lambda _: None,
    lease_seconds: float | None = None,
) -> Delivery:
    """Send every pending reminder once; resolve the ones a crash or an unclear answer left ``sending`` first.

    Each channel is a queue of its own: its next message waits ``per_channel_interval`` seconds after the
    answer to its previous one (Slack allows about one message per second per channel), channels side by side,
    at most ``workers`` sends in flight. So a full channel does not hold up the others and 429s stay rare.
    Claims are held for ``lease_seconds`` (``CAMPAIGN_OUTBOX_LEASE_SECONDS``, else 120), renewed meanwhile.
    """
    seconds = float(lease_seconds or os.environ.get("CAMPAIGN_OUTBOX_LEASE_SECONDS") or LEASE_SECONDS)
    if seconds <= 0:
        raise ValueError(f"lease_seconds must be positive, not {seconds}")
    lease = Lease(owner_id(), seconds)
    return asyncio.run(
        _deliver(engine, sender, campaign, max_attempts, backoff, workers, per_channel_interval, progress, lease)
    )


async def _deliver(
    engine: Engine,
    sender: Sender,
    campaign: str | None,
    max_attempts: int,
    backoff: float,
    workers: int,
    interval: float,
    progress: Callable[[str], None],
    lease: Lease,
) -> Delivery:
    result = Delivery()
    LIVE.add(lease.owner)
    stop = asyncio.Event()

    async def keep_leases() -> None:  # the claims held while sends wait for a slot, a Retry-After, a lookup
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(lease.seconds / 3, 0.05))
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(renew_lease, engine, lease, lease.until(pendulum.now("UTC")))
            except Exception as error:  # the store may be busy: the next beat tries again
                progress(f"无法续期发送中的提醒（{error!r}）")

    beat = asyncio.create_task(keep_leases())
    try:
        for round_ in range(max_attempts + 1):
            await _resolve(engine, sender, campaign, max_attempts, result, progress, lease)
            if not anything_left(engine, campaign, lease):
                break
            pending = rows_in(engine, "pending", campaign)
            await _send_pass(engine, sender, pending, workers, interval, max_attempts, result, progress, lease)
            if anything_left(engine, campaign, lease):
                await asyncio.sleep(min(backoff * 2**round_, 30.0))
    finally:
        stop.set()
        await beat  # a renewal under way ends before the leases are given up
        try:
            await sender.close()
        finally:
            try:  # what is still ours and sending (an unclear answer) is left to the next deliverer at once
                renew_lease(engine, lease, None)
            finally:
                LIVE.discard(lease.owner)
    return result


class _Keeper:
    """Writes the store in batches from a thread, so that no send waits for it: the outcomes that came in, then
    the claims asked for meanwhile (a claim is answered True when the row is ours to send)."""

    def __init__(
        self, engine: Engine, max_attempts: int, result: Delivery, progress: Callable[[str], None], lease: Lease
    ) -> None:
        self.engine, self.max_attempts, self.result, self.progress = engine, max_attempts, result, progress
        self.lease = lease
        self.outcomes: list[tuple[OutboxMessage, str, str]] = []
        self.claims: dict[int, asyncio.Future[bool]] = {}
        self.task: asyncio.Task | None = None

    def record(self, row: OutboxMessage, outcome: str, value: str) -> None:
        self.outcomes.append((row, outcome, value))
        self._kick()

    def claim(self, row: OutboxMessage) -> asyncio.Future[bool]:
        future = asyncio.get_running_loop().create_future()
        self.claims[row.id] = future
        self._kick()
        return future

    def _kick(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def _book(self, outcomes: list[tuple[OutboxMessage, str, str]], claims: list[int]) -> set[int]:
        with session_scope(self.engine) as session:
            # first: one sent again is pending by now
            _record(session, outcomes, self.max_attempts, self.result, self.lease.owner)
            return claim_rows(session, claims, self.lease)

    async def _run(self) -> None:
        while self.outcomes or self.claims:
            outcomes, claims = self.outcomes, self.claims
            self.outcomes, self.claims = [], {}
            before = self.result.sent
            try:
                taken = await asyncio.to_thread(self._book, outcomes, list(claims))
            except BaseException as error:
                for future in claims.values():
                    future.set_exception(error)
                raise
            for row_id, future in claims.items():
                future.set_result(row_id in taken)
            if self.result.sent // 500 > before // 500:
                self.progress(f"已发送 {self.result.sent} 条")

    async def drain(self) -> None:
        while self.task is not None and not self.task.done():
            await self.task
        if self.task is not None:
            self.task.result()  # a failed write is not swallowed


async def _send_pass(
    engine: Engine,
    sender: Sender,
    rows: list[OutboxMessage],
    workers: int,
    interval: float,
    max_attempts: int,
    result: Delivery,
    progress: Callable[[str], None],
    lease: Lease,
) -> None:
    """Each channel its own queue: its next message goes ``interval`` after the answer to its previous one.

    A channel's next message is claimed (``sending``) while the channel waits out its interval, so a message is
    always claimed before it goes out and no send waits for the store. An unclear answer is looked up by its
    key at once: found, it counts as sent; not found, the message goes back to the head of its channel's queue
    (a new attempt); the lookup failing too, it stays ``sending`` for the next round. A permanent answer, or the
    sender breaking on the message, fails that message only.
    """
    queues: dict[str, deque[OutboxMessage]] = defaultdict(deque)
    for row in rows:
        queues[row.channel].append(row)
    keeper = _Keeper(engine, max_attempts, result, progress, lease)
    slots = asyncio.Semaphore(max(1, workers))
    sends = 0

    async def one(row: OutboxMessage) -> tuple[str, str]:
        nonlocal sends
        try:
            receipt = await sender.send(row)
        except TransientError as error:
            return "transient", str(error)[:500]
        except AmbiguousError as error:
            try:
                found = await sender.find(row)
            except (TransientError, AmbiguousError):
                return "ambiguous", str(error)[:500]
            except Exception as lookup:  # permanent, or the sender broke: this message fails
                return "permanent", _why(lookup)
            return ("recovered", found) if found is not None else ("again", str(error)[:500])
        except Exception as error:  # a PermanentError, or the sender broke on this message
            return "permanent", _why(error)
        sends += 1
        _crash_point(sends)
        return "sent", receipt

    async def channel(queue: deque[OutboxMessage]) -> None:
        claim = keeper.claim(queue[0])
        while queue:
            row = queue.popleft()
            if not await claim:  # another deliverer took it: not ours to send
                if queue:
                    claim = keeper.claim(queue[0])
                continue
            async with slots:
                outcome, value = await one(row)
            keeper.record(row, outcome, value)
            if outcome == "again" and row.attempts + 1 < max_attempts:
                row.attempts += 1
                queue.appendleft(row)
            if queue:
                claim = keeper.claim(queue[0])
                if outcome != "again":  # a message Slack did not take leaves the channel's pace as it was
                    # after the answer: Slack has counted the message by then, so the next cannot meet a 429
                    await asyncio.sleep(interval)

    try:
        await asyncio.gather(*(channel(queue) for queue in queues.values()))
    finally:
        await keeper.drain()


def _record(
    session: Session,
    outcomes: list[tuple[OutboxMessage, str, str]],
    max_attempts: int,
    result: Delivery,
    owner: str,
) -> None:
    """What the sends came to, written to the rows that are still ``owner``'s claims (``sending``, ``claimed_by``
    it): a deliverer whose claim lapsed and was taken over leaves the new owner's row as it is."""
    now = pendulum.now("UTC")
    changes = []
    for row, outcome, value in outcomes:
        if outcome in ("sent", "recovered"):
            changes.append({"row_id": row.id, "state": "sent", "sent_at": now, "receipt": value})
            result.sent += outcome == "sent"
            result.recovered += outcome == "recovered"
        elif outcome in ("transient", "again"):
            exhausted = row.attempts + (outcome == "transient") >= max_attempts
            changes.append({"row_id": row.id, "state": "failed" if exhausted else "pending", "last_error": value})
            result.failed += exhausted
            result.retried += not exhausted
        elif outcome == "ambiguous":  # the lookup failed too: stays sending, looked up next round
            changes.append({"row_id": row.id, "state": "sending", "last_error": value})
            result.retried += 1
        else:
            changes.append({"row_id": row.id, "state": "failed", "last_error": value})
            result.failed += 1
    table = OutboxMessage.__table__
    alike: dict[tuple[str, ...], list[dict[str, object]]] = defaultdict(list)
    for change in changes:  # one executemany per set of columns
        alike[tuple(sorted(change))].append(change)
    for batch in alike.values():
        session.execute(
            update(table).where(
                table.c.id == bindparam("row_id"), table.c.state == "sending", table.c.claimed_by == owner
            ),
            batch,
        )


async def _resolve(
    engine: Engine,
    sender: Sender,
    campaign: str | None,
    max_attempts: int,
    result: Delivery,
    progress: Callable[[str], None],
    lease: Lease,
) -> None:
    """Rows left ``sending`` that are this deliverer's to resolve (its own, or taken over: their lease lapsed, their
    deliverer is gone): delivered (found by key at the destination) or not (back to pending). A row under another
    live deliverer's lease is not touched."""
    for row in take_over(engine, campaign, lease):
        try:
            receipt = await sender.find(row)
        except (TransientError, AmbiguousError) as error:
            progress(f"暂时无法核对 {row.key}（{error}），稍后再试")
            continue
        except Exception as error:  # a PermanentError, or the sender broke: this row fails, not all
            progress(f"无法核对 {row.key}（{_why(error)}），不再发送")
            result.failed += mark_row(engine, row.id, lease, state="failed", last_error=_why(error))
            continue
        if receipt is not None:
            result.recovered += mark_row(
                engine, row.id, lease, state="sent", sent_at=pendulum.now("UTC"), receipt=receipt
            )
        elif row.attempts >= max_attempts:
            result.failed += mark_row(engine, row.id, lease, state="failed")
        else:
            mark_row(engine, row.id, lease, state="pending")


def _crash_point(n: int) -> None:
    """Fault drills only: die right after the n-th send, before its slot is marked sent."""
    if os.environ.get("CAMPAIGN_OUTBOX_CRASH_AFTER") == str(n):
        os._exit(70)


def _why(error: Exception) -> str:
    text = str(error) if isinstance(error, (TransientError, AmbiguousError, PermanentError)) else repr(error)
    return text[:500]
