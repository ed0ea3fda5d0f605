"""The reminder outbox: every reminder is written to the store first, then sent, each dedupe key once.

``enqueue`` inserts reminders whose key is new (a rerun of the same day adds nothing). ``deliver`` sends
what is pending through a sender (Slack, or a local sink file without a token):
- a row is claimed (``sending``) before it is sent and marked ``sent`` with the receipt after;
- a row found ``sending`` at the start (the deliverer died between the two) is looked up at the
  destination by its key: found, it is marked sent; not found, it is sent again. So a crash, a rerun
  or an outage never loses a reminder and never sends one twice;
- a 429 (after the client has waited out Retry-After) means not delivered: the row goes back to
  pending; a 5xx, a timeout or a dropped connection may have delivered it: the row stays ``sending``
  and is looked up by key before any new attempt. Rounds repeat with backoff, up to ``max_attempts``
  per row; a permanent failure (unknown channel, bad token) marks the row failed at once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pendulum
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from include.paths import campaign_home
from include.reminders import Reminder
from include.store.db import session_scope
from include.store.models import OutboxMessage

MAX_ATTEMPTS = 5


class TransientError(Exception):
    """Not delivered; try again later (rate limited, or the destination could not be asked)."""


class AmbiguousError(Exception):
    """Maybe delivered (a 5xx, a timeout, a dropped connection): look the key up before sending again."""


class PermanentError(Exception):
    """Trying again will not help (an unknown channel, a revoked token)."""


class Sender(Protocol):
    name: str
    pace: dict[str, float]  # deliver()'s workers and per_channel_interval for this destination

    def send(self, message: OutboxMessage) -> str:
        """Deliver the message; return the receipt (a Slack ts, a sink line)."""
        ...

    def find(self, message: OutboxMessage) -> str | None:
        """The receipt of an earlier delivery of this message's key, if there was one."""
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


def _set(engine: Engine, row_id: int, **values: object) -> None:
    with session_scope(engine) as session:
        session.execute(update(OutboxMessage).where(OutboxMessage.id == row_id).values(**values))


def _claim(engine: Engine, ids: list[int]) -> set[int]:
    """Take the rows for sending; the ones another deliverer took first are left out."""
    now = pendulum.now("UTC")
    with session_scope(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.state == "pending")
            .values(state="sending", claimed_at=now, attempts=OutboxMessage.attempts + 1)
        )
        taken = select(OutboxMessage.id).where(
            OutboxMessage.id.in_(ids), OutboxMessage.state == "sending", OutboxMessage.claimed_at == now
        )
        return set(session.scalars(taken))


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
) -> Delivery:
    """Send every pending reminder once; resolve the ones a crash or an unclear answer left ``sending`` first.

    Messages go out in slots of one per channel, ``workers`` at a time; a channel's next message waits
    ``per_channel_interval`` seconds after its previous one was answered (Slack allows about one message
    per second per channel), so a full channel does not hold up the others and 429s stay rare.
    """
    result = Delivery()
    for round_ in range(max_attempts + 1):
        _resolve(engine, sender, campaign, max_attempts, result, progress)
        pending = _rows(engine, "pending", campaign)
        if not pending and not _rows(engine, "sending", campaign):
            break
        _send_pass(engine, sender, pending, workers, per_channel_interval, max_attempts, result, progress)
        if _rows(engine, "pending", campaign) or _rows(engine, "sending", campaign):
            time.sleep(min(backoff * 2**round_, 30.0))
    return result


