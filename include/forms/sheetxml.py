"""The cells a worksheet really has, read from its XML set-based (Polars' Rust regex, no loop over cells).

A reader that builds a dense grid (calamine, fastexcel, pandas) takes memory for the rectangle a sheet
spans: one space typed in AT1048576 of a 44 KB file makes it 46 × 1,048,576 cells. This reader keeps one
row per cell present, with what the issue of wrong values needs and the dense readers drop:

- ``row``, ``col``: the file's own position (from ``r="E3"``, or, where a writer leaves ``r`` out, counted
  the way Excel counts: the next row, the next cell);
- ``kind``: how the cell is stored (``n`` number, ``s`` text, ``b`` boolean, ``e`` an error such as #N/A,
  ``d`` an ISO date), so that a number in an ID column is seen whatever its column and however it was
  written (``3.70116196501033E17``, ``370116196501033024``);
- ``text``: the stored text, shared strings resolved, XML entities and Excel's ``_xHHHH_`` escapes decoded
  (control characters are left for the row checks to name, never dropped silently);
- ``formula``: whether the cell has a formula.

Tags may carry a namespace prefix (``<x:c>``); attributes may be quoted either way. The XML has been size-
and DTD-checked before it gets here (include/forms/workbook.py).
"""

from __future__ import annotations

import re
from functools import cache

import polars as pl
from openpyxl.utils import get_column_letter

CELLS_SCHEMA = {"row": pl.Int64, "col": pl.Int64, "kind": pl.String, "text": pl.String, "formula": pl.Boolean}
_ROOT = re.compile(rb"<(?:(\w+):)?(worksheet|sst)\b")
_ENTITIES = (["&lt;", "&gt;", "&quot;", "&apos;", "&amp;"], ["<", ">", '"', "'", "&"])
_CHAR_REF = re.compile(r"&#(x[0-9A-Fa-f]+|\d+);")
_EXCEL_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_ODD_CELL = re.compile(rb"<c([>/]|\s(?<! ))")  # <c>, <c/>, a tab or a line break after the tag name


class NotSpreadsheetML(ValueError):
    """The part is not a transitional SpreadsheetML worksheet or string table."""


def prefix_of(data: bytes) -> str:
    """The namespace prefix the part's root element uses ("" or "x:")."""
    found = _ROOT.search(data, 0, 4096)
    if found is None:
        raise NotSpreadsheetML("no worksheet root")
    return f"{found.group(1).decode()}:" if found.group(1) else ""


def _decode(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """XML's five entities in one pass; character references and Excel's _xHHHH_ escapes, rare, in Python on
    the few values that have them."""
    frame = frame.with_columns(pl.col(column).str.replace_many(*_ENTITIES))
    rare = pl.col(column).str.contains("&#", literal=True) | pl.col(column).str.contains("_x", literal=True)
    if not frame.select(rare.any()).item():
        return frame
    frame = frame.with_row_index("_i")
    fixed = frame.filter(rare).select(
        "_i", pl.col(column).map_elements(_decode_rare, return_dtype=pl.String).alias("_fixed")
    )
    frame = frame.join(fixed, on="_i", how="left", maintain_order="left")
    return frame.with_columns(pl.coalesce("_fixed", column).alias(column)).drop("_i", "_fixed")


def _decode_rare(text: str) -> str:
    def char_ref(match: re.Match[str]) -> str:
        code = match.group(1)
        return chr(int(code[1:], 16) if code[0] == "x" else int(code))

    return _EXCEL_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), _CHAR_REF.sub(char_ref, text))


def _runs(p: str, items: pl.Expr) -> pl.Expr:
    """The text of ``<si>``/``<is>`` items: their ``<t>`` runs joined, phonetic runs (``<rPh>``) left out."""
    items = items.str.replace_all(rf"(?s)<{p}rPh\b.*?</{p}rPh>", "")
    runs = items.str.extract_all(rf"(?s)<{p}t(?:\s[^>]*)?>[^<]*</{p}t>")
    return runs.list.eval(pl.element().str.replace_all(r"<[^>]*>", "")).list.join("")


