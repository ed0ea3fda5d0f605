"""A local fake of the Slack Web API for the real slack-sdk client: the methods the outbox uses, a per-channel
rate limit answered with 429 and Retry-After, and faults on demand (500s, slow answers past the client's
timeout, an outage). It runs in a thread on 127.0.0.1 (uvicorn) and keeps every accepted message, so that
tests and the benchmark can count what arrived, and how often.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TOKEN = "xoxb-fake-token"


@dataclass
class FakeSlack:
    """``faults`` holds what the next chat.postMessage calls meet: "500", "500-after" (the message is taken,
    then a 500), "slow" (taken, answered after ``slow_seconds``), "429"; ``down`` answers every call 503."""

    per_channel_per_second: float = 1.0
    slow_seconds: float = 3.0
    messages: list[dict] = field(default_factory=list)
    faults: deque[str] = field(default_factory=deque)
    calls: Counter = field(default_factory=Counter)
    down: bool = False
    _last: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    # -- the API ---------------------------------------------------------------------------------------

    async def _params(self, request: Request) -> dict:
        if request.headers.get("content-type", "").startswith("application/json"):
            return await request.json()
        return dict((await request.form()) or {}) | dict(request.query_params)

    def _refuse(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        if self.down:
            return JSONResponse({"ok": False, "error": "service_unavailable"}, status_code=503)
        return None

    async def post_message(self, request: Request) -> JSONResponse:
        self.calls["chat.postMessage"] += 1
        refused = self._refuse(request)
        if refused:
            return refused
        params = await self._params(request)
        channel = params.get("channel", "")
        fault = self.faults.popleft() if self.faults else None
        if fault == "500":
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=500)
        if fault == "429":
            return JSONResponse({"ok": False, "error": "ratelimited"}, status_code=429, headers={"Retry-After": "1"})
        with self._lock:
            now = time.monotonic()
            wait = self._last.get(channel, -math.inf) + 1.0 / self.per_channel_per_second - now
            if wait > 0:
                self.calls["429"] += 1
                return JSONResponse(
                    {"ok": False, "error": "ratelimited"},
                    status_code=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
            self._last[channel] = now
            ts = f"{time.time():.0f}.{next(self._ts):06d}"
            message = {"channel": channel, "text": params.get("text"), "ts": ts, "metadata": params.get("metadata")}
            self.messages.append(message)
        if fault == "500-after":
            return JSONResponse({"ok": False, "error": "internal_error"}, status_code=500)
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)  # the client has given up by now; the message is in
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message})

    async def history(self, request: Request) -> JSONResponse:
        self.calls["conversations.history"] += 1
        refused = self._refuse(request)
        if refused:
            return refused
        params = await self._params(request)
        channel, oldest = params.get("channel"), float(params.get("oldest") or 0)
        found = [m for m in reversed(self.messages) if m["channel"] == channel and float(m["ts"]) >= oldest]
        return JSONResponse({"ok": True, "messages": found, "has_more": False})

    async def channels(self, request: Request) -> JSONResponse:
        self.calls["conversations.list"] += 1
        refused = self._refuse(request)
        if refused:
            return refused
        names = sorted({m["channel"] for m in self.messages})
        channels = [{"id": name, "name": name.removeprefix("#")} for name in names]  # the fake's ids are names
        return JSONResponse({"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})

    # -- running -----------------------------------------------------------------------------------------

    def keys(self) -> Counter:
        """How often each dedupe key arrived."""
        return Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in self.messages)

    async def stats(self, request: Request) -> JSONResponse:
        """For a fake in another process: how often each key arrived, and the calls made."""
        return JSONResponse({"keys": dict(self.keys()), "calls": dict(self.calls)})

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/chat.postMessage", self.post_message, methods=["POST"]),
                Route("/api/conversations.history", self.history, methods=["GET", "POST"]),
                Route("/api/conversations.list", self.channels, methods=["GET", "POST"]),
                Route("/_fake/stats", self.stats, methods=["GET"]),
            ]
        )

    def serve(self) -> FakeServer:
        server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        return FakeServer(self, server, thread, f"http://127.0.0.1:{port}/api/")


@dataclass
class FakeServer:
    fake: FakeSlack
    server: uvicorn.Server
    thread: threading.Thread
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    """Run the fake in a process of its own (the benchmark): ``python -m tests.fake_slack PORT [FAULT ...]``."""
    import sys

    fake = FakeSlack(slow_seconds=2.5)
    fake.faults.extend(sys.argv[2:])
    uvicorn.run(fake.app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")


if __name__ == "__main__":
    main()
