"""Open an uploaded workbook safely and read its sheets as text columns.

Before any cell is read, the file is checked as a whole; a workbook that fails a check is refused with
one Chinese message (``WorkbookRefused``) and nothing is stored:

- size over the limit, not a zip, an old .xls, a password-protected file, a zip that is not xlsx;
- a zip bomb (declared or actual size over the limit, or an extreme compression ratio);
- an XML part with a DTD (entity bombs);
- a Strict Open XML file; a workbook without this project's template marker, another campaign's,
  another form's or an old version's template;
- per data sheet: no header found, a column missing or twice, formulas, merged cells over data, more
  than 1,048,576 rows, ID, phone or account numbers that Excel stored as numbers (an ID's last digits
  are lost), wherever their column is and however the number is written.

Cells are read by include/forms/sheetxml.py: only the cells a sheet has (memory follows the data, not the
dimension a file claims), each with its own row and column and how it was stored. The header is found
by its content in the first rows, columns are mapped by heading, and every value keeps the file's own
cell reference. Every sheet is read in its own thread (Polars releases the GIL).
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

import polars as pl
from defusedxml import ElementTree
from openpyxl.utils import get_column_letter
from zlib_ng import zlib_ng

from include.errors import Refused
from include.forms import sheetxml
from include.forms.spec import FieldSpec, FormSpec, SheetSpec, all_forms
from include.forms.template import MARKER_PREFIX, MAX_ROW
from include.masking import short_masked

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
MAX_RATIO = 200  # our own 100,000-row sheets compress about 15:1; zip bombs 1000:1 and more
RATIO_FLOOR_BYTES = 1 << 20  # small parts may compress well; judge the ratio above 1 MiB
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
STRICT_NS = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
MERGE = re.compile(rb"""<(?:\w+:)?mergeCell ref=["']([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?["']""")
HEADER_SEARCH_ROWS = 20  # a title or a note above the header is found past; a header lower than this is not
TEXT_KEPT = ("id_number", "phone", "account")  # what a number cell would corrupt (digits lost, a leading 0)


def max_upload_bytes() -> int:
    return int(os.environ.get("CAMPAIGN_MAX_UPLOAD_BYTES", str(100 * 1024 * 1024)))


# Measured by bench/upload_limits.py: one ingest's peak memory grows by about 9 bytes per byte of unpacked XML
# for a 32 MB workbook, 7.2 for the 163 MB of a 100,000-member one (bench/ingest.py); the sparse cell reader
# keeps each cell's position and kind beside its text.
MEMORY_PER_UNPACKED_BYTE = 9


def upload_memory_budget() -> int:
    """The memory one upload may take (``CAMPAIGN_UPLOAD_MEMORY_BYTES``, default 1.5 GiB); at most
    ``CAMPAIGN_MAX_CONCURRENT_INGESTS`` uploads are read at once per process."""
    return int(os.environ.get("CAMPAIGN_UPLOAD_MEMORY_BYTES", str(3 * 512 * 1024 * 1024)))


def max_unpacked_bytes() -> int:
    """The largest unpacked workbook read: set explicitly, or what the memory budget allows."""
    explicit = os.environ.get("CAMPAIGN_MAX_UNPACKED_BYTES")
    return int(explicit) if explicit else upload_memory_budget() // MEMORY_PER_UNPACKED_BYTE


class WorkbookRefused(Refused):
    """The file is refused as a whole (a refusal may quote a cell or a header: never a number in clear)."""

    def __init__(self, reason: str, message: str, errors: list | None = None) -> None:
        super().__init__(reason, message)
        self.errors = errors or []  # row problems, when every row was rejected


@dataclass
class SheetData:
    """One data sheet as read: ``frame`` has ``_row`` (the file's row), each field's text by key and its
    cell's storage kind as ``<key>__kind`` (``sheetxml``: n, s, b, e, d); ``letters`` the column each field
    is in, in this file."""

    sheet: SheetSpec
    frame: pl.DataFrame
    letters: dict[str, str]
    header_row: int
    date1904: bool = False


@dataclass
class Workbook:
    path: Path
    form: FormSpec
    campaign: str  # the campaign the template was written for
    sheets: dict[str, SheetData] = field(default_factory=dict)  # by sheet id
    results: dict[str, object] = field(default_factory=dict)  # by sheet id: what the sheet hook returned


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _sniff(path: Path) -> None:
    size = path.stat().st_size
    limit = max_upload_bytes()
    if size > limit:
        raise WorkbookRefused("too_large", f"文件 {_mb(size)}，超过上传上限 {_mb(limit)}。请按乡镇或村拆分后分别上传。")
    with path.open("rb") as fh:
        head = fh.read(8)
        if head == OLE_MAGIC:
            body = fh.read(min(size, 64 * 1024 * 1024))
            if ENCRYPTED_STREAM in body:
                raise WorkbookRefused(
                    "encrypted",
                    "文件设置了打开密码，系统无法读取。请在 Excel 中取消密码（文件→信息→保护工作簿）后重新上传。",
                )
            raise WorkbookRefused(
                "xls",
                "这是旧版 Excel（.xls）文件。请用本系统下载的 .xlsx 模板填写，或在 Excel 中“另存为 .xlsx”后重新上传。",
            )
    if head[:4] != ZIP_MAGIC:
        raise WorkbookRefused("not_zip", "文件不是 Excel 工作簿（.xlsx）。请上传用本系统模板填写的 .xlsx 文件。")


MAX_ENTRIES = 1000  # a workbook has tens of parts; a million empty ones cost gigabytes before any size check
MAX_DIRECTORY_BYTES = 1024 * 1024


def _check_directory(path: Path) -> None:
    """Refuse an archive that is not one plain zip directory, before ``zipfile`` reads any of it into memory.

    A workbook never needs zip64, and it has one central directory, right before its one end record, which
    ends the file. Anything else (a zip64 record, a second end record hidden in the comment, data before the
    directory) lets two readers see two different archives: the checks here one, Excel or WPS another.
    """
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        start = max(0, size - 65_557)
        fh.seek(start)
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22 or tail.count(b"PK\x05\x06") != 1:
        raise WorkbookRefused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。")
    entries_here, entries, directory, offset, comment = struct.unpack("<HHLLH", tail[at + 8 : at + 22])
    plain = (
        b"PK\x06\x06" not in tail
        and b"PK\x06\x07" not in tail
        and entries_here == entries
        and at + 22 + comment == len(tail)
        and offset + directory == start + at
    )
    if not plain:
        raise WorkbookRefused(
            "bad_zip",
            "文件的压缩结构不是 Excel 保存的（多重目录或 zip64），已拒收。请在 Excel 中重新保存为 .xlsx 后上传。",
        )
    if entries > MAX_ENTRIES or directory > MAX_DIRECTORY_BYTES:
        raise _too_many_parts()


def _too_many_parts() -> WorkbookRefused:
    return WorkbookRefused(
        "zip_bomb",
        f"文件内部的组成部分过多（上限 {MAX_ENTRIES} 个），不是正常的 Excel 工作簿，已拒收。"
        "请用本系统模板重新填写后上传。",
    )


def _open_zip(path: Path) -> zipfile.ZipFile:
    _check_directory(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise WorkbookRefused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。") from exc
    listed = archive.namelist()
    if len(listed) > MAX_ENTRIES:
        raise _too_many_parts()
    names = set(listed)
    if len(names) != len(listed):  # two parts of one name: which one a reader takes is its own choice
        raise WorkbookRefused(
            "bad_zip", "文件中有重名的组成部分，不是 Excel 保存的工作簿，已拒收。请在 Excel 中重新保存后上传。"
        )
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        kind = "Word 文档" if "word/document.xml" in names else "压缩包"
        raise WorkbookRefused("not_xlsx", f"文件是{kind}，不是 Excel 工作簿。请上传用本系统模板填写的 .xlsx 文件。")
    total = 0
    limit = max_unpacked_bytes()
    for info in archive.infolist():
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise WorkbookRefused(
                "zip_bomb", f"文件中的 {info.filename} 压缩比异常（{ratio:.0f}:1），疑似恶意文件，已拒收。"
            )
    if total > limit:
        raise WorkbookRefused(
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
            raise WorkbookRefused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        fh.seek(info.header_offset + 30 + name_length + extra_length)
        raw = fh.read(info.compress_size)
    try:
        return zlib_ng.decompressobj(-15).decompress(raw, info.file_size + 1)
    except zlib_ng.error as exc:
        raise WorkbookRefused("bad_zip", "文件已损坏，无法解压。请重新保存为 .xlsx 后上传。") from exc


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes:
    """A part's bytes, never more than its declared size (a lying header is a zip bomb)."""
    data = _inflate(archive, archive.getinfo(name))
    if len(data) > archive.getinfo(name).file_size:
        raise WorkbookRefused("zip_bomb", f"文件中的 {name} 实际大小超过声明，疑似恶意文件，已拒收。")
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data[:4096]:
        raise WorkbookRefused(
            "xml_entities", "文件含有 XML 实体声明（DTD），疑似恶意文件，已拒收。请用本系统模板重新填写。"
        )
    return data


@dataclass
class _Parts:
    sheets: dict[str, str]  # sheet name → its part (xl/worksheets/sheetN.xml)
    marker: dict[str, str]  # the template marker (the hidden names ``_campaign_form`` …, prefix and quotes off)
    shared_strings: str | None  # the shared-string part, if any
    date1904: bool  # the workbook counts dates from 1904 (Excel for Mac's old default)


def _part_path(target: str) -> str:
    return target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)


def _sheet_parts(archive: zipfile.ZipFile) -> _Parts:
    """The parts of the workbook, read from ``xl/workbook.xml`` and its relationships (no sheet loaded)."""
    for name in archive.namelist():
        if name.endswith((".xml", ".rels")) and not name.startswith("xl/worksheets/"):
            _read_part(archive, name)
    workbook = ElementTree.fromstring(_read_part(archive, "xl/workbook.xml"))
    if workbook.tag.startswith("{" + STRICT_NS):
        raise WorkbookRefused(
            "strict_xml",
            "文件是“Strict Open XML 电子表格”格式，本系统只读普通的 Excel 工作簿。"
            "请在 Excel 中“另存为”，保存类型选“Excel 工作簿(*.xlsx)”后重新上传。",
        )
    rels = ElementTree.fromstring(_read_part(archive, "xl/_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    shared = next((_part_path(r.get("Target", "")) for r in rels if r.get("Type", "").endswith("/sharedStrings")), None)
    sheets = {}
    for sheet in workbook.iterfind("m:sheets/m:sheet", NS):
        sheets[sheet.get("name", "")] = _part_path(targets.get(sheet.get(REL_NS), ""))
    marker = {}
    for defined in workbook.iterfind("m:definedNames/m:definedName", NS):
        name = defined.get("name", "")
        if name.startswith(MARKER_PREFIX):
            marker[name.removeprefix(MARKER_PREFIX)] = (defined.text or "").strip().strip('"')
    properties = workbook.find("m:workbookPr", NS)
    date1904 = properties is not None and properties.get("date1904", "").lower() in ("1", "true")
    if shared is not None and shared not in archive.namelist():
        shared = None
    return _Parts(sheets=sheets, marker=marker, shared_strings=shared, date1904=date1904)


def _check_marker(marker: dict[str, str]) -> None:
    if "form" not in marker:
        raise WorkbookRefused(
            "no_marker",
            "这不是本系统下发的模板（缺少模板标识）。请用“campaign forms template”下载模板，把数据粘贴进去后上传。",
        )


def _form_of(marker: dict[str, str], allowed: Iterable[str], campaign: str | None = None) -> FormSpec:
    forms = all_forms()
    form = forms.get(marker.get("form", ""))
    if form is None:
        raise WorkbookRefused("no_marker", "模板标识无法识别。请用“campaign forms template”重新下载模板。")
    allowed = list(allowed)
    if form.id not in allowed:
        names = "、".join(f"{forms[f].title}（{f}）" for f in allowed) or "无"
        raise WorkbookRefused(
            "wrong_form", f"这是「{form.title}」（{form.id}）的模板，本次工作使用的表是：{names}。请换用对应的模板。"
        )
    written_for = marker.get("campaign", "")
    if campaign is not None and written_for != campaign:
        raise WorkbookRefused(
            "wrong_campaign",
            f"这是「{written_for or '未注明的工作'}」的模板，本次上传的是「{campaign}」工作的数据。"
            f"请用本工作的模板（campaign forms template --campaign {campaign}）填写后上传。",
        )
    version = marker.get("version", "")
    if version != str(form.version):
        raise WorkbookRefused(
            "old_version",
            f"模板是第{version}版，现行是第{form.version}版（列有变动）。"
            f"请下载新模板，把数据按列标题粘贴过去后重新上传。",
        )
    return form


def header_key(text: object) -> str:
    """A heading compared the way a clerk reads it: no spaces, full-width brackets as half-width."""
    return re.sub(r"\s+", "", str(text or "")).replace("（", "(").replace("）", ")")


def _find_header(cells: pl.DataFrame, sheet_name: str, fields: tuple[FieldSpec, ...]) -> int:
    """The row (the file's own number) whose cells are the most of the form's headings, among the first rows."""
    expected = {header_key(f.header) for f in fields}
    top = cells.filter(pl.col("row") <= HEADER_SEARCH_ROWS, pl.col("kind") == "s")
    keys = top.select("row", pl.col("text").map_elements(header_key, return_dtype=pl.String).alias("key"))
    counts = (
        keys.filter(pl.col("key").is_in(list(expected)))
        .group_by("row")
        .len()
        .sort(["len", "row"], descending=[True, False])
    )
    if counts.height and counts["len"][0] * 2 >= len(expected):
        return int(counts["row"][0])
    sample = "」「".join(f.header for f in fields[:3])
    first = cells.filter(pl.col("text").str.strip_chars() != "").head(1)
    seen = ""
    if first.height:  # what is there instead, by column, masked: often a data row where the header was
        row = int(first["row"][0])
        shown = cells.filter(pl.col("row") == row, pl.col("text").str.strip_chars() != "").head(10)
        listed = "、".join(
            f"{get_column_letter(c)} 列「{short_masked(t)}」" for c, t in shown.select("col", "text").iter_rows()
        )
        seen = f"第{row}行是：{listed}。"
    raise WorkbookRefused(
        "columns",
        f"工作表「{sheet_name}」的前{HEADER_SEARCH_ROWS}行中找不到模板的表头（如「{sample}」）。{seen}"
        "表头应在第1行（其上可以有标题行）。请不要删除或改写模板的表头行，按原样恢复后重新上传。",
    )


def _map_columns(
    cells: pl.DataFrame, header_row: int, sheet_name: str, fields: tuple[FieldSpec, ...]
) -> dict[str, int]:
    """Field key → the column (number) headed by it in this file; ``WorkbookRefused`` if one is missing or twice."""
    by_key = {header_key(f.header): f for f in fields}
    heads = cells.filter(pl.col("row") == header_row, pl.col("text").is_not_null())
    columns: dict[str, list[int]] = {}
    unknown = []
    for col, text in heads.select("col", "text").iter_rows():
        f = by_key.get(header_key(text))
        if f is None:
            if text.strip():
                unknown.append(f"{get_column_letter(col)} 列「{short_masked(text)}」")
            continue
        columns.setdefault(f.key, []).append(col)
    twice = [
        f"「{f.header}」（{'、'.join(get_column_letter(c) for c in columns[f.key])} 列）"
        for f in fields
        if len(columns.get(f.key, [])) > 1
    ]
    missing = [f.header for f in fields if f.key not in columns]
    if missing or twice:
        parts = []
        if missing:
            listed = "、".join(missing[:8]) + (f" 等{len(missing)}列" if len(missing) > 8 else "")
            parts.append("缺少列：" + listed)
        if twice:
            parts.append("重复的列：" + "、".join(twice))
        if missing and unknown:
            parts.append("无法识别的列：" + "、".join(unknown[:5]) + "（是否改了列标题？）")
        raise WorkbookRefused(
            "columns",
            f"工作表「{sheet_name}」（表头在第{header_row}行）的列与模板不符：{'；'.join(parts)}。"
            "请不要修改模板的列标题，按原样恢复后重新上传。",
        )
    return {key: cols[0] for key, cols in columns.items()}


def _sci(raw: str) -> str:
    try:
        return f"{float(raw):.5E}"
    except ValueError:
        return raw


def _check_cells(cells: pl.DataFrame, sheet_name: str) -> None:
    """Whole-sheet refusals that need no header: too many rows, one cell written twice, a formula."""
    place = pl.col("row") * (1 << 24) + pl.col("col")  # one number per cell (Excel has 16,384 columns)
    in_order = cells.select((place.diff().fill_null(1) > 0).all()).item()  # as every spreadsheet writes them
    twice = cells.head(0) if in_order else cells.filter(place.is_duplicated()).head(1)
    if twice.height:  # which of the two a program shows is its own choice: neither is taken
        cell = f"{get_column_letter(int(twice['col'][0]))}{twice['row'][0]}"
        raise WorkbookRefused(
            "bad_zip",
            f"工作表「{sheet_name}」的 {cell} 单元格在文件中写了两次，不是 Excel 保存的工作簿，已拒收。"
            "请在 Excel 中打开、核对该单元格后重新保存为 .xlsx 上传。",
        )
    last = cells["row"].max() if cells.height else 0
    if last is not None and int(last) > MAX_ROW:  # type: ignore[arg-type]
        raise WorkbookRefused(
            "too_many_rows",
            f"工作表「{sheet_name}」超过 Excel 的 {MAX_ROW:,} 行上限，文件已损坏或不是 Excel 保存的。"
            "请拆分后重新上传。",
        )
    formula = cells.filter(pl.col("formula")).head(1)
    if formula.height:
        cell = f"{get_column_letter(int(formula['col'][0]))}{formula['row'][0]}"
        raise WorkbookRefused(
            "formula",
            f"工作表「{sheet_name}」的 {cell} 单元格含有公式。"
            "请选中数据“复制”，再“选择性粘贴→数值”去掉公式后重新上传。",
        )


def _check_merges(data: bytes, sheet_name: str, header_row: int) -> None:
    tail = data[max(data.rfind(b"sheetData>"), 0) :]  # merges are listed after the cells
    for merge in MERGE.finditer(tail):
        last_row = int(merge.group(4) or merge.group(2))
        if last_row > header_row:  # a merged title above the header is no data
            ref = re.split(rb"[\"']", merge.group(0))[1].decode()
            raise WorkbookRefused(
                "merged", f"工作表「{sheet_name}」的 {ref} 是合并单元格。请取消合并，每行填写完整后重新上传。"
            )


def _check_numbers_in_text(
    data: pl.DataFrame, sheet_name: str, fields: tuple[FieldSpec, ...], letters: dict[str, str]
) -> None:
    """An ID, phone or account number stored as a number, in whatever column it is: refused whole, since a
    column formatted as a number in one place is usually so in all (and an ID's last digits are gone)."""
    kept = [f for f in fields if f.type in TEXT_KEPT]
    for f in kept:
        numbers = data.filter(pl.col(f"{f.key}__kind") == "n", pl.col(f.key).is_not_null())
        if not numbers.height:
            continue
        row, raw = numbers["_row"][0], numbers[f.key][0]
        cell = f"{letters[f.key]}{row}"
        more = f"（本列共 {numbers.height} 个这样的单元格）" if numbers.height > 1 else ""
        lost = _digits_lost(raw)
        shown = _sci(raw) if lost else short_masked(raw)
        consequence = "号码的后几位已经丢失" if lost else "开头的0和号码格式会丢失"
        raise WorkbookRefused(
            "number_id",
            f"工作表「{sheet_name}」的 {cell} 单元格（{f.header}）被 Excel 存成了数字"
            f"（显示为 {shown}）{more}，{consequence}。请把该列设为“文本”格式，"
            "重新输入或粘贴号码后上传。",
        )


def _digits_lost(raw: str) -> bool:
    """A number past 2**53 (or written with an exponent of 15 and more) no longer holds every digit."""
    try:
        return abs(float(raw)) >= 1e15
    except ValueError:
        return False


def _unpack(path: Path, part: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return _read_part(archive, part)


def _cells(data: bytes, strings: pl.Series, sheet_name: str) -> pl.DataFrame:
    try:
        return sheetxml.read_cells(data, strings)
    except (sheetxml.NotSpreadsheetML, UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        raise WorkbookRefused(
            "bad_zip", f"工作表「{sheet_name}」无法读取，文件可能已损坏。请在 Excel 中重新保存为 .xlsx 后上传。"
        ) from exc


def read_sheet(data: bytes, strings: pl.Series, form: FormSpec, sheet: SheetSpec, date1904: bool = False) -> SheetData:
    """One data sheet's XML as ``SheetData``: cells read, checked whole, the header found, columns mapped."""
    fields = form.fields_of(sheet.id)
    cells = _cells(data, strings, sheet.name)
    _check_cells(cells, sheet.name)
    header_row = _find_header(cells, sheet.name, fields)
    _check_merges(data, sheet.name, header_row)
    columns = _map_columns(cells, header_row, sheet.name, fields)
    letters = {key: get_column_letter(col) for key, col in columns.items()}
    frame = _by_field(cells, header_row, columns, fields)
    _check_numbers_in_text(frame, sheet.name, fields, letters)
    return SheetData(sheet=sheet, frame=frame, letters=letters, header_row=header_row, date1904=date1904)


def _by_field(
    cells: pl.DataFrame, header_row: int, columns: dict[str, int], fields: tuple[FieldSpec, ...]
) -> pl.DataFrame:
    """One row per file row below the header that has a cell in a field's column, in row order: ``_row``, then
    each field's text and storage kind (``<key>``, ``<key>__kind``). A column written in every such row is
    taken as it is; one with gaps is joined onto the rows (a cell is in its row once: ``_check_cells``)."""
    body = cells.filter(pl.col("row") > header_row, pl.col("col").is_in(list(columns.values())))
    rows = body.select(pl.col("row").unique(maintain_order=True))
    parts = body.partition_by("col", as_dict=True, maintain_order=True) if body.height else {}
    out = [rows["row"].alias("_row")]
    for f in fields:
        part = parts.get((columns[f.key],)) if f.key in columns else None
        if part is None:
            empty = pl.repeat(None, rows.height, dtype=pl.String, eager=True)
            out += [empty.alias(f.key), empty.alias(f"{f.key}__kind")]
            continue
        if part.height != rows.height or not part["row"].equals(rows["row"]):
            part = rows.join(part, on="row", how="left", maintain_order="left")
        out += [part["text"].alias(f.key), part["kind"].alias(f"{f.key}__kind")]
    frame = pl.DataFrame(out)
    return frame if frame["_row"].is_sorted() else frame.sort("_row")


SheetHook = Callable[[FormSpec, SheetData], object]


def _sheet_job(
    path: Path, part: str, strings: pl.Series, form: FormSpec, sheet: SheetSpec, date1904: bool, hook: SheetHook | None
) -> tuple:
    """One sheet, in its own thread: unpack with the size limit (so no bomb reaches the reader), read the
    cells, check the sheet whole, and run ``hook`` (the row checks). zlib and Polars release the GIL."""
    data = _unpack(path, part)
    read = read_sheet(data, strings, form, sheet, date1904)
    del data
    return read, hook(form, read) if hook is not None else None


def read_workbook(
    path: Path, allowed_forms: Iterable[str], hook: SheetHook | None = None, campaign: str | None = None
) -> Workbook:
    """Check the file as a whole and read every data sheet of its form; raise ``WorkbookRefused`` if it fails.

    ``campaign``, when given, must be the one the template was written for. ``hook`` runs on each sheet as
    soon as it is read, in that sheet's thread; its results are in ``Workbook.results``.
    """
    _sniff(path)
    with _open_zip(path) as archive:
        parts = _sheet_parts(archive)
        names = set(archive.namelist())
        sizes = {name: archive.getinfo(part).file_size for name, part in parts.sheets.items() if part in names}
        strings_xml = _read_part(archive, parts.shared_strings) if parts.shared_strings else None
    _check_marker(parts.marker)
    form = _form_of(parts.marker, allowed_forms, campaign)
    for sheet in form.sheets:
        if sheet.name not in parts.sheets or sheet.name not in sizes:
            raise WorkbookRefused("columns", f"工作簿中缺少工作表「{sheet.name}」。请不要删除或重命名模板的工作表。")
    try:
        strings = sheetxml.shared_strings(strings_xml)
    except (sheetxml.NotSpreadsheetML, UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        raise WorkbookRefused(
            "bad_zip", "文件的共享字符串表无法读取，文件可能已损坏。请在 Excel 中重新保存为 .xlsx 后上传。"
        ) from exc
    del strings_xml
    largest_first = sorted(form.sheets, key=lambda s: -sizes[s.name])
    with ThreadPoolExecutor(max_workers=len(form.sheets)) as pool:
        jobs = {
            s.id: pool.submit(_sheet_job, path, parts.sheets[s.name], strings, form, s, parts.date1904, hook)
            for s in largest_first
        }
        done = {s.id: jobs[s.id].result() for s in form.sheets}
    return Workbook(
        path=path,
        form=form,
        campaign=parts.marker.get("campaign", ""),
        sheets={sheet_id: read for sheet_id, (read, _) in done.items()},
        results={sheet_id: result for sheet_id, (_, result) in done.items()},
    )
