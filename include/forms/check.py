"""Row checks of a read workbook: type, option, required and format, column by column (Polars).

Every cell is first normalised (full-width digits and letters to half-width, stray spaces removed);
a row with a cell that still fails is rejected, with one message per failing cell naming the
sheet, the cell, the field, the (masked) value and what to write instead. Accepted rows keep typed
values: integers, two-decimal amounts as floats, dates, months as the first day, options as printed
(or the option's number where the form asks for it), multiple options as lists.

Only what the form itself demands is checked here; consistency between fields and rows (ID check
digits, income arithmetic, one head per household …) is the rule engine's (include/rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from include.forms.spec import YES_NO, FieldSpec, FormSpec, SheetSpec
from include.forms.workbook import Workbook, _header_key, read_workbook
from include.masking import mask_value, redact

ROW = "_row"
FULLWIDTH = [chr(c) for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))] + ["\u3000"]
HALFWIDTH = [chr(ord(c) - 0xFEE0) for c in FULLWIDTH[:-1]] + [" "]
NUMERIC_PUNCT = (["．", "－", "＋", "，", ","], [".", "-", "+", "", ""])
DATE_TEXT = r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"
DATE_COMPACT = r"^(\d{4})(\d{2})(\d{2})$"
SERIAL = r"^\d{1,5}(?:\.0+)?$"
MONTH_TEXT = r"^(\d{4})[-/.年](\d{1,2})月?$"
EXCEL_EPOCH = pl.date(1899, 12, 30)
MULTI_SEPARATORS = r"[、,，;；/\s]+"
MAX_TEXT = 200
MAX_NAME = 30

PATTERNS = {
    "id_number": (r"^\d{17}[\dX](?:\d{2})?$", "证件号码应为18位（末位可为X），残疾人证为20位"),
    "phone": (r"^(?:1\d{10}|0\d{2,3}-?\d{7,8}|\d{7,8})$", "电话应为11位手机号或带区号的固定电话"),
    "account": (r"^\d{8,30}$", "银行账号应为8至30位数字"),
    "integer": (r"^[+-]?\d+(?:\.0+)?$", "应为整数"),
    "money": (r"^[+-]?\d+(?:\.\d{1,2})?$", "应为金额（元），最多两位小数，没有收入填0"),
    "area": (r"^[+-]?\d+(?:\.\d{1,2})?$", "应为面积数字，最多两位小数"),
    "number": (r"^[+-]?\d+(?:\.\d+)?$", "应为数字"),
}


@dataclass(frozen=True)
class RowError:
    sheet: str
    cell: str
    field: str
    value: object  # masked
    message: str

    def as_json(self) -> dict[str, object]:
        return {
            "sheet": self.sheet,
            "cell": self.cell,
            "field": self.field,
            "value": self.value,
            "message": self.message,
        }


@dataclass
class Checked:
    form: FormSpec
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # by sheet id: accepted rows, typed
    errors: list[RowError] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # non-empty rows read per sheet

    @property
    def accepted_rows(self) -> int:
        return sum(t.height for t in self.tables.values())


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _clean(expr: pl.Expr, field: FieldSpec) -> pl.Expr:
    """Half-width digits and letters, no stray spaces; an empty cell is null."""
    expr = expr.str.replace_many(FULLWIDTH, HALFWIDTH).str.strip_chars()
    if field.type in ("id_number", "phone", "account", "name", "integer", "money", "area", "number"):
        expr = expr.str.replace_all(r"\s+", "")
    if field.type in ("integer", "money", "area", "number"):
        expr = expr.str.replace_many(*NUMERIC_PUNCT)
    if field.type == "id_number":
        expr = expr.str.to_uppercase()
    return pl.when(expr == "").then(None).otherwise(expr)


def _date(text: pl.Expr) -> pl.Expr:
    def from_parts(pattern: str) -> pl.Expr:
        parts = text.str.extract_groups(pattern)
        joined = pl.concat_str(
            [
                parts.struct.field("1"),
                parts.struct.field("2").str.zfill(2),
                parts.struct.field("3").str.zfill(2),
            ],
            separator="-",
        )
        return joined.str.to_date("%Y-%m-%d", strict=False)

    serial = (
        pl.when(text.str.contains(SERIAL))
        .then(EXCEL_EPOCH + pl.duration(days=text.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)))
        .otherwise(None)
    )
    return pl.coalesce(from_parts(DATE_TEXT), from_parts(DATE_COMPACT), serial.cast(pl.Date))


def _month(text: pl.Expr) -> pl.Expr:
    parts = text.str.extract_groups(MONTH_TEXT)
    month_only = pl.concat_str(
        [parts.struct.field("1"), parts.struct.field("2").str.zfill(2), pl.lit("01")], separator="-"
    ).str.to_date("%Y-%m-%d", strict=False)
    return pl.coalesce(month_only, _date(text).dt.truncate("1mo"))


def _option_map(field: FieldSpec) -> dict[str, str]:
    """Every way a clerk may write an option → the value stored."""
    mapping: dict[str, str] = {}
    for number, option in enumerate(field.choices, start=1):
        stored = str(number) if field.option_codes else option
        variants = {option, f"{number} {option}", f"{number}{option}", f"({number}){option}", f"（{number}）{option}"}
        if field.option_codes:
            variants.add(str(number))
        for variant in variants:
            mapping[variant] = stored
    return mapping


def _typed(field: FieldSpec, text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, error message or null) for a non-null cleaned text."""
    kind = field.type
    if kind in PATTERNS:
        pattern, message = PATTERNS[kind]
        ok = text.str.contains(pattern)
        if kind == "integer":
            value = text.str.extract(r"^([+-]?\d+)", 1).cast(pl.Int64, strict=False)
        elif kind in ("money", "area", "number"):
            value = text.cast(pl.Float64, strict=False)
        else:
            value = text
        return value, pl.when(ok).then(None).otherwise(pl.lit(message))
    if kind == "date":
        value = _date(text)
        message = pl.lit("日期无法识别或不存在，请写成 2020-10-01 这样的日期")
        return value, pl.when(value.is_null()).then(message).otherwise(None)
    if kind == "month":
        value = _month(text)
        return value, pl.when(value.is_null()).then(pl.lit("年月无法识别，请写成 2020-09 这样的年月")).otherwise(None)
    if kind == "yes_no":
        ok = text.is_in(list(YES_NO))
        return text, pl.when(ok).then(None).otherwise(pl.lit("只能填“是”或“否”"))
    if kind == "single":
        mapping = _option_map(field)
        value = text.replace_strict(mapping, default=None, return_dtype=pl.String)
        message = "不是表上的选项；可选：" + "、".join(field.dropdown)
        return value, pl.when(value.is_null()).then(pl.lit(message)).otherwise(None)
    if kind == "multiple":
        mapping = _option_map(field)
        # An option that itself contains a separator ("其他（森林草原火灾、海洋灾害等）") is kept whole.
        whole = [option for option in field.choices if any(sep in option for sep in "、,，;；/ ")]
        tokens = [f"\x00{i}\x00" for i in range(len(whole))]
        mapping.update(zip(tokens, [mapping[option] for option in whole], strict=True))
        protected = text.str.replace_many(whole, tokens) if whole else text
        parts = protected.str.replace_all(MULTI_SEPARATORS, "、").str.strip_chars("、").str.split("、")
        value = parts.list.eval(pl.element().replace_strict(mapping, default=None, return_dtype=pl.String))
        unknown = value.list.eval(pl.element().is_null()).list.any()
        listed = "、".join(field.dropdown)
        message = pl.when(unknown).then(pl.lit(f"含有表上没有的选项；可选：{listed}，多项用“、”分隔"))
        if field.max_choices:
            message = message.when(value.list.len() > field.max_choices).then(pl.lit(f"最多选{field.max_choices}项"))
        message = message.when(value.list.n_unique() < value.list.len()).then(pl.lit("同一选项填了两次"))
        return value, message.otherwise(None)
    limit = MAX_NAME if kind == "name" else MAX_TEXT
    too_long = text.str.len_chars() > limit
    return text, pl.when(too_long).then(pl.lit(f"内容过长（超过{limit}个字）")).otherwise(None)