def _send_pass(
    engine: Engine,
    sender: Sender,
    rows: list[OutboxMessage],
    workers: int,
    interval: float,
    max_attempts: int,
    result: Delivery,
    progress: Callable[[str], None],
) -> None:
    """Each channel its own queue: its next message goes ``interval`` after the answer to its previous one.

    Messages are claimed in batches (the heads of the channels that are ready) and their outcomes written in
    batches. An unclear answer is looked up by its key at once: found, it counts as sent; not found, the
    message goes back to the head of its channel's queue (a new attempt); the lookup failing too, it stays
    ``sending`` for the next round.
    """
    queues: dict[str, deque[OutboxMessage]] = defaultdict(deque)
    for row in rows:
        queues[row.channel].append(row)
    ready_at = dict.fromkeys(queues, 0.0)
    in_flight: dict[Future, str] = {}
    lock = threading.Lock()
    sends = [0]

    def one(row: OutboxMessage) -> tuple[OutboxMessage, str, str]:
        try:
            receipt = sender.send(row)
        except TransientError as error:
            return row, "transient", str(error)[:500]
        except PermanentError as error:
            return row, "permanent", str(error)[:500]
        except AmbiguousError as error:
            try:
                found = sender.find(row)
            except (TransientError, AmbiguousError):
                return row, "ambiguous", str(error)[:500]
            return (row, "recovered", found) if found is not None else (row, "again", str(error)[:500])
        with lock:
            sends[0] += 1
            _crash_point(sends[0])
        return row, "sent", receipt

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while in_flight or any(queues.values()):
            now = time.monotonic()
            busy = set(in_flight.values())
            ready = [ch for ch, queue in queues.items() if queue and ch not in busy and ready_at[ch] <= now]
            if ready:
                batch = [queues[channel].popleft() for channel in ready]
                claimed = _claim(engine, [row.id for row in batch])
                for row in batch:
                    if row.id in claimed:
                        in_flight[pool.submit(one, row)] = row.channel
            waiting = [ready_at[ch] for ch, queue in queues.items() if queue and ch not in set(in_flight.values())]
            timeout = max(0.0, min(waiting) - time.monotonic()) if waiting else None
            if not in_flight:
                time.sleep(timeout or 0.0)
                continue
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            outcomes = []
            for future in done:
                channel = in_flight.pop(future)
                row, outcome, value = future.result()
                if outcome != "again":  # a message Slack did not take leaves the channel's pace as it was
                    # after the answer: Slack has counted the message by then, so the next one cannot meet a 429
                    ready_at[channel] = time.monotonic() + interval
                if outcome == "again" and row.attempts + 1 < max_attempts:
                    row.attempts += 1
                    queues[channel].appendleft(row)
                outcomes.append((row, outcome, value))
            _record(engine, outcomes, max_attempts, result)
            if result.sent and result.sent % 500 < len(outcomes):
                progress(f"已发送 {result.sent} 条")


def _record(
    engine: Engine, outcomes: list[tuple[OutboxMessage, str, str]], max_attempts: int, result: Delivery
) -> None:
    """What the sends came to, in one transaction."""
    now = pendulum.now("UTC")
    changes = []
    for row, outcome, value in outcomes:
        if outcome in ("sent", "recovered"):
            changes.append({"id": row.id, "state": "sent", "sent_at": now, "receipt": value})
            result.sent += outcome == "sent"
            result.recovered += outcome == "recovered"
        elif outcome in ("transient", "again"):
            exhausted = row.attempts + (outcome == "transient") >= max_attempts
            changes.append({"id": row.id, "state": "failed" if exhausted else "pending", "last_error": value})
            result.failed += exhausted
            result.retried += not exhausted
        elif outcome == "ambiguous":  # the lookup failed too: stays sending, looked up next round
            changes.append({"id": row.id, "state": "sending", "last_error": value})
            result.retried += 1
        else:
            changes.append({"id": row.id, "state": "failed", "last_error": value})
            result.failed += 1
    if changes:
        with session_scope(engine) as session:
            session.execute(update(OutboxMessage), changes)


