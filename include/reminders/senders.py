"""Where reminders go: Slack (slack-sdk's ``AsyncWebClient``), or a local sink file without a token, behind
one ``Sender`` protocol; the errors a sender raises say what the outbox does next (include/reminders/outbox.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from include.paths import campaign_home
from include.store.models import OutboxMessage

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient


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
