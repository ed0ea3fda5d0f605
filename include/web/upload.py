"""Receiving a multipart upload with limits, before any of it is parsed into memory.

The API's upload routes declare no form parameters, so FastAPI reads no body before their token dependency
has run; they then stream the body through python-multipart's push parser here: only the fields a route
names, each at most ``FIELD_LIMIT`` bytes, at most one file, written as it arrives into a file of its own
under ``$CAMPAIGN_HOME/uploads`` and cut off (413) the moment it passes the route's limit. Nothing is spooled
to the system's temp folder and no part is ever held whole in memory.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl

import anyio.to_thread
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from include import paths

FIELD_LIMIT = 1024  # bytes of one text field (a campaign id, a unit code, a milestone id)
OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the file
MAX_FILE_NAME = 200  # characters, and at most MAX_FILE_NAME_BYTES in UTF-8 (a file system's 255 less room)
MAX_FILE_NAME_BYTES = 240
IDLE_SECONDS = 15.0  # a body that sends nothing for this long is cut off (slowloris)
MIN_RATE = 8 * 1024  # bytes per second, on average after the first GRACE_SECONDS
GRACE_SECONDS = 30.0


class UploadRefused(Exception):
    """The body is refused; ``status`` is the HTTP status, the message Chinese and free of the body's content."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass
class Received:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    file_name: str | None = None
    size: int = 0
    folder: Path | None = None

    def discard(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def uploads_dir() -> Path:
    folder = paths.campaign_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def too_large(limit: int) -> UploadRefused:
    return UploadRefused(413, "too_large", f"文件超过上传上限 {limit / 1024 / 1024:.0f} MB。请压缩或拆分后分别上传。")


def check_declared_length(request: Request, limit: int) -> None:
    """Refuse by ``Content-Length`` before a byte of the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit + OVERHEAD):
        raise too_large(limit)


def safe_file_name(raw: str) -> str:
    """The name a file was sent with, as a plain file name; a name that cannot be one is refused (422)."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if (
        not name
        or name in (".", "..")
        or any(not ch.isprintable() for ch in name)
        or len(name) > MAX_FILE_NAME
        or len(name.encode("utf-8")) > MAX_FILE_NAME_BYTES
    ):
        raise UploadRefused(
            422,
            "bad_file_name",
            f"文件名不可用（为空、为“..”、含控制字符或超过 {MAX_FILE_NAME} 个字）。请改用普通文件名后重新上传。",
        )
    return name


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    """The body's chunks, cut off when it stalls (nothing for IDLE_SECONDS) or trickles (under MIN_RATE on average
    after GRACE_SECONDS): a slow client holds no connection, file or slot for long."""
    started, received = time.monotonic(), 0
    stream = request.stream().__aiter__()
    while True:
        try:
            with anyio.fail_after(IDLE_SECONDS):
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadRefused(408, "too_slow", "上传中断（长时间没有收到数据）。请检查网络后重新上传。") from None
        received += len(chunk)
        elapsed = time.monotonic() - started
        if elapsed > GRACE_SECONDS and received < MIN_RATE * elapsed:
            raise UploadRefused(408, "too_slow", "上传速度过慢，已中断。请在网络较好时重新上传，或拆分文件。")
        yield chunk


async def _receive_urlencoded(request: Request, fields: tuple[str, ...]) -> Received:
    body = bytearray()
    async for chunk in _chunks(request):
        body += chunk
        if len(body) > FIELD_LIMIT * (len(fields) + 1):
            raise UploadRefused(422, "field_too_long", f"表单字段过长（每项不超过 {FIELD_LIMIT} 字节）。")
    received = Received()
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        if name not in fields or name in received.fields:
            raise UploadRefused(422, "unexpected_field", f"表单中有多余或重复的字段（只接受：{'、'.join(fields)}）。")
        received.fields[name] = value
    return received


async def receive(request: Request, *, fields: tuple[str, ...], file_field: str, limit: int) -> Received:
    """Stream the multipart body of ``request``: the named text fields, and at most one file of at most
    ``limit`` bytes; raise `UploadRefused` (nothing kept) on anything else."""
    check_declared_length(request, limit)
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/x-www-form-urlencoded":  # fields only, no file
        return await _receive_urlencoded(request, fields)
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRefused(415, "not_multipart", "请求须为 multipart/form-data（表单字段与文件）。")
    received = Received()
    state: dict[str, object] = {"headers": {}, "field": None, "name": None, "value": bytearray()}
    pending: list[bytes] = []
    out: BinaryIO | None = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] = bytes(data[start:end]).lower()

    def on_header_value(data: bytes, start: int, end: int) -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)
        headers[state.get("header")] = headers.get(state.get("header"), b"") + bytes(data[start:end])
        if sum(len(v) for v in headers.values()) > 4096:
            raise UploadRefused(422, "bad_part", "表单的分段头过长。")

    def on_headers_finished() -> None:
        headers = state["headers"]
        assert isinstance(headers, dict)
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if name == file_field and b"filename" in disposition:
            if received.file_path is not None or "file" in state:
                raise UploadRefused(422, "too_many_files", "一次只能上传一个文件。")
            state["file"] = safe_file_name(disposition[b"filename"].decode("utf-8", "replace"))
            state["field"] = file_field
        elif name in fields and name not in received.fields:
            state["field"] = name
        else:
            raise UploadRefused(
                422, "unexpected_field", f"表单中有多余或重复的字段（只接受：{'、'.join((*fields, file_field))}）。"
            )
        state["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["field"] == file_field:
            received.size += end - start
            if received.size > limit:
                raise too_large(limit)
            pending.append(bytes(data[start:end]))
            return
        value = state["value"]
        assert isinstance(value, bytearray)
        value += data[start:end]
        if len(value) > FIELD_LIMIT:
            raise UploadRefused(422, "field_too_long", f"字段“{state['field']}”过长（超过 {FIELD_LIMIT} 字节）。")

    def on_part_end() -> None:
        if state["field"] == file_field:
            state["file_done"] = True
        elif state["field"] is not None:
            value = state["value"]
            assert isinstance(value, bytearray)
            received.fields[str(state["field"])] = value.decode("utf-8", "replace")
        state["field"], state["headers"] = None, {}

    def on_part_begin() -> None:
        state["headers"] = {}

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    total = 0
    try:
        parser = MultipartParser(boundary, callbacks)
        async for chunk in _chunks(request):
            total += len(chunk)
            if total > limit + OVERHEAD:
                raise too_large(limit)
            parser.write(chunk)
            if "file" in state and out is None:
                received.folder = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads_dir()))
                received.file_path = received.folder / str(state["file"])
                received.file_name = str(state["file"])
                out = received.file_path.open("wb")
            if pending and out is not None:
                blob = b"".join(pending)
                pending.clear()
                await anyio.to_thread.run_sync(out.write, blob)
        parser.finalize()
        if parser.state != MultipartState.END or ("file" in state and not state.get("file_done")):
            raise UploadRefused(400, "incomplete", "上传不完整（请求在文件传完之前结束）。请重新上传。")
    except UploadRefused:
        if out is not None:
            out.close()
        received.discard()
        raise
    except ClientDisconnect:
        if out is not None:
            out.close()
        received.discard()
        raise
    except Exception as exc:  # a malformed body: python-multipart's own errors
        if out is not None:
            out.close()
        received.discard()
        raise UploadRefused(400, "bad_body", "请求体不是有效的 multipart 表单，请重新提交。") from exc
    if out is not None:
        out.close()
    return received
