"""The cells a worksheet really has, read from its XML set-based (Polars expressions, no Python loop over cells).

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
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ROOT = re.compile(rb"<(?:(\w+):)?(worksheet|sst)\b")
_ENTITIES = (["&lt;", "&gt;", "&quot;", "&apos;", "&amp;"], ["<", ">", '"', "'", "&"])
_XML_ENTITY = re.compile(r"&(lt|gt|quot|apos|amp|#[xX][0-9A-Fa-f]{1,8}|#[0-9]{1,10});")
_NAMED = dict(zip(["lt", "gt", "quot", "apos", "amp"], _ENTITIES[1], strict=True))
_EXCEL_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_TAG = re.compile(rb"<[^<>]*>")  # linear: one try per "<", up to the next "<"
_SINGLE_QUOTED = re.compile(rb"""(\s[\w:]+)\s*=\s*(?:'([^'<>]*)'|"([^"<>]*)")""")
FAST_OPENINGS = ("<v>", "<is><t>", '<is><t xml:space="preserve">')
# a t="…" value's first two characters, which tell Excel's types apart: shared string, inline string, a
# formula's string, boolean, error, ISO date, number (also what a cell without t is)
T_CODES = {"s": 's"', "inlineStr": "in", "str": "st", "b": 'b"', "e": 'e"', "d": 'd"', "n": 'n"'}
# <c> or <c/> without attributes, a tab or line break in a tag, an attribute in single quotes or spaced around
# "=": all legal XML, none what Excel writes; found in the pieces (a glued cell) or before their tag's end
_ODD_BYTES = b"'\t\r\n"  # looked for in the whole section first: one memchr each
_ODD_AT = r"='|\s=|=\s|[\t\r\n]"
_SPACES = re.compile(rb"\s+")
_ODD_CELL = re.compile(rb"<c([>/]|\s(?<! ))")  # <c>, <c/>, a tab or a line break after the tag name


class NotSpreadsheetML(ValueError):
    """The part is not a transitional SpreadsheetML worksheet or string table."""


def _root_prefix(data: bytes) -> str:
    """The namespace prefix the part's root element uses ("" or "x:")."""
    found = _ROOT.search(data, 0, 4096)
    if found is None:
        raise NotSpreadsheetML("no worksheet root")
    return f"{found.group(1).decode()}:" if found.group(1) else ""


def _unprefixed(data: bytes, prefix: str) -> bytes:
    if not prefix:
        return data
    return data.replace(f"<{prefix}".encode(), b"<").replace(f"</{prefix}".encode(), b"</")


_MARKUP = ["<!--", "<![CDATA[", "<?"]
_PREFIXED = [":c", ":row", ":v", ":is", ":t", ":f", ":si", ":r"]
_FOREIGN_TAG = r"</?\w+:(?:c|row|v|is|t|f|si|r)\b"  # after the part's own prefix is taken off


def _refuse_markup(head: bytes, items: pl.Series, rest: tuple[bytes, int, int] | None = None) -> None:
    """``NotSpreadsheetML`` for markup no spreadsheet program writes in a sheet's cells or a string table,
    which a reader cutting at tags could misread: comments, processing instructions after the declaration,
    CDATA, tags of a second namespace prefix. ``head`` is the part up to its first item (cell or string),
    ``items`` the pieces it was cut into (looked at in Polars, all at once). ``rest``: the part and where the
    items are in it, where a byte no such markup can go without ("!", "?", ":") is looked for first."""
    declaration = head.find(b"?>") + 2 if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml") else 0
    if b"<!--" in head or b"<![CDATA[" in head or head.find(b"<?", declaration) >= 0:
        raise NotSpreadsheetML("a comment, CDATA or a processing instruction")

    def has(byte: bytes) -> bool:
        return rest is None or rest[0].find(byte, rest[1], rest[2]) >= 0

    if (has(b"!") or has(b"?")) and items.str.contains_any(_MARKUP).any():
        raise NotSpreadsheetML("a comment, CDATA or a processing instruction")
    suspects = items.filter(items.str.contains_any(_PREFIXED)) if has(b":") else items.head(0)
    if re.search(_FOREIGN_TAG.encode(), head) or (suspects.len() and suspects.str.contains(_FOREIGN_TAG).any()):
        raise NotSpreadsheetML("tags of a second namespace prefix")


