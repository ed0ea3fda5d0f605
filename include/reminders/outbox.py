"""The reminder outbox: every reminder is written to the store first, then sent, each dedupe key once.

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

import asyncio
import datetime as dt
import json
import os
import socket
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pendulum
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from include.paths import campaign_home
from include.reminders.policy import Reminder
from include.store.db import session_scope
from include.store.models import OutboxMessage

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

MAX_ATTEMPTS = 5
LEASE_SECONDS = 120.0


class TransientError(Exception):
    """Not delivered; try again later (rate limited, or the destination could not be asked)."""


class AmbiguousError(Exception):
    """Maybe delivered (a 5xx, a timeout, a dropped connection): look the key up before sending again."""


class PermanentError(Exception):
    """Trying again will not help (an unknown channel, a revoked token)."""


class Sender(Protocol):
    name: str
    pace: dict[str, float]  # deliver()'s workers and per_channel_interval for this destination

    async def send(self, message: OutboxMessage) -> str:
        """Deliver the message; return the receipt (a Slack ts, a sink line)."""
        ...

    async def find(self, message: OutboxMessage) -> str | None:
        """The receipt of an earlier delivery of this message's key, if there was one."""
        ...

    async def close(self) -> None:
        """Release connections at the end of a delivery."""
        ...


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
    dialect = {"postgresql": postgresql, "sqlite": sqlite}[engine.dialect.name]
    with session_scope(engine) as session:
        before = session.scalar(select(func.count()).select_from(OutboxMessage))
        session.execute(dialect.insert(OutboxMessage).on_conflict_do_nothing(index_elements=["key"]), rows)
        session.flush()
        after = session.scalar(select(func.count()).select_from(OutboxMessage))
    return int(after - before)


@dataclass
class Delivery:
    sent: int = 0
    recovered: int = 0  # found delivered at the destination after a crash
    retried: int = 0  # transient failures left pending
    failed: int = 0

    def as_json(self) -> dict[str, int]:
        return {"sent": self.sent, "recovered": self.recovered, "retried": self.retried, "failed": self.failed}


# -- claims: an owner and a lease ----------------------------------------------------------------------------

_HOST = socket.gethostname().replace(":", "-")[:40] or "localhost"
_LIVE: set[str] = set()  # the owners of the deliveries running in this process


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
        return owner not in _LIVE
    try:
        os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's), or cannot be asked: alive
        return False
    return False


@dataclass(frozen=True)
class _Lease:
    owner: str
    seconds: float

    def until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.seconds)


def _lapsed(now: dt.datetime) -> ColumnElement[bool]:
    """A lease that has run out, or was given up (or never set: a row claimed before claims had owners)."""
    return or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now)


def _of(query, campaign: str | None):  # noqa: ANN001, ANN202 - a select or an update, returned as it came
    return query.where(OutboxMessage.campaign_id == campaign) if campaign else query


def _mark(engine: Engine, row_id: int, lease: _Lease, **values: object) -> bool:
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


