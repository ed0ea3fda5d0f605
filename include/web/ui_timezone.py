"""Airflow's UI in Beijing time unless its user chose otherwise.

Airflow 3 dropped the server's ``default_ui_timezone`` (apache/airflow#49176): its UI shows the browser's time
zone until the user picks one, and keeps the pick in the browser (``localStorage["timezone"]``, JSON). The
campaign's instants are Beijing times (seed 000: "12月31日24时关闭信息系统"), and a browser on a server, a
laptop set to UTC or an office machine abroad would show them eight hours off. This root middleware of the
api-server (the plugin registers it) adds a line to the UI's HTML pages that sets that pick to Asia/Shanghai
where none was made; a user's own choice in the UI stands.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ZONE = "Asia/Shanghai"
KEY = "timezone"  # the UI's localStorage key for the chosen time zone (its useLocalStorage("timezone"))
SCRIPT = (
    f"<script>try{{if(!localStorage.getItem({json.dumps(KEY)}))"
    f"localStorage.setItem({json.dumps(KEY)},{json.dumps(json.dumps(ZONE))})}}catch(e){{}}</script>"
).encode()
# Not the UI's pages: the REST and execution APIs, the UI's assets, the campaign's own app and pages.
NOT_UI = ("/api/", "/execution/", "/static/", "/campaign", "/auth/", "/ui/")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class BeijingTimeByDefault:
    """Pure ASGI middleware: an HTML page of the UI gets ``SCRIPT`` before its ``</head>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path", "").startswith(NOT_UI):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def inject(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = {name.lower(): value for name, value in message.get("headers", [])}
                if not headers.get(b"content-type", b"").startswith(b"text/html") or b"content-encoding" in headers:
                    await send(message)  # not a page of the UI (or compressed): as it is
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if b"</head>" in body and SCRIPT not in body:
                body = body.replace(b"</head>", SCRIPT + b"</head>", 1)
            headers = [(name, value) for name, value in start.get("headers", []) if name.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, inject)