def _decode(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """XML's five entities in one pass; a value with a character reference or an Excel _xHHHH_ escape (rare)
    is decoded whole in Python, so that "&amp;#49;" stays the text "&#49;"."""
    if not frame.select(pl.col(column).str.contains_any(["&", "_x"]).any()).item():  # most sheets: nothing to do
        return frame
    rare = pl.col(column).str.contains_any(["&#", "_x"])
    if not frame.select(rare.any()).item():
        return frame.with_columns(pl.col(column).str.replace_many(*_ENTITIES))
    frame = frame.with_row_index("_i")
    fixed = frame.filter(rare).select(
        "_i", pl.col(column).map_elements(_decode_rare, return_dtype=pl.String).alias("_fixed")
    )
    frame = frame.with_columns(pl.col(column).str.replace_many(*_ENTITIES))
    frame = frame.join(fixed, on="_i", how="left", maintain_order="left")
    return frame.with_columns(pl.coalesce("_fixed", column).alias(column)).drop("_i", "_fixed")


def _code_point(number: int) -> str:
    """A character by its number; one no text can hold (a surrogate, past U+10FFFF) becomes NUL, which the
    row checks name as a control character in its cell."""
    return "\x00" if number > 0x10FFFF or 0xD800 <= number <= 0xDFFF else chr(number)


def _decode_rare(text: str) -> str:
    def entity(match: re.Match[str]) -> str:
        name = match.group(1)
        if name[0] == "#":
            return _code_point(int(name[2:], 16) if name[1] in "xX" else int(name[1:]))
        return _NAMED[name]

    decoded = _XML_ENTITY.sub(entity, text)
    return _EXCEL_ESCAPE.sub(lambda m: _code_point(int(m.group(1), 16)), decoded)


def _runs(p: str, items: pl.Expr) -> pl.Expr:
    """The text of ``<si>``/``<is>`` items: their ``<t>`` runs joined, phonetic runs (``<rPh>``) left out."""
    items = items.str.replace_all(rf"(?s)<{p}rPh\b.*?</{p}rPh>", "")
    runs = items.str.extract_all(rf"(?s)<{p}t(?:\s[^>]*)?>[^<]*</{p}t>")
    return runs.list.eval(pl.element().str.replace_all(r"<[^>]*>", "")).list.join("")


def shared_strings(data: bytes | None) -> pl.Series:
    """The workbook's shared strings, in index order (empty when the workbook has none): each ``<si>`` cut out
    with ``bytes.split``; a plain one's ``<t>`` read by one expression, rich text's runs joined."""
    if not data:
        return pl.Series("text", [], pl.String)
    data = _unprefixed(data, _root_prefix(data))
    head, *cut = data.split(b"<si")
    items = pl.Series("si", cut, pl.Binary)
    del cut
    _refuse_markup(head, items.cast(pl.String))
    end = items.cast(pl.String).str.find("</si>", literal=True)  # a byte offset: the last item ends before </sst>
    items = items.bin.slice(0, end).cast(pl.String)
    frame = pl.DataFrame({"si": items}).with_columns(
        (pl.col("si").str.contains("<r>", literal=True) | pl.col("si").str.contains("<rPh", literal=True)).alias(
            "rich"
        ),
        pl.col("si").str.extract(r"<t(?:\s[^>]*)?>([^<]*)</t>", 1).alias("text"),
    )
    if frame.select(pl.col("rich").any()).item():
        frame = frame.with_columns(
            pl.when(pl.col("rich")).then(_runs("", pl.col("si"))).otherwise("text").alias("text")
        )
    return _decode(frame.select(pl.col("text").fill_null("")), "text").to_series()


def _double_quoted(match: re.Match[bytes]) -> bytes:
    value = match.group(2) if match.group(2) is not None else match.group(3)
    return match.group(1) + b'="' + value + b'"'


def _normalised(data: bytes) -> bytes:
    """The sheet with every cell opened as ``<c `` and every attribute in double quotes (attributes only:
    text holds no "<"). Run only on a sheet where the first read found such a form."""
    data = _ODD_CELL.sub(lambda m: b"<c " + m.group(1).strip(), data)
    return _TAG.sub(_tag_normalised, data)


def _tag_normalised(match: re.Match[bytes]) -> bytes:
    tag = match.group(0)
    return _SPACES.sub(b" ", _SINGLE_QUOTED.sub(_double_quoted, tag)) if b"=" in tag else tag


class _OddForms(Exception):
    """The sheet writes a cell or an attribute in a form the fast read does not take."""


CHUNK_BYTES = 4 << 20  # the sheet is cut a chunk at a time


def _cell_pieces(data: bytes) -> tuple[bytes, pl.Series, int]:
    """The sheet cut at each ``<c ``: the part before the first cell (all of it when none is), one piece per
    cell up to ``</sheetData>`` (so that nothing after the cells is read as a cell's) as text, and where the
    pieces end in ``data``."""
    start = data.find(b"<sheetData")
    first_cell = data.find(b"<c ", start) if start >= 0 else -1
    end = data.rfind(b"</sheetData>")
    end = len(data) if end < 0 else end
    if first_cell < 0 or first_cell > end:
        return data[:end], pl.Series("tok", [], pl.String), end
    pieces, at = [], first_cell + 3
    while at <= end:  # a chunk at a time, so that no copy of the whole section is ever made
        cut = data.find(b"<c ", min(at + CHUNK_BYTES, end), end)
        cut = end if cut < 0 else cut
        chunk = pl.Series("tok", [data[at:cut]], pl.Binary).cast(pl.String)  # UTF-8 checked
        pieces.append(chunk.str.split("<c ").explode())
        at = cut + 3
    return data[:first_cell], pl.concat(pieces, rechunk=False), end


def _after(binary: pl.Expr, text: pl.Expr, needle: str) -> tuple[pl.Expr, pl.Expr]:
    """The bytes after the first ``needle`` (null where there is none), as binary and as text."""
    tail = binary.bin.slice(text.str.find(needle, literal=True) + len(needle), None)
    return tail, tail.cast(pl.String)


def _until(binary: pl.Expr, text: pl.Expr, needle: str) -> pl.Expr:
    """The text before the first ``needle`` (null where there is none)."""
    return binary.bin.slice(0, text.str.find(needle, literal=True)).cast(pl.String)


@cache
def _column_numbers() -> tuple[pl.Series, pl.Series]:
    """Every column name Excel has (A … XFD), and its number."""
    return pl.Series([get_column_letter(n) for n in range(1, 16385)]), pl.int_range(1, 16385, eager=True)


def _row_numbers(pieces: pl.Series) -> pl.DataFrame:
    """``row_seq`` (the n-th row that has cells) → its row number, from the pieces that open rows.

    A piece may hold several ``<row>`` tags (empty rows between); the last one opens the row that follows.
    A row without ``r`` is the one after the row before, empty rows counted; an ``r`` that is not a row
    number is refused.
    """
    tags = pl.DataFrame({"tags": pieces.str.extract_all(r"<row\b[^>]*>")}).with_row_index("piece").explode("tags")
    tags = tags.drop_nulls("tags").with_columns(
        pl.col("tags").str.extract(r"""\sr\s*=\s*["']([^"']*)["']""", 1).alias("r_text")
    )
    given = pl.col("r_text").cast(pl.Int64, strict=False)
    if tags.select((pl.col("r_text").is_not_null() & ~(given >= 1).fill_null(False)).any()).item():
        raise NotSpreadsheetML("a row number that is not one")
    counted = pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    numbered = tags.with_columns((counted + (given - counted).forward_fill().fill_null(0)).alias("row_number"))
    last = numbered.group_by("piece", maintain_order=True).agg(pl.col("row_number").last())
    return last.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("row_seq"), "row_number")