def _claim(session: Session, ids: list[int], lease: _Lease) -> set[int]:
    """Take pending rows for sending, in one conditional UPDATE; the ones another deliverer took first are left
    out. (A row left ``sending`` is never claimed here, where it would be sent at once: ``_take_over`` takes it
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


def _take_over(engine: Engine, campaign: str | None, lease: _Lease) -> list[OutboxMessage]:
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


def _renew(engine: Engine, lease: _Lease, until: dt.datetime | None) -> None:
    """Renew the leases of the rows this deliverer holds (``until`` None: give them up, at its end)."""
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.state == "sending", OutboxMessage.claimed_by == lease.owner)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        )


def _left(engine: Engine, campaign: str | None, lease: _Lease) -> bool:
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


def _why(error: Exception) -> str:
    text = str(error) if isinstance(error, (TransientError, AmbiguousError, PermanentError)) else repr(error)
    return text[:500]


def _rows(engine: Engine, state: str, campaign: str | None) -> list[OutboxMessage]:
    with session_scope(engine) as session:
        query = select(OutboxMessage).where(OutboxMessage.state == state).order_by(OutboxMessage.id)
        if campaign:
            query = query.where(OutboxMessage.campaign_id == campaign)
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


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
    lease = _Lease(owner_id(), seconds)
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
    lease: _Lease,
) -> Delivery:
    result = Delivery()
    _LIVE.add(lease.owner)
    stop = asyncio.Event()

    async def keep_leases() -> None:  # the claims held while sends wait for a slot, a Retry-After, a lookup
        while True:
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(lease.seconds / 3, 0.05))
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(_renew, engine, lease, lease.until(pendulum.now("UTC")))
            except Exception as error:  # the store may be busy: the next beat tries again
                progress(f"无法续期发送中的提醒（{error!r}）")

    beat = asyncio.create_task(keep_leases())
    try:
        for round_ in range(max_attempts + 1):
            await _resolve(engine, sender, campaign, max_attempts, result, progress, lease)
            if not _left(engine, campaign, lease):
                break
            pending = _rows(engine, "pending", campaign)
            await _send_pass(engine, sender, pending, workers, interval, max_attempts, result, progress, lease)
            if _left(engine, campaign, lease):
                await asyncio.sleep(min(backoff * 2**round_, 30.0))
    finally:
        stop.set()
        await beat  # a renewal under way ends before the leases are given up
        try:
            await sender.close()
        finally:
            try:  # what is still ours and sending (an unclear answer) is left to the next deliverer at once
                _renew(engine, lease, None)
            finally:
                _LIVE.discard(lease.owner)
    return result


class _Keeper:
    """Writes the store in batches from a thread, so that no send waits for it: the outcomes that came in, then
    the claims asked for meanwhile (a claim is answered True when the row is ours to send)."""

    def __init__(
        self, engine: Engine, max_attempts: int, result: Delivery, progress: Callable[[str], None], lease: _Lease
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
            return _claim(session, claims, self.lease)

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
    lease: _Lease,
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
    lease: _Lease,
) -> None:
    """Rows left ``sending`` that are this deliverer's to resolve (its own, or taken over: their lease lapsed, their
    deliverer is gone): delivered (found by key at the destination) or not (back to pending). A row under another
    live deliverer's lease is not touched."""
    for row in _take_over(engine, campaign, lease):
        try:
            receipt = await sender.find(row)
        except (TransientError, AmbiguousError) as error:
            progress(f"暂时无法核对 {row.key}（{error}），稍后再试")
            continue
        except Exception as error:  # a PermanentError, or the sender broke: this row fails, not all
            progress(f"无法核对 {row.key}（{_why(error)}），不再发送")
            result.failed += _mark(engine, row.id, lease, state="failed", last_error=_why(error))
            continue
        if receipt is not None:
            result.recovered += _mark(engine, row.id, lease, state="sent", sent_at=pendulum.now("UTC"), receipt=receipt)
        elif row.attempts >= max_attempts:
            result.failed += _mark(engine, row.id, lease, state="failed")
        else:
            _mark(engine, row.id, lease, state="pending")


def _crash_point(n: int) -> None:
    """Fault drills only: die right after the n-th send, before its slot is marked sent."""
    if os.environ.get("CAMPAIGN_OUTBOX_CRASH_AFTER") == str(n):
        os._exit(70)


def counts(engine: Engine, campaign: str | None = None) -> dict[str, int]:
    with session_scope(engine) as session:
        query = select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
        if campaign:
            query = query.where(OutboxMessage.campaign_id == campaign)
        return {state: int(n) for state, n in session.execute(query)}


# -- senders ---------------------------------------------------------------------------------------------


def sink_path() -> Path:
    return campaign_home() / "reminders" / "sink.jsonl"


class SinkSender:
    """Without a Slack token: each reminder is a JSON line appended (and fsynced) to ``sink_path()``."""

    name = "sink"
    pace: dict[str, float] = {}  # noqa: RUF012 - read only: a file has no rate limit

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or sink_path()

    async def send(self, message: OutboxMessage) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"key": message.key, "channel": message.channel, "kind": message.kind, "text": message.text}
        with self.path.open("a", encoding="utf-8") as sink:  # one event loop: one writer at a time
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        return f"{self.path.name}:{message.key}"

    async def find(self, message: OutboxMessage) -> str | None:
        if not self.path.is_file():
            return None
        with self.path.open(encoding="utf-8") as sink:
            for line in sink:
                try:
                    if json.loads(line).get("key") == message.key:
                        return f"{self.path.name}:{message.key}"
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash: that send did not complete
        return None

    async def close(self) -> None:
        return None