def shared_strings(data: bytes | None) -> pl.Series:
    """The workbook's shared strings, in index order (empty when the workbook has none)."""
    if not data:
        return pl.Series("text", [], pl.String)
    p = re.escape(prefix_of(data))
    text = data.decode("utf-8")
    items = pl.Series([text]).str.extract_all(rf"(?s)<{p}si\b[^>]*/>|<{p}si\b[^>]*>.*?</{p}si>").explode()
    frame = pl.DataFrame({"si": items}).drop_nulls().select(_runs(p, pl.col("si")).fill_null("").alias("text"))
    return _decode(frame, "text").to_series()


@cache
def _columns() -> pl.DataFrame:
    """Every column name Excel has (A … XFD) and its number."""
    return pl.DataFrame(
        {"letters": [get_column_letter(n) for n in range(1, 16385)], "given_col": range(1, 16385)},
        schema={"letters": pl.String, "given_col": pl.Int64},
    )


def _normalised(data: bytes, prefix: str) -> bytes:
    """The ``<sheetData>`` section with the namespace prefix dropped and every cell opened as ``<c `` (what
    the split below cuts on); the rare forms cost a replace only in the files that use them."""
    start = data.find(f"<{prefix}sheetData".encode())
    if start < 0:
        return b""
    end = data.rfind(f"</{prefix}sheetData>".encode())
    section = data[start : end if end > start else len(data)]
    if prefix:
        section = section.replace(f"<{prefix}".encode(), b"<").replace(f"</{prefix}".encode(), b"</")
    if _ODD_CELL.search(section):
        section = _ODD_CELL.sub(lambda m: b"<c " + m.group(1).strip(), section)
    return section


def _cut(binary: pl.Expr, text: pl.Expr, openings: tuple[str, ...], closing: str) -> pl.Expr:
    """The text between the first of ``openings`` and ``closing`` (byte offsets, so a slice of the binary
    column: Polars' ``str.slice`` counts characters); null where there is none."""
    start = pl.coalesce([text.str.find(opening, literal=True) + len(opening) for opening in openings])
    return binary.bin.slice(start, text.str.find(closing, literal=True) - start).cast(pl.String)


def _attribute(attrs: pl.Expr, name: str) -> pl.Expr:
    """An attribute's value from an opening tag's attribute text (with a leading space, quotes made double)."""
    binary = attrs.cast(pl.Binary)
    at = attrs.str.find(f' {name}="', literal=True)
    tail = binary.bin.slice(at + len(name) + 3, None)
    return tail.bin.slice(0, tail.cast(pl.String).str.find('"', literal=True)).cast(pl.String)


def _row_numbers(pieces: pl.Series) -> pl.DataFrame:
    """``row_seq`` (the n-th row that has cells) → its row number, from the pieces that open rows.

    A piece may hold several ``<row>`` tags (empty rows between); the last one opens the row that follows.
    A row without ``r`` is the one after the row before, counting the empty rows.
    """
    tags = pieces.str.extract_all(r"<row\b[^>]*>")
    frame = pl.DataFrame({"tags": tags}).filter(pl.col("tags").list.len() > 0)
    last = pl.lit(" ") + pl.col("tags").list.last().str.slice(4).str.replace_all("'", '"', literal=True)
    counted = pl.col("tags").list.len().cum_sum().cast(pl.Int64)
    given = _attribute(last, "r").cast(pl.Int64, strict=False)
    return frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row_seq"),
        (counted + (given - counted).forward_fill().fill_null(0)).alias("row_number"),
    )


KINDS = {"s": "s", "inlineStr": "s", "str": "s", "b": "b", "e": "e", "d": "d", "n": "n"}