def read_cells(data: bytes, strings: pl.Series) -> pl.DataFrame:
    """One row per cell present in the worksheet's ``<sheetData>``, in document order (``CELLS_SCHEMA``)."""
    data = _unprefixed(data, _root_prefix(data))
    try:
        return _read_cells(data, strings)
    except _OddForms:
        return _read_cells(_normalised(data), strings, normalised=True)


def _odd_forms(first: str, frame: pl.DataFrame, section: tuple[bytes, int, int]) -> bool:
    """Whether a cell or an attribute is written in a form the fast read does not take (an attribute in single
    quotes or spaced around "=", a tab or a line break in a tag, a cell glued to the one before). Looked for
    in the pieces by literal finds (quotes, tabs and line breaks only where the section has one); the few
    suspects, which may only hold such a text, are read closer."""
    if re.search(r"<c[>/\s]|='|\s=|=\s|<c [^>]*[\t\r\n]", first):
        return True
    data, start, end = section
    tok = pl.col("tok")
    suspect = tok.str.contains(" =", literal=True) | tok.str.contains("= ", literal=True)
    suspect = suspect | tok.str.contains("<c", literal=True)
    odd_bytes = [chr(b) for b in _ODD_BYTES if data.find(bytes([b]), start, end) >= 0]
    if odd_bytes:
        suspect = suspect | tok.str.contains_any(odd_bytes)
    suspects = frame.filter(suspect)
    odd = (tok.str.find(_ODD_AT) < tok.str.find(">", literal=True)) | tok.str.contains(r"<c[>/\s]")
    return bool(suspects.height) and bool(suspects.select(odd.any()).item())


