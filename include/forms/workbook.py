"""Open an uploaded workbook safely and read its sheets as text columns.

Before any cell is read, the file is checked as a whole; a workbook that fails a check is refused with
one Chinese message (``Refused``) and nothing is stored:

- size over the limit, not a zip, an old .xls, a password-protected file, a zip that is not xlsx;
- a zip bomb (declared or actual size over the limit, or an extreme compression ratio);
- an XML part with a DTD (entity bombs);
- a workbook without this project's template marker, another form's or an old version's template;
- per data sheet: formulas, merged cells over data, more than 1,048,576 rows, ID or account
  numbers that Excel stored as numbers (their last digits are lost).

Cells are then read with fastexcel (calamine, in Rust; chosen by ``bench/ingest.py``) as strings,
every sheet in its own thread: fastexcel releases the GIL, so the sheets load in parallel.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import fastexcel
import polars as pl
from defusedxml import ElementTree
from openpyxl.utils import get_column_letter
from zlib_ng import zlib_ng

from include.forms.spec import FieldSpec, FormSpec, SheetSpec, all_forms
from include.forms.template import MARKER_PREFIX, MAX_ROW
from include.masking import redact, short_masked

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
MAX_RATIO = 200  # our own 100,000-row sheets compress about 15:1; zip bombs 1000:1 and more
RATIO_FLOOR_BYTES = 1 << 20  # small parts may compress well; judge the ratio above 1 MiB
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
# A number Excel stored in place of an ID: 16+ digits, or 1.2E+15 and up (its last digits are lost).
BIG_NUMBER = re.compile(rb"<v>(\d{16,}(?:\.\d*)?|\d(?:\.\d+)?[eE]\+?(?:1[5-9]|[2-9]\d))</v>")
LONG_INTEGER = re.compile(rb"<v>\d{16,}(?:\.\d*)?</v>")
FORMULA = re.compile(rb"<(?:\w+:)?f[ >/]")
CELL_REF = re.compile(rb'<(?:\w+:)?c r="([A-Z]+)(\d+)"')
MERGE = re.compile(rb'<(?:\w+:)?mergeCell ref="([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?"')
LAST_ROW = re.compile(rb'<(?:\w+:)?row r="(\d+)"')


def max_upload_bytes() -> int:
    return int(os.environ.get("CAMPAIGN_MAX_UPLOAD_BYTES", str(100 * 1024 * 1024)))


# Measured by bench/upload_limits.py: one ingest holds about 4.9 bytes of memory per byte of unpacked XML.
MEMORY_PER_UNPACKED_BYTE = 5


def upload_memory_budget() -> int:
    """The memory one upload may take (``CAMPAIGN_UPLOAD_MEMORY_BYTES``, default 1.5 GiB); at most
    ``CAMPAIGN_MAX_CONCURRENT_INGESTS`` uploads are read at once per process."""
    return int(os.environ.get("CAMPAIGN_UPLOAD_MEMORY_BYTES", str(3 * 512 * 1024 * 1024)))


def max_unpacked_bytes() -> int:
    """The largest unpacked workbook read: set explicitly, or what the memory budget allows."""
    explicit = os.environ.get("CAMPAIGN_MAX_UNPACKED_BYTES")
    return int(explicit) if explicit else upload_memory_budget() // MEMORY_PER_UNPACKED_BYTE


class Refused(Exception):
    """The file is refused as a whole; ``reason`` is a stable English id, the message Chinese."""

    def __init__(self, reason: str, message: str, errors: list | None = None) -> None:
        message = redact(message)  # a refusal may quote a cell or a header: never a number in clear
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.errors = errors or []  # row problems, when every row was rejected


@dataclass
class Workbook:
    path: Path
    form: FormSpec
    campaign: str  # the campaign the template was written for
    sheets: dict[str, pl.DataFrame] = field(default_factory=dict)  # by sheet id, all columns text
    results: dict[str, object] = field(default_factory=dict)  # by sheet id: what the sheet hook returned


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _sniff(path: Path) -> None:
    size = path.stat().st_size
    limit = max_upload_bytes()
    if size > limit:
        raise Refused("too_large", f"文件 {_mb(size)}，超过上传上限 {_mb(limit)}。请按乡镇或村拆分后分别上传。")
    with path.open("rb") as fh:
        head = fh.read(8)
        if head == OLE_MAGIC:
            body = fh.read(min(size, 64 * 1024 * 1024))
            if ENCRYPTED_STREAM in body:
                raise Refused(
                    "encrypted",
                    "文件设置了打开密码，系统无法读取。请在 Excel 中取消密码（文件→信息→保护工作簿）后重新上传。",
                )
            raise Refused(
                "xls",
                "这是旧版 Excel（.xls）文件。请用本系统下载的 .xlsx 模板填写，或在 Excel 中“另存为 .xlsx”后重新上传。",
            )
    if head[:4] != ZIP_MAGIC:
        raise Refused("not_zip", "文件不是 Excel 工作簿（.xlsx）。请上传用本系统模板填写的 .xlsx 文件。")


MAX_ENTRIES = 1000  # a workbook has tens of parts; a million empty ones cost gigabytes before any size check
MAX_DIRECTORY_BYTES = 1024 * 1024


def _check_directory(path: Path) -> None:
    """Refuse an archive that is not one plain zip directory, before ``zipfile`` reads any of it into memory.

    A workbook never needs zip64, and it has one central directory, right before its one end record, which
    ends the file. Anything else (a zip64 record, a second end record hidden in the comment, data before the
    directory) lets two readers see two different archives: the checks here one, fastexcel's cells another.
    """
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - 65_557)
        fh.seek(start)
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22 or tail.count(b"PK\x05\x06") != 1:
        raise Refused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。")
    entries_here, entries, directory, offset, comment = struct.unpack("<HHLLH", tail[at + 8 : at + 22])
    plain = (
        b"PK\x06\x06" not in tail
        and b"PK\x06\x07" not in tail
        and entries_here == entries
        and at + 22 + comment == len(tail)
        and offset + directory == start + at
    )
    if not plain:
        raise Refused(
            "bad_zip",
            "文件的压缩结构不是 Excel 保存的（多重目录或 zip64），已拒收。请在 Excel 中重新保存为 .xlsx 后上传。",
        )
    if entries > MAX_ENTRIES or directory > MAX_DIRECTORY_BYTES:
        raise _too_many_parts()


def _too_many_parts() -> Refused:
    return Refused(
        "zip_bomb",
        f"文件内部的组成部分过多（上限 {MAX_ENTRIES} 个），不是正常的 Excel 工作簿，已拒收。"
        "请用本系统模板重新填写后上传。",
    )


def _open_zip(path: Path) -> zipfile.ZipFile:
    _check_directory(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Refused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。") from exc
    listed = archive.namelist()
    if len(listed) > MAX_ENTRIES:
        raise _too_many_parts()
    names = set(listed)
    if len(names) != len(listed):  # two parts of one name: which one a reader takes is its own choice
        raise Refused(
            "bad_zip", "文件中有重名的组成部分，不是 Excel 保存的工作簿，已拒收。请在 Excel 中重新保存后上传。"
        )
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        kind = "Word 文档" if "word/document.xml" in names else "压缩包"
        raise Refused("not_xlsx", f"文件是{kind}，不是 Excel 工作簿。请上传用本系统模板填写的 .xlsx 文件。")
    total = 0
    limit = max_unpacked_bytes()
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise Refused("zip_bomb", f"文件中的 {info.filename} 压缩比异常（{ratio:.0f}:1），疑似恶意文件，已拒收。")
    if total > limit:
        raise Refused(
            "zip_bomb",
            f"文件解压后 {_mb(total)}，超过单个文件的上限 {_mb(limit)}（按服务器内存预算），已拒收。"
            "请按乡镇或村拆分后分别上传；如确为正常文件，请联系运维人员。",
        )
    return archive


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A deflated part inflated by zlib-ng (about twice zlib's speed), at most one byte past its
    declared size; other methods through zipfile."""
    if info.compress_type != zipfile.ZIP_DEFLATED or archive.fp is None:
        with archive.open(info) as fh:
            return fh.read(info.file_size + 1)
    with open(archive.filename or "", "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        if header[:4] != b"PK\x03\x04":
            raise Refused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        fh.seek(info.header_offset + 30 + name_length + extra_length)
        raw = fh.read(info.compress_size)
    try:
        return zlib_ng.decompressobj(-15).decompress(raw, info.file_size + 1)
    except zlib_ng.error as exc:
        raise Refused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。") from exc


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    """A part's bytes, never more than its declared size (a lying header is a zip bomb)."""
    data = _inflate(archive, archive.getinfo(name))
    if len(data) > archive.getinfo(name).file_size:
        raise Refused("zip_bomb", f"文件中的 {name} 实际大小超过声明，疑似恶意文件，已拒收。")
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data[:4096]:
        raise Refused("xml_entities", "文件含有 XML 实体声明（DTD），疑似恶意文件，已拒收。请用本系统模板重新填写。")
    return data


def _sheet_parts(archive: zipfile.ZipFile) -> tuple[dict[str, str], dict[str, str]]:
    """Sheet name → the part that holds it (xl/worksheets/sheetN.xml), and the template marker
    (the hidden defined names ``_campaign_form`` …, without their prefix and quotes)."""
    for name in archive.namelist():
        if name.endswith((".xml", ".rels")) and not name.startswith("xl/worksheets/"):
            _read_part(archive, name)
    workbook = ElementTree.fromstring(_read_part(archive, "xl/workbook.xml"))
    rels = ElementTree.fromstring(_read_part(archive, "xl/_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    parts = {}
    for sheet in workbook.iterfind("m:sheets/m:sheet", NS):
        target = targets.get(sheet.get(REL_NS), "")
        part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        parts[sheet.get("name", "")] = part
    marker = {}
    for defined in workbook.iterfind("m:definedNames/m:definedName", NS):
        name = defined.get("name", "")
        if name.startswith(MARKER_PREFIX):
            marker[name.removeprefix(MARKER_PREFIX)] = (defined.text or "").strip().strip('"')
    return parts, marker


def _check_marker(marker: dict[str, str]) -> None:
    if "form" not in marker:
        raise Refused(
            "no_marker",
            "这不是本系统下发的模板（缺少模板标识）。请用“campaign forms template”下载模板，把数据粘贴进去后上传。",
        )


def _form_of(marker: dict[str, str], allowed: Iterable[str]) -> FormSpec:
    forms = all_forms()
    form = forms.get(marker.get("form", ""))
    if form is None:
        raise Refused("no_marker", "模板标识无法识别。请用“campaign forms template”重新下载模板。")
    allowed = list(allowed)
    if form.id not in allowed:
        names = "、".join(f"{forms[f].title}（{f}）" for f in allowed) or "无"
        raise Refused(
            "wrong_form", f"这是「{form.title}」（{form.id}）的模板，本次工作使用的表是：{names}。请换用对应的模板。"
        )
    version = marker.get("version", "")
    if version != str(form.version):
        raise Refused(
            "old_version",
            f"模板是第{version}版，现行是第{form.version}版（列有变动）。"
            f"请下载新模板，把数据按列标题粘贴过去后重新上传。",
        )
    return form


def _header_key(text: object) -> str:
    return re.sub(r"\s+", "", str(text or "")).replace("（", "(").replace("）", ")")


def _check_columns(form: FormSpec, sheet_name: str, fields: tuple[FieldSpec, ...], columns: list[str]) -> None:
    expected = {_header_key(f.header): f.header for f in fields}
    found = {_header_key(c): (i, c) for i, c in enumerate(columns) if not str(c).startswith("__UNNAMED__")}
    missing = [header for key, header in expected.items() if key not in found]
    # An unknown header may be a data row (the header row deleted): name its column, echo only a masked prefix.
    unknown = [
        f"{get_column_letter(i + 1)} 列「{short_masked(column)}」"
        for key, (i, column) in found.items()
        if key not in expected
    ]
    if missing or unknown:
        parts = []
        if missing:
            parts.append("缺少列：" + "、".join(missing))
        if unknown:
            parts.append("无法识别的列：" + "、".join(unknown) + "（是否改了列标题？）")
        raise Refused(
            "columns",
            f"工作表「{sheet_name}」的列与模板不符：{'；'.join(parts)}。请不要修改模板的列标题，按原样恢复后重新上传。",
        )


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _cell_before(data: bytes, pos: int) -> str:
    start = data.rfind(b"<c ", 0, pos)
    if start < 0:
        start = data.rfind(b":c ", 0, pos)
    found = CELL_REF.search(data, max(start - 3, 0), pos)
    return (found.group(1) + found.group(2)).decode() if found else "?"


def _scan_sheet(data: bytes, sheet_name: str, fields: tuple[FieldSpec, ...]) -> None:
    rows = LAST_ROW.findall(data[-65536:]) or LAST_ROW.findall(data)
    if rows and int(rows[-1]) > MAX_ROW:
        raise Refused(
            "too_many_rows",
            f"工作表「{sheet_name}」超过 Excel 的 {MAX_ROW:,} 行上限，文件已损坏或不是 Excel 保存的。"
            "请拆分后重新上传。",
        )
    formula = _find_formula(data)
    if formula >= 0:
        cell = _cell_before(data, formula)
        raise Refused(
            "formula",
            f"工作表「{sheet_name}」的 {cell} 单元格含有公式。"
            "请选中数据“复制”，再“选择性粘贴→数值”去掉公式后重新上传。",
        )
    tail = data[data.rfind(b"</sheetData>") :] if b"</sheetData>" in data else b""
    for merge in MERGE.finditer(tail):
        last_row = int(merge.group(4) or merge.group(2))
        if last_row >= 2:
            ref = merge.group(0).split(b'"')[1].decode()
            raise Refused(
                "merged", f"工作表「{sheet_name}」的 {ref} 是合并单元格。请取消合并，每行填写完整后重新上传。"
            )
    for big in _big_numbers(data):
        cell = _cell_before(data, big.start())
        column = _column_index("".join(ch for ch in cell if ch.isalpha())) if cell != "?" else 0
        if 1 <= column <= len(fields) and fields[column - 1].type in ("id_number", "account"):
            target = fields[column - 1]
            raise Refused(
                "number_id",
                f"工作表「{sheet_name}」的 {cell} 单元格（{target.header}）被 Excel 存成了数字"
                f"（显示为 {_sci(big.group(1))}），号码的后几位已经丢失。请把该列设为“文本”格式，"
                "重新输入或粘贴号码后上传。",
            )


def _find_formula(data: bytes) -> int:
    """Where the first formula element (``<f>``, ``<f t="shared" …/>``) in the cell data is, or -1.

    The letter ``f`` is rare in cell data (tags ``row``, ``c``, ``v``; attributes ``r``, ``s``, ``t``;
    numbers and shared-string indexes), so a ``bytes.find`` for it is memchr-fast; each hit is
    confirmed by its neighbours, with or without a namespace prefix (``<x:f>``).
    """
    start = data.find(b"<sheetData")
    end = data.rfind(b"</sheetData>")
    if start < 0:
        return -1
    end = len(data) if end < 0 else end
    pos = data.find(b"f", start, end)
    while pos >= 0:
        before, after = data[pos - 1 : pos], data[pos + 1 : pos + 2]
        if after in (b">", b" ", b"/") and (
            before == b"<" or (before == b":" and FORMULA.match(data, data.rfind(b"<", 0, pos)))
        ):
            return data.rfind(b"<", 0, pos)
        pos = data.find(b"f", pos + 1, end)
    return -1


def _big_numbers(data: bytes) -> Iterable[re.Match[bytes]]:
    """Numbers of 1E+15 and more (an ID or account number Excel kept as a number): found by the
    ``+`` of their exponent (rare in sheet XML, so ``bytes.find`` is fast), then confirmed as a whole
    ``<v>`` value; and integers of 16+ digits (exact only up to 2**53)."""
    pos = data.find(b"+")
    while pos >= 0:
        if data[pos - 1 : pos] in (b"E", b"e"):
            start = data.rfind(b"<v>", max(pos - 40, 0), pos)
            found = BIG_NUMBER.match(data, start) if start >= 0 else None
            if found:
                yield found
        pos = data.find(b"+", pos + 1)
    yield from LONG_INTEGER.finditer(data)


def _sci(raw: bytes) -> str:
    try:
        return f"{float(raw):.5E}"
    except ValueError:
        return raw.decode()


def _load_sheet(path: Path, sheet_name: str) -> pl.DataFrame:
    """Every cell of a sheet as text. Each thread opens its own reader: fastexcel readers are not shared."""
    try:
        return fastexcel.read_excel(path).load_sheet(sheet_name, dtypes="string").to_polars()
    except Exception as exc:  # fastexcel raises its own exception types for unreadable content
        raise Refused(
            "bad_zip", f"工作表「{sheet_name}」无法读取，文件可能已损坏。请在 Excel 中重新保存为 .xlsx 后上传。"
        ) from exc


def _unpack(path: Path, part: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return _read_part(archive, part)


SheetHook = Callable[[FormSpec, SheetSpec, pl.DataFrame], object]


def _sheet_job(path: Path, part: str, form: FormSpec, sheet: SheetSpec, hook: SheetHook | None) -> tuple:
    """One sheet, in its own thread: unpack with the size limit (so no bomb reaches the reader), then
    load the cells while scanning the XML, compare the columns, and run ``hook`` (the row checks).

    zlib, fastexcel and Polars release the GIL, so the sheets of a workbook use both cores.
    """
    fields = form.fields_of(sheet.id)
    data = _unpack(path, part)
    with ThreadPoolExecutor(max_workers=1) as side:  # the cells load while this thread scans the XML
        loading = side.submit(_load_sheet, path, sheet.name)
        _scan_sheet(data, sheet.name, fields)
        del data
        frame = loading.result()
    _check_columns(form, sheet.name, fields, frame.columns)
    return frame, hook(form, sheet, frame) if hook is not None else None


def read_workbook(path: Path, allowed_forms: Iterable[str], hook: SheetHook | None = None) -> Workbook:
    """Check the file as a whole and read every data sheet of its form; raise ``Refused`` if it fails.

    ``hook`` runs on each sheet as soon as it is read, in that sheet's thread; its results are in
    ``Workbook.results``.
    """
    _sniff(path)
    with _open_zip(path) as archive:
        parts, marker = _sheet_parts(archive)
        sizes = {name: archive.getinfo(part).file_size for name, part in parts.items() if part in archive.namelist()}
    _check_marker(marker)
    form = _form_of(marker, allowed_forms)
    for sheet in form.sheets:
        if sheet.name not in parts or sheet.name not in sizes:
            raise Refused("columns", f"工作簿中缺少工作表「{sheet.name}」。请不要删除或重命名模板的工作表。")
    largest_first = sorted(form.sheets, key=lambda s: -sizes[s.name])
    with ThreadPoolExecutor(max_workers=len(form.sheets)) as pool:
        jobs = {s.id: pool.submit(_sheet_job, path, parts[s.name], form, s, hook) for s in largest_first}
        done = {s.id: jobs[s.id].result() for s in form.sheets}
    frames = {sheet_id: frame for sheet_id, (frame, _) in done.items()}
    results = {sheet_id: result for sheet_id, (_, result) in done.items()}
    return Workbook(path=path, form=form, campaign=marker.get("campaign", ""), sheets=frames, results=results)