def read_cells(data: bytes, strings: pl.Series) -> pl.DataFrame:
    """One row per cell present in the worksheet's ``<sheetData>``, in document order (``CELLS_SCHEMA``).

    The section is cut at each ``<c `` (bytes.split: one pass at memchr speed), and every piece is read by
    Polars expressions: literal finds and byte slices (regular expressions only on the few row tags).
    """
    section = _normalised(data, prefix_of(data))
    pieces = section.split(b"<c ")
    del section
    first = pieces[0].decode("utf-8")
    frame = pl.DataFrame({"bin": pl.Series(pieces[1:], dtype=pl.Binary)})
    del pieces
    frame = frame.with_columns(pl.col("bin").cast(pl.String).alias("tok"))  # validates UTF-8 once
    tok, binary = pl.col("tok"), pl.col("bin")
    gt = tok.str.find(">", literal=True)
    frame = frame.with_columns(
        (pl.lit(" ") + binary.bin.slice(0, gt).cast(pl.String).str.replace_all("'", '"', literal=True)).alias("attrs"),
        # a piece holding "<row" ends its row: the next piece is the next row's first cell
        tok.str.contains("<row", literal=True).alias("opens_row"),
        binary.bin.slice(gt + 1, None).alias("body"),
    ).with_columns((pl.col("opens_row").shift(1, fill_value=True).cum_sum() - 1).alias("row_seq"))
    opening = pl.concat([pl.Series([first]), frame.filter(pl.col("opens_row"))["tok"]])
    rows = _row_numbers(opening)
    attrs = pl.col("attrs")
    ref = _attribute(attrs, "r")
    letters = ref.str.strip_chars_end("0123456789")
    body = pl.col("body")
    body_text = body.cast(pl.String)
    cells = frame.drop("tok", "bin").with_columns(
        letters.str.to_uppercase().alias("letters"),
        ref.str.strip_chars_start("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        .cast(pl.Int64, strict=False)
        .alias("given_row"),
        _attribute(attrs, "t").alias("t"),
        attrs.str.ends_with("/").alias("empty"),
        body_text.str.contains("<f", literal=True).alias("formula"),
    )
    cells = cells.join(_columns(), on="letters", how="left", maintain_order="left")
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.col("row_seq") != pl.col("row_seq").shift(1, fill_value=-1)
    cells = cells.with_columns((index - pl.when(starts).then(index).forward_fill()).alias("j"))
    # a cell without ``r`` is the one after the cell before; the first of a row without ``r`` is in column A
    given = pl.when(pl.col("given_col") > 0).then(pl.col("given_col") - pl.col("j"))
    base = pl.when(given.is_not_null()).then(given).when(starts).then(pl.lit(1, pl.Int64)).forward_fill()
    cells = cells.join(rows, on="row_seq", how="left", maintain_order="left").with_columns(
        (pl.col("j") + base).alias("col"), pl.coalesce("given_row", "row_number").alias("row")
    )
    t = pl.col("t").fill_null("n")
    shared, inline = t == "s", t == "inlineStr"
    value = _cut(body, body_text, ("<v>",), "</v>")
    # rich text, phonetic runs or a <t> written another way: read by the general (slower) expression
    rich = (
        body_text.str.contains("<r>", literal=True)
        | body_text.str.contains("<rPh", literal=True)
        | (
            body_text.str.contains("<t", literal=True)
            & _cut(body, body_text, ("<t>", '<t xml:space="preserve">'), "</t>").is_null()
        )
    )
    cells = cells.with_columns(
        t.replace_strict(KINDS, default="n").alias("kind"),
        pl.when(pl.col("empty") | shared)
        .then(pl.lit(None, pl.String))
        .when(inline)
        .then(_cut(body, body_text, ("<t>", '<t xml:space="preserve">'), "</t>"))
        .otherwise(value)
        .alias("text"),
        pl.when(shared).then(value.str.strip_chars().cast(pl.Int64, strict=False)).alias("sst"),
        (inline & rich).alias("rich"),
    )
    if cells.select(pl.col("rich").any()).item():  # rich text typed inline: its runs joined, the few cells alone
        cells = cells.with_row_index("_i")
        runs = cells.filter(pl.col("rich")).select("_i", _runs("", pl.col("body").cast(pl.String)).alias("_runs"))
        cells = cells.join(runs, on="_i", how="left", maintain_order="left")
        cells = cells.with_columns(pl.coalesce("_runs", "text").alias("text")).drop("_i", "_runs")
    cells = _decode(cells, "text")
    if shared_cells := cells.filter(pl.col("sst").is_not_null()).height:
        if shared_cells and not strings.len():
            raise NotSpreadsheetML("shared strings referenced, none in the workbook")
        lookup = pl.DataFrame({"sst": pl.int_range(strings.len(), dtype=pl.Int64, eager=True), "shared": strings})
        cells = cells.join(lookup, on="sst", how="left", maintain_order="left")
        if cells.select(pl.col("sst").is_not_null() & pl.col("shared").is_null()).to_series().any():
            raise NotSpreadsheetML("a shared-string index out of range")
        cells = cells.with_columns(pl.coalesce("text", "shared").alias("text"))
    cells = cells.with_columns(pl.when(pl.col("empty")).then(pl.lit("s")).otherwise("kind").alias("kind"))
    return cells.select(list(CELLS_SCHEMA)).cast(CELLS_SCHEMA)  # type: ignore[arg-type]