def _resolve(
    engine: Engine,
    sender: Sender,
    campaign: str | None,
    max_attempts: int,
    result: Delivery,
    progress: Callable[[str], None],
) -> None:
    """Rows left ``sending``: delivered (found by key at the destination) or not (back to pending)."""
    for row in _rows(engine, "sending", campaign):
        try:
            receipt = sender.find(row)
        except (TransientError, AmbiguousError) as error:
            progress(f"暂时无法核对 {row.key}（{error}），稍后再试")
            continue
        if receipt is not None:
            _set(engine, row.id, state="sent", sent_at=pendulum.now("UTC"), receipt=receipt)
            result.recovered += 1
        elif row.attempts >= max_attempts:
            _set(engine, row.id, state="failed")
            result.failed += 1
        else:
            _set(engine, row.id, state="pending")


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
        self._lock = threading.Lock()

    def send(self, message: OutboxMessage) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = {"key": message.key, "channel": message.channel, "kind": message.kind, "text": message.text}
        with self._lock, self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(line, ensure_ascii=False) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        return f"{self.path.name}:{message.key}"

    def find(self, message: OutboxMessage) -> str | None:
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


class SlackSender:
    """Slack's Web API through slack-sdk: 429 answers wait out Retry-After, 5xx and connection errors back off.

    Each message carries its dedupe key as Slack message metadata, so that after a crash the key can be
    looked for in the channel's history before sending again.
    """

    name = "slack"
    EVENT = "campaign_reminder"
    # chat.postMessage allows about one message per second per channel: eight channels at a time.
    pace = {"workers": 8, "per_channel_interval": 1.0}  # noqa: RUF012 - read only

    def __init__(self, token: str, base_url: str | None = None, timeout: float = 10.0, retries: int = 3) -> None:
        from slack_sdk import WebClient
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        # Only 429s are retried by the client: Slack did not take the message. A blind retry after a 5xx or
        # a timeout could post it twice; those come back as AmbiguousError and the outbox looks the key up.
        self.client = WebClient(
            token=token,
            base_url=base_url or WebClient.BASE_URL,
            timeout=max(1, int(timeout)),
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=retries)],
        )
        self._ids: dict[str, str] | None = None
        self._ids_lock = threading.Lock()

    def _call(self, method: Callable[..., object], **kwargs: object) -> dict:
        from slack_sdk.errors import SlackApiError

        try:
            response = method(**kwargs)
        except SlackApiError as error:
            status = error.response.status_code
            code = error.response.get("error", "") if hasattr(error.response, "get") else ""
            if status == 429:
                raise TransientError(f"Slack {status} {code}".strip()) from error
            if status >= 500:
                raise AmbiguousError(f"Slack {status} {code}".strip()) from error
            raise PermanentError(f"Slack {status} {code}".strip()) from error
        except OSError as error:  # timeouts and connection errors (urllib's URLError is an OSError)
            raise AmbiguousError(f"连接 Slack 失败：{error}") from error
        return response.data  # type: ignore[attr-defined]

    def _channel_id(self, channel: str) -> str | None:
        """A channel's id for reading its history: configured ids pass through; names are looked up (and
        looked up again when a name is not known yet: the channel may be newer than the list)."""
        name = channel.removeprefix("#")
        if name[:1] in "CGD" and name[1:].isalnum() and name.isupper():
            return name
        with self._ids_lock:
            if self._ids is None or name not in self._ids:
                ids: dict[str, str] = {}
                cursor = None
                while True:
                    data = self._call(self.client.conversations_list, limit=1000, cursor=cursor, exclude_archived=True)
                    ids.update({item["name"]: item["id"] for item in data.get("channels", [])})
                    cursor = (data.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        break
                self._ids = ids
            return self._ids.get(name)

    def send(self, message: OutboxMessage) -> str:
        data = self._call(
            self.client.chat_postMessage,
            channel=message.channel,  # an id or a name, as configured
            text=message.text,
            metadata={"event_type": self.EVENT, "event_payload": {"key": message.key}},
        )
        return str(data.get("ts"))

    def find(self, message: OutboxMessage) -> str | None:
        channel = self._channel_id(message.channel)
        if channel is None:  # no such channel: nothing was posted there
            return None
        oldest = (message.claimed_at or message.created_at) - dt.timedelta(minutes=5)
        cursor = None
        while True:
            data = self._call(
                self.client.conversations_history,
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