def _fast_read(pieces: pl.LazyFrame, *, r_first: bool, formulas: bool, upper: bool = False) -> pl.LazyFrame:
    """Each piece's cell as Excel, openpyxl and POI write it, by literal finds and byte slices only (one
    streaming query: every column is worked out once, a morsel at a time, on every core). Everything is read
    in place, by positions in the piece: slices of up to 12 bytes are held inline by Polars' string views.
    ``r_first``: every piece starts with its reference (as those programs write it), so that ``r`` need not be
    looked for; ``formulas``: the section may hold one; ``upper``: references read as upper case (r="a1",
    which Excel does not write but reads)."""
    tok, binary, gt = pl.col("tok"), pl.col("bin"), pl.col("gt")

    def found(needle: str) -> pl.Expr:
        return tok.str.find(needle, literal=True)

    def piece(start: pl.Expr | int, length: pl.Expr | int) -> pl.Expr:
        return binary.bin.slice(start, length).cast(pl.String)

    def attribute(name: str, *, first: bool) -> pl.Expr:
        """Where the value of the tag's attribute ``name`` begins (null when the tag has none: an attribute is
        the tag's where it is found before the tag's end); ``first``: it may be the tag's first."""
        at = found(f' {name}="') + 1
        if first:
            at = pl.when(tok.str.starts_with(f'{name}="')).then(0).otherwise(at)
        return pl.when(at < gt).then(at + len(name) + 2)

    pieces = pieces.with_columns(
        found(">").alias("gt"),
        found("</").alias("end"),  # a value ends at the first "</" (a tag holds none, a text holds no "<")
        found(FAST_OPENINGS[2]).alias("preserve_at"),
    ).with_columns(
        (pl.lit(3, pl.UInt32) if r_first else attribute("r", first=True)).alias("r_at"),
        attribute("t", first=not r_first).alias("t_at"),
    )
    short_ref = piece(pl.col("r_at"), 11)
    pieces = pieces.with_columns(
        short_ref.str.slice(0, short_ref.str.find('"', literal=True)).alias("ref"),
        piece(pl.col("t_at"), 2).fill_null(T_CODES["n"]).alias("t"),  # T_CODES
        # a tag ends after an attribute's closing quote or with "/>": a ">" inside a value would cut it short
        piece(gt - 1, 1).alias("tag_end"),  # "<c >", a tag without attributes (gt 0), is looked at on its own
        piece(gt + 1, 7).alias("after"),
    )
    # The value right after the tag: <v>…</v> or <is><t>…</t></is> (with xml:space="preserve" or not); other
    # forms (rich text, a formula before its value …) are "odd", for the general reading.
    inline, after = pl.col("t") == T_CODES["inlineStr"], pl.col("after")
    offset = (
        (after.str.starts_with(FAST_OPENINGS[0]) & ~inline).cast(pl.Int64) * len(FAST_OPENINGS[0])
        + ((after == FAST_OPENINGS[1]) & inline).cast(pl.Int64) * len(FAST_OPENINGS[1])
        + ((pl.col("preserve_at") == gt + 1).fill_null(False) & inline).cast(pl.Int64) * len(FAST_OPENINGS[2])
    )
    pieces = pieces.with_columns((gt + 1 + offset).alias("start"), (offset == 0).alias("odd"))
    if upper:
        pieces = pieces.with_columns(pl.col("ref").str.to_uppercase())
    start, letters = pl.col("start"), pl.col("ref").str.strip_chars_end("0123456789")
    pieces = pieces.with_columns(
        letters.replace_strict(*_column_numbers(), default=None, return_dtype=pl.Int32).alias("given_col"),
        pl.col("ref").str.strip_chars_start(_LETTERS).cast(pl.Int32, strict=False).alias("given_row"),
        pl.col("r_at").is_not_null().alias("has_ref"),
        ((pl.col("tag_end") == "/") & (gt > 0)).alias("empty"),
        pl.when(~pl.col("odd")).then(piece(start, pl.col("end") - start)).alias("fast"),
    )
    t, empty = pl.col("t"), pl.col("empty")
    shared = t == T_CODES["s"]
    kind = {T_CODES[k]: k for k in ("b", "e", "d")} | {T_CODES[k]: "s" for k in ("s", "inlineStr", "str")}
    broken = (
        ~t.is_in(list(T_CODES.values()))  # a type Excel does not have (t="S", t=" s")
        | (pl.col("has_ref") & (pl.col("given_col").is_null() | pl.col("given_row").is_null()))  # r="XFE2", r=""
        | ~((pl.col("tag_end") == '"') | (gt == 0) | (pl.col("tag_end") == "/")).fill_null(False)
        | (~pl.col("odd") & ~(pl.col("end") >= start).fill_null(False))  # a value that never closes
    )
    return pieces.select(
        (tok.str.contains("<f", literal=True) if formulas else pl.lit(False)).alias("formula"),
        shared.alias("shared"),
        (t == T_CODES["inlineStr"]).alias("inline"),
        (pl.col("odd") & ~empty).alias("odd"),
        "given_col",
        "given_row",
        "has_ref",
        "empty",
        broken.alias("broken"),
        # shared, inline and a formula's strings: text; b, e, d as they are; none or n: a number
        pl.when(empty).then(pl.lit("s")).otherwise(t.replace_strict(kind, default="n")).alias("kind"),
        pl.when(~empty & ~shared).then(pl.col("fast")).alias("text"),
        pl.when(shared).then(pl.col("fast").str.strip_chars().cast(pl.Int32, strict=False)).alias("sst"),
    )


