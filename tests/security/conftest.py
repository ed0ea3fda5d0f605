"""The campaign app served for real: uvicorn on 127.0.0.1, a store of its own, seed 000's instants.

Seed 000: "11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作" and "12月31日24时关闭信息系统。"
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient

from include.calendar.instants import parse_instant
from include.door.tokens import issue_token
from include.store.db import make_engine, upgrade
from include.web.app import create_app
from tests.conftest import Clock

JINAN, QINGDAO = "370100", "370200"


class Door:
    """One app on one store, with tokens of every kind and its clock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(upgrade(url))
        at = parse_instant("2020-11-01T00:00+08:00")
        self.tokens = {unit: issue_token(self.engine, unit, at)[1] for unit in (JINAN, QINGDAO, "province")}
        self.clock = Clock("2020-11-20T10:00+08:00")
        self.app = create_app(clock=self.clock, database_url=url)
        self.client = TestClient(self.app)

    @property
    def read_token(self) -> str:
        """A read-only token of 济南市 (the kind a progress link carries), made when a test asks for it."""
        if not hasattr(self, "_read_token"):
            self._read_token = issue_token(self.engine, JINAN, parse_instant("2020-11-01T00:00+08:00"), kind="read")[1]
        return self._read_token

    def auth(self, unit: str = JINAN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[unit]}"}


@pytest.fixture
def door(tmp_path):
    made = Door(f"sqlite:///{tmp_path / 'home' / 'campaign.db'}")
    yield made
    made.engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[int]:
    """``app`` behind a real uvicorn on 127.0.0.1 (the api-server's server); yields its port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def served(door):
    """The door's app behind a real uvicorn, for behaviour that depends on how a server reads a body."""
    with serving(door.app) as port:
        yield door, port
