"""The web app as the plugin mounts it: checked at start-up, built at its first request.

Airflow imports the plugins in every process that reads them (the scheduler, the DAG processor, the
triggerer, the api-server), and only the api-server serves the app. Importing the app (FastAPI, the
routers, the templates, the forms) costs about 0.4 s, so the plugin mounts this small ASGI app instead,
which imports and builds the real one (include/web/app.py) when the first request arrives. What must fail
at start-up still does: the token key is checked here, when the plugin is loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from include.door.keys import check_configuration

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _build() -> ASGIApp:
    from include.web.app import create_app

    return create_app()


class CampaignApp:
    """An ASGI app that builds the campaign's web app once, at its first request, and hands every request to it."""

    def __init__(self, build: Callable[[], ASGIApp] = _build) -> None:
        check_configuration()  # outside a local run, no token key is a start-up error, not a first-request one
        self._build = build
        self._app: ASGIApp | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def built(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._app is None:
                    # Built off the event loop, so that Airflow's own pages are not held up meanwhile.
                    self._app = await asyncio.to_thread(self._build)
        await self._app(scope, receive, send)