def _counted(cells: pl.DataFrame, frame: pl.DataFrame, first: str) -> pl.DataFrame:
    """``row`` and ``col`` for cells some of which have no ``r``: a cell without r is the one after the cell
    before; the first of a row without r is in column A; a row is its ``<row>``'s (``_row_numbers``)."""
    opens_row = frame["tok"].str.contains("<row", literal=True)  # the next piece is the next row's first cell
    rows = _row_numbers(pl.concat([pl.Series([first]), frame.filter(opens_row)["tok"]]))
    cells = cells.with_columns((opens_row.shift(1, fill_value=True).cum_sum() - 1).alias("row_seq"))
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    starts = pl.col("row_seq") != pl.col("row_seq").shift(1, fill_value=-1)
    cells = cells.with_columns((index - pl.when(starts).then(index).forward_fill()).alias("j"))
    given = pl.when(pl.col("given_col") > 0).then(pl.col("given_col") - pl.col("j"))
    base = pl.when(given.is_not_null()).then(given).when(starts).then(pl.lit(1, pl.Int64)).forward_fill()
    cells = cells.join(rows, on="row_seq", how="left", maintain_order="left")  # none: a cell outside any row
    return cells.with_columns(
        (pl.col("j") + base).alias("col"), pl.coalesce("given_row", "row_number").alias("row")
    ).drop("row_seq", "j", "row_number")


