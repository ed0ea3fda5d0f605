"""Limits before bodies: how much of a body the api-server reads before it refuses, and what an ingest costs in
memory, against FastAPI's own form parsing (``UploadFile = File()`` behind the same token dependency), the way
the API was written before.

Each server is a real uvicorn on 127.0.0.1 in its own process; the client sends the body in 16 KB pieces and
stops at the first answer (or at 300 MB). Figures printed:
- a 300 MB POST without a token: bytes the client got out before the answer, and bytes the server read
  (its /proc/PID/io rchar: the kernel's socket buffers hold the difference);
- a 300 MB POST with a token (the limit is 50 MB): the same;
- the peak resident memory of one ingest of a generated workbook, against its unpacked size: the ratio that
  ``CAMPAIGN_MAX_UNPACKED_BYTES`` (the memory budget per upload) is set from.

Run: ``.venv/bin/python bench/upload_limits.py`` (make bench-limits).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ANNOUNCED = 300 * 1024 * 1024

ALTERNATIVE = textwrap.dedent(
    """
    from typing import Annotated
    from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, UploadFile

    app = FastAPI()

    def credential(authorization: Annotated[str | None, Header()] = None) -> str:
        if authorization != "Bearer good":
            raise HTTPException(401)
        return "unit"

    @app.post("/api/reports")
    async def submit(who: Annotated[str, Depends(credential)], campaign: Annotated[str, Form()],
                     file: Annotated[UploadFile | None, File()] = None) -> dict:
        content = await file.read() if file is not None else None
        if content is not None and len(content) > 50 * 1024 * 1024:
            raise HTTPException(413)
        return {}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(kind: str, home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "CAMPAIGN_HOME": str(home), "CAMPAIGN_LOCAL_RUN": "1", "TMPDIR": str(home / "tmp")}
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    if kind == "project":
        code = (
            "import uvicorn; from include.web.app import create_app; from include.store.db import upgrade;"
            "from include.door.tokens import issue_token; import pendulum, pathlib;"
            f"url = upgrade('sqlite:///{home}/campaign.db');"
            "from include.store.db import make_engine;"
            "token = issue_token(make_engine(url), '370100', pendulum.now('UTC'))[1];"
            f"pathlib.Path('{home}/token').write_text(token);"
            f"uvicorn.run(create_app(database_url=url), host='127.0.0.1', port={port}, log_level='error')"
        )
    else:
        (home / "alternative.py").write_text(ALTERNATIVE, encoding="utf-8")
        (home / "token").write_text("good")
        code = (
            f"import sys, uvicorn; sys.path.insert(0, '{home}');"
            f"uvicorn.run('alternative:app', host='127.0.0.1', port={port}, log_level='error')"
        )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{kind} server did not start")


def post(port: int, token: str | None, pid: int) -> tuple[str, int, int]:
    """Announce 300 MB of multipart, send it in pieces until the server answers; (status, bytes sent, bytes the
    server had read when its answer came)."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        "POST /api/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"{auth}Content-Length: {ANNOUNCED}\r\n\r\n"
    ).encode()
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
    piece = b"\0" * 16384
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    start = read_by(pid)
    sock.sendall(head + part)
    sock.setblocking(False)
    sent, answer, read = len(part), b"", None
    deadline = time.monotonic() + 120
    try:
        while sent < ANNOUNCED and time.monotonic() < deadline:
            try:
                answer += sock.recv(4096)
                if b"\r\n" in answer:
                    read = read_by(pid) - start
                    break
            except BlockingIOError:
                pass
            except ConnectionError:
                break
            try:
                sent += sock.send(piece[: min(len(piece), ANNOUNCED - sent)])
            except BlockingIOError:
                time.sleep(0.001)
            except ConnectionError:
                break
        if b"\r\n" not in answer:
            sock.setblocking(True)
            sock.settimeout(60)
            try:
                answer += sock.recv(4096)
            except OSError:
                pass
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return (match.group(1).decode() if match else "none"), sent, read if read is not None else read_by(pid) - start


def read_by(pid: int) -> int:
    """Bytes the server process has read so far (sockets included): /proc/PID/io rchar."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def ingest_memory() -> tuple[int, int]:
    """Peak RSS growth of one ingest of a generated workbook in a fresh process, and the workbook's unpacked size."""
    from bench.ingest import workbook

    path, _ = workbook(20_000)
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    code = textwrap.dedent(
        f"""
        import resource, pathlib
        from include.calendar.registry import load_campaign
        from include.store.db import make_engine, upgrade
        from include.door.submissions import Actor, submit_report
        from include.door.ingest import ingest
        from include.calendar.instants import parse_instant
        calendar = load_campaign("2020-shandong")
        engine = make_engine(upgrade())
        at = parse_instant("2020-11-20T10:00+08:00")
        submit_report(engine, calendar, unit="370100", milestone_id="completion_report", at=at, actor=Actor("bench"))
        import threading, time
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        before, peak, done = rss(), [0], threading.Event()
        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.005)
        sampler = threading.Thread(target=sample)
        sampler.start()
        ingest(engine, calendar, pathlib.Path({str(path)!r}), "370100", at, actor="bench")
        done.set()
        sampler.join()
        print(peak[0] - before)
        """
    )
    home = tempfile.mkdtemp(prefix="bench-memory-")
    env = {**os.environ, "CAMPAIGN_HOME": home, "CAMPAIGN_LOCAL_RUN": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    shutil.rmtree(home, ignore_errors=True)
    return int(out.stdout.strip().splitlines()[-1]), unpacked


def main() -> None:
    rows = []
    for kind in ("project", "alternative"):
        home = Path(tempfile.mkdtemp(prefix=f"bench-limits-{kind}-"))
        port = free_port()
        server = serve(kind, home, port)
        try:
            token = (home / "token").read_text()
            for label, given in (("无令牌", None), ("有令牌，超过上限", token)):
                rows.append((kind, label, *post(port, given, server.pid)))
        finally:
            server.terminate()
            server.wait(10)
            shutil.rmtree(home, ignore_errors=True)
    print(f"{'服务':<12}{'请求':<16}{'应答':>6}{'客户端发出':>14}{'应答时服务器已读':>14}")
    for kind, label, status, sent, read in rows:
        print(f"{kind:<12}{label:<16}{status:>6}{sent:>14,}{read:>14,}")
    for label in ("无令牌", "有令牌，超过上限"):
        ours = next(r[4] for r in rows if r[0] == "project" and r[1] == label)
        theirs = next(r[4] for r in rows if r[0] == "alternative" and r[1] == label)
        print(f"{label}：FastAPI 表单解析读入 {theirs / max(ours, 1):,.0f} 倍于本项目的字节")
    peak, unpacked = ingest_memory()
    print(
        f"一次入库的内存峰值增长 {peak / 1024 / 1024:.0f} MB，工作簿解压后 {unpacked / 1024 / 1024:.0f} MB："
        f"每解压 1 MB 约占 {peak / max(unpacked, 1):.1f} MB 内存"
    )


if __name__ == "__main__":
    main()