def _check_sheet(
    form: FormSpec, sheet: SheetSpec, frame: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, FieldSpec]]:
    """(typed values with _row, errors long: _row, key, message, raw) for one sheet."""
    fields = form.fields_of(sheet.id)
    by_header = {_header_key(f.header): f for f in fields}
    columns = {by_header[_header_key(c)].key: c for c in frame.columns if _header_key(c) in by_header}
    frame = frame.select([pl.col(columns[f.key]).cast(pl.String).alias(f.key) for f in fields])
    frame = frame.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))
    cleaned = frame.with_columns([_clean(pl.col(f.key), f).alias(f.key) for f in fields])
    keys = [f.key for f in fields]
    nonblank = pl.any_horizontal([pl.col(key).is_not_null() for key in keys])
    values, errors = [], []
    for f in fields:
        typed, message = _typed(f, pl.col(f.key))
        values.append(typed.alias(f.key))
        missing = pl.lit("必填项未填写") if f.required else None
        errors.append(pl.when(pl.col(f.key).is_null()).then(missing).otherwise(message).cast(pl.String).alias(f.key))
    # One pass: typed values and per-cell messages side by side; blank rows (left in the sheet) dropped.
    both = (
        cleaned.filter(nonblank)
        .select(pl.col(ROW), *values, pl.struct(errors).alias("_errors"))
        .with_columns(pl.any_horizontal([pl.col("_errors").struct.field(k).is_not_null() for k in keys]).alias("_bad"))
    )
    typed_frame = both.drop("_errors", "_bad")
    bad = both.filter(pl.col("_bad")).select(pl.col(ROW), pl.col("_errors").struct.unnest())
    long = bad.unpivot(index=ROW, variable_name="key", value_name="message").drop_nulls("message")
    raw = frame.join(bad.select(ROW), on=ROW, how="semi").unpivot(index=ROW, variable_name="key", value_name="raw")
    long = long.join(raw, on=[ROW, "key"], how="left")
    return typed_frame, long, {f.key: f for f in fields}