def _read_cells(data: bytes, strings: pl.Series, *, normalised: bool = False) -> pl.DataFrame:
    """The cells, read fast: the section is cut at each ``<c `` (by Polars, at memchr speed) and every piece
    read by ``_fast_read``; regular expressions only on the few pieces that open rows or write a value
    another way. ``_OddForms`` when the sheet needs normalising first (``normalised``: it has been)."""
    head, pieces, end = _cell_pieces(data)
    frame = pl.DataFrame({"tok": pieces, "bin": pieces.cast(pl.Binary)})  # the same bytes, as text and binary
    del pieces
    section = (data, len(head), end)  # where the pieces are
    _refuse_markup(head, frame["tok"], section)
    if not frame.height:
        if not normalised and _ODD_CELL.search(data):  # every cell written <c> or <c/>: none cut yet
            raise _OddForms
        return pl.DataFrame(schema=CELLS_SCHEMA)
    first = head[head.find(b"<sheetData") :].decode("utf-8")
    if not normalised and _odd_forms(first, frame, section):
        raise _OddForms
    r_first = bool(frame.select(pl.col("tok").str.starts_with('r="').all()).item())
    formulas = data.find(b"f", *section[1:]) >= 0  # no "f", no "<f>" (one memchr)
    cells = _fast_read(frame.lazy(), r_first=r_first, formulas=formulas).collect(engine="streaming")
    if cells.select(pl.col("has_ref") & pl.col("given_col").is_null()).to_series().any():
        cells = _fast_read(frame.lazy(), r_first=r_first, formulas=formulas, upper=True).collect(engine="streaming")
    if cells["broken"].any():
        raise NotSpreadsheetML("a cell reference, type or tag no spreadsheet writes")
    if cells["has_ref"].all():  # as every spreadsheet program writes them
        cells = cells.with_columns(pl.col("given_col").alias("col"), pl.col("given_row").alias("row"))
    else:
        cells = _counted(cells, frame, first)
    shared, inline = pl.col("shared"), pl.col("inline")
    if cells.select(pl.col("odd").any()).item():  # no value where the fast read looks: one written otherwise?
        cells = cells.with_columns(
            (
                pl.col("odd")
                & (frame["tok"].str.contains("<v", literal=True) | frame["tok"].str.contains("<t", literal=True))
            ).alias("odd")
        )
    if cells.select(pl.col("odd").any()).item():  # rich text, a formula before its value …: those cells only
        cells = cells.with_row_index("_i")
        odd = (
            cells.filter(pl.col("odd"))
            .select("_i", "inline")
            .join(frame.with_row_index("_i"), on="_i", how="left")
            .with_columns(pl.col("tok").str.find(">", literal=True).alias("gt"))
            .with_columns(pl.col("bin").bin.slice(pl.col("gt") + 1, None).cast(pl.String).alias("body"))
        )
        value = _until(*_after(pl.col("body").cast(pl.Binary), pl.col("body"), "<v"), "</v>")
        value = value.cast(pl.Binary).bin.slice(value.str.find(">", literal=True) + 1, None).cast(pl.String)
        odd = odd.select(
            "_i",
            pl.when(inline).then(_runs("", pl.col("body"))).otherwise(value).alias("_odd"),
        )
        cells = cells.join(odd, on="_i", how="left", maintain_order="left")
        shared_index = pl.col("_odd").str.strip_chars().cast(pl.Int32, strict=False)
        cells = cells.with_columns(
            pl.when(pl.col("odd") & ~shared).then(pl.col("_odd")).otherwise("text").alias("text"),
            pl.when(pl.col("odd") & shared).then(shared_index).otherwise("sst").alias("sst"),
        ).drop("_i", "_odd")
    del frame
    cells = _decode(cells, "text")
    if cells.select(shared & ~pl.col("empty") & pl.col("sst").is_null()).to_series().any():
        raise NotSpreadsheetML("a shared-string cell without an index")
    if cells.select(pl.col("sst").is_not_null().any()).item():
        lookup = pl.DataFrame({"sst": pl.int_range(strings.len(), dtype=pl.Int32, eager=True), "_shared": strings})
        cells = cells.join(lookup, on="sst", how="left", maintain_order="left")
        if cells.select(pl.col("sst").is_not_null() & pl.col("_shared").is_null()).to_series().any():
            raise NotSpreadsheetML("a shared-string index out of range")
        cells = cells.with_columns(pl.coalesce("text", "_shared").alias("text"))
    if cells.select((pl.col("row") < 1) | (pl.col("col") < 1) | pl.col("row").is_null()).to_series().any():
        raise NotSpreadsheetML("a cell outside any row")
    return cells.select(list(CELLS_SCHEMA)).cast(CELLS_SCHEMA)  # type: ignore[arg-type]