class SlackSender:
    """Slack's Web API through slack-sdk's ``AsyncWebClient``: 429 answers wait out Retry-After; 5xx, timeouts
    and dropped connections are unclear answers that the outbox resolves by looking the key up.

    Each message carries its dedupe key as Slack message metadata, so that after a crash the key can be
    looked for in the channel's history before sending again. The client and its aiohttp session are made
    inside each delivery's event loop and closed at its end.
    """

    name = "slack"
    EVENT = "campaign_reminder"
    # chat.postMessage allows about one message per second per channel: eight sends in flight at a time.
    pace = {"workers": 8, "per_channel_interval": 1.0}  # noqa: RUF012 - read only

    def __init__(self, token: str, base_url: str | None = None, timeout: float = 10.0, retries: int = 3) -> None:
        from slack_sdk.web.async_client import AsyncWebClient

        self.token, self.timeout, self.retries = token, max(1, int(timeout)), retries
        self.base_url = base_url or AsyncWebClient.BASE_URL
        self._client: AsyncWebClient | None = None
        self._ids: dict[str, str] | None = None

    def _web(self) -> AsyncWebClient:
        if self._client is None:
            import aiohttp
            from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
            from slack_sdk.web.async_client import AsyncWebClient

            # Only 429s are retried by the client: Slack did not take the message. A blind retry after a 5xx or
            # a timeout could post it twice; those come back as AmbiguousError and the outbox looks the key up.
            self._client = AsyncWebClient(
                token=self.token,
                base_url=self.base_url,
                timeout=self.timeout,
                session=aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)),
                retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=self.retries)],
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None and self._client.session is not None:
            await self._client.session.close()
        self._client = None

    async def _call(self, method: str, **kwargs: object) -> dict:
        import aiohttp
        from slack_sdk.errors import SlackApiError

        try:
            response = await getattr(self._web(), method)(**kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            code = error.response.get("error", "") if hasattr(error.response, "get") else ""
            if status == 429:
                raise TransientError(f"Slack {status} {code}".strip()) from error
            if status >= 500:
                raise AmbiguousError(f"Slack {status} {code}".strip()) from error
            raise PermanentError(f"Slack {status} {code}".strip()) from error
        except (OSError, aiohttp.ClientError) as error:  # timeouts (TimeoutError is an OSError) and connections
            raise AmbiguousError(f"连接 Slack 失败：{error!r}") from error
        return response.data  # type: ignore[return-value]

    async def _channel_id(self, channel: str) -> str | None:
        """A channel's id for reading its history: configured ids pass through; names are looked up (and
        looked up again when a name is not known yet: the channel may be newer than the list)."""
        name = channel.removeprefix("#")
        if name[:1] in "CGD" and name[1:].isalnum() and name.isupper():
            return name
        if self._ids is None or name not in self._ids:
            ids: dict[str, str] = {}
            cursor = None
            while True:
                data = await self._call("conversations_list", limit=1000, cursor=cursor, exclude_archived=True)
                ids.update({item["name"]: item["id"] for item in data.get("channels", [])})
                cursor = (data.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
            self._ids = ids
        return self._ids.get(name)

    async def send(self, message: OutboxMessage) -> str:
        data = await self._call(
            "chat_postMessage",
            channel=message.channel,  # an id or a name, as configured
            text=message.text,
            metadata={"event_type": self.EVENT, "event_payload": {"key": message.key}},
        )
        return str(data.get("ts"))

    async def find(self, message: OutboxMessage) -> str | None:
        channel = await self._channel_id(message.channel)
        if channel is None:  # no such channel: nothing was posted there
            return None
        oldest = (message.claimed_at or message.created_at) - dt.timedelta(minutes=5)
        cursor = None
        while True:
            data = await self._call(
                "conversations_history",
                channel=channel,
                oldest=f"{oldest.timestamp():.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for item in data.get("messages", []):
                payload = (item.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == message.key:
                    return str(item.get("ts"))
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None


def sender_from_env() -> Sender:
    """Slack when ``SLACK_BOT_TOKEN`` is set (``SLACK_API_URL`` for another endpoint), else the local sink."""
    token = os.environ.get("SLACK_BOT_TOKEN")
    if token:
        return SlackSender(token, base_url=os.environ.get("SLACK_API_URL"))
    return SinkSender()