def _duplicates(frame: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """Rows repeating an earlier row's unique key: _row, key, message."""
    if not keys or frame.is_empty():
        return pl.DataFrame(schema={ROW: pl.Int64, "key": pl.String, "message": pl.String})
    first = frame.group_by(list(keys)).agg(pl.col(ROW).min().alias("_first"))
    joined = frame.join(first, on=list(keys), how="left", nulls_equal=False)
    repeated = joined.filter(pl.col(ROW) != pl.col("_first"))
    return repeated.select(
        pl.col(ROW),
        pl.lit(keys[0]).alias("key"),
        pl.format("与本表第{}行重复，同一户（人）只能填一行", pl.col("_first")).alias("message"),
    )


def read_and_check(path: Path, allowed_forms: Iterable[str]) -> Checked:
    """Read the workbook (``Refused`` if it fails as a whole) and check its rows, each sheet checked in
    its own thread as soon as it is read."""
    return check_workbook(read_workbook(path, allowed_forms, hook=_check_sheet))


def check_workbook(workbook: Workbook) -> Checked:
    """Join the per-sheet checks (``read_workbook``'s hook results) and check across sheets; rows with
    any failing cell are left out of ``tables``."""
    form = workbook.form
    result = Checked(form=form)
    typed: dict[str, pl.DataFrame] = {}
    problems: dict[str, pl.DataFrame] = {}
    fields_by_sheet: dict[str, dict[str, FieldSpec]] = {}
    for sheet in form.sheets:
        frame, errors, fields = workbook.results[sheet.id]
        valid = frame.join(errors.select(ROW).unique(), on=ROW, how="anti")
        duplicated = _duplicates(valid, sheet.unique)
        typed[sheet.id] = frame
        problems[sheet.id] = pl.concat([errors, duplicated.with_columns(pl.lit(None, pl.String).alias("raw"))])
        fields_by_sheet[sheet.id] = fields
        result.rows[sheet.id] = frame.height
    key = form.household_key
    home = form.field(key).sheet if key else None
    if key and home:
        bad_home = problems[home].select(ROW).unique()
        all_households = typed[home].select(key, pl.col(ROW).alias("_home_row")).drop_nulls().unique(key, keep="first")
        rejected = all_households.join(bad_home, left_on="_home_row", right_on=ROW, how="semi")
        home_name = form.sheet(home).name
        for sheet in form.sheets:
            if sheet.id == home:
                continue
            bad_key_rows = problems[sheet.id].filter(pl.col("key") == key).select(ROW)
            frame = typed[sheet.id].filter(pl.col(key).is_not_null()).join(bad_key_rows, on=ROW, how="anti")
            frame = frame.join(all_households, on=key, how="left").join(
                rejected.select(key, pl.lit(True).alias("_rejected")), on=key, how="left"
            )
            orphans = frame.filter(pl.col("_home_row").is_null() | pl.col("_rejected").fill_null(False)).select(
                pl.col(ROW),
                pl.lit(key).alias("key"),
                pl.when(pl.col("_home_row").is_null())
                .then(pl.lit(f"「{home_name}」表中没有这一户，请先在「{home_name}」表填写该户"))
                .otherwise(
                    pl.format(
                        f"所属的户（「{home_name}」表第{{}}行）未通过检查，改正该户后本行一并接收", pl.col("_home_row")
                    )
                )
                .alias("message"),
                pl.col(key).alias("raw"),
            )
            problems[sheet.id] = pl.concat([problems[sheet.id], orphans])
    for sheet in form.sheets:
        bad = problems[sheet.id]
        result.tables[sheet.id] = typed[sheet.id].join(bad.select(ROW).unique(), on=ROW, how="anti")
        result.errors.extend(_row_errors(form, sheet, bad, fields_by_sheet[sheet.id]))
    return result


def _row_errors(form: FormSpec, sheet: SheetSpec, bad: pl.DataFrame, fields: dict[str, FieldSpec]) -> list[RowError]:
    order = {key: i for i, key in enumerate(f.key for f in form.fields_of(sheet.id))}
    out = []
    ordered = bad.sort([ROW, pl.col("key").replace_strict(order, return_dtype=pl.Int64)])
    for row, key, message, raw in ordered.iter_rows():
        f = fields[key]
        value = mask_value(f.type, raw)  # masked by the field's type, and any number in another column too:
        # an ID pasted into a 是/否 column, a phone in an address (columns shifted) is still an ID, a phone
        out.append(
            RowError(
                sheet=sheet.name,
                cell=f"{_column_letter(order[key])}{row}",
                field=f.header,
                value=redact(value) if isinstance(value, str) else value,
                message=redact(f"{f.header}：{message}"),
            )
        )
    return out
