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

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from include.forms.spec import YES_NO, FieldSpec, FormSpec, SheetSpec
from include.forms.workbook import SheetData, Workbook, read_workbook
from include.masking import mask_value, redact

ROW = "_row"
KIND = "__kind"  # the suffix of a field's storage-kind column (include/forms/sheetxml.py)

# -- what is accepted: one table ------------------------------------------------------------------
# Mapped before any check: full-width digits, letters and the ideographic space to their ASCII forms, the
# full-width point, minus and plus in numbers; spaces around a value dropped, and inside IDs, phones,
# accounts and numbers. Nothing else is guessed: a comma in a number, a unit after it, a digit of another
# script, a control or invisible character, a bare year in a date, an Excel error value is a row problem
# that names the cell and says what to write.
FULLWIDTH = [chr(c) for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B))] + ["\u3000"]
HALFWIDTH = [chr(ord(c) - 0xFEE0) for c in FULLWIDTH[:-1]] + [" "]
NUMERIC_PUNCT = (["．", "－", "＋"], [".", "-", "+"])
NUMERIC_TYPES = ("integer", "money", "area", "number")
COMPACT_TYPES = ("id_number", "phone", "account", "name", *NUMERIC_TYPES)  # inner spaces dropped
# Characters that show as nothing or change how text around them shows, by Unicode category: controls (Cc),
# format characters (Cf: zero-width spaces and joiners, direction marks and isolates, the soft hyphen, the
# byte-order mark, tag characters), private use (Co), unassigned (Cn), line and paragraph separators (Zl,
# Zp); and the invisible letters and marks: the combining grapheme joiner, Hangul fillers, variation
# selectors, the Mongolian free variation selectors, Khmer inherent vowels, interlinear annotation marks
# and the object replacement character.
INVISIBLE = "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\ufff9-\ufffc"
ODD_CHARS = rf"[\p{{Cf}}\p{{Co}}\p{{Cn}}\p{{Zl}}\p{{Zp}}\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{INVISIBLE}]"
ODD_STRICT = rf"[\p{{Cc}}\p{{Cf}}\p{{Co}}\p{{Cn}}\p{{Zl}}\p{{Zp}}{INVISIBLE}]"
DIGIT_TYPES = ("id_number", "phone", "account", *NUMERIC_TYPES, "date", "month")
OTHER_DIGITS = r"[\d&&[^0-9]]"  # a digit of another script (Arabic-Indic ٣, Devanagari ३ …): Unicode \d, not 0-9
ODD_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})


def odd_character(ch: str, *, free_text: bool = False) -> bool:
    """``ODD_CHARS``/``ODD_STRICT`` for one character, in Python (for naming it): a tab or line break is free
    text's own."""
    if free_text and ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ODD_CATEGORIES or bool(re.fullmatch(f"[{INVISIBLE}]", ch))


EXCEL_ERRORS = (
    "#N/A",
    "#VALUE!",
    "#REF!",
    "#DIV/0!",
    "#NUM!",
    "#NAME?",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
)
UNITS = r"(?:元|万元|亩|平方米|平米|㎡|m2|公里|千米|km|人|口|个月|月|年|岁|天|%|％)$"
DATE_TEXT = (
    r"^([0-9]{4})[-/.年]([0-9]{1,2})[-/.月]([0-9]{1,2})日?(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)?$"
)
DATE_COMPACT = r"^([0-9]{4})([0-9]{2})([0-9]{2})$"
SERIAL = r"^[0-9]{1,7}(?:\.[0-9]+)?$"
MONTH_TEXT = r"^([0-9]{4})[-/.年]([0-9]{1,2})月?$"
EXCEL_EPOCH = pl.date(1899, 12, 30)
EXCEL_EPOCH_1904 = pl.date(1904, 1, 1)
MULTI_SEPARATORS = r"[、,，;；/\s]+"
MAX_TEXT = 200
MAX_NAME = 30
ODD = "\x00odd"  # a message placeholder: the odd character is described in Python, for the failing cells only

PATTERNS = {
    "id_number": (r"^[0-9]{17}[0-9X](?:[0-9]{2})?$", "证件号码应为18位（末位可为X），残疾人证为20位"),
    "phone": (r"^(?:1[0-9]{10}|0[0-9]{2,3}-?[0-9]{7,8}|[0-9]{7,8})$", "电话应为11位手机号或带区号的固定电话"),
    "account": (r"^[0-9]{8,30}$", "银行账号应为8至30位数字"),
    "integer": (r"^[+-]?[0-9]+(?:\.0+)?$", "应为整数"),
    "money": (r"^[+-]?[0-9]+(?:\.[0-9]{1,2})?$", "应为金额（元），最多两位小数，没有收入填0"),
    "area": (r"^[+-]?[0-9]+(?:\.[0-9]{1,2})?$", "应为面积数字，最多两位小数"),
    "number": (r"^[+-]?[0-9]+(?:\.[0-9]+)?$", "应为数字"),
}
# what Excel itself writes in a number cell (1.5E-3, 3E+2): read as the number it is, for numeric fields only
NUMBER_CELL = r"^[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"
# No income, area, size or count on these forms comes near a trillion; past 2**53 a float loses digits
MAX_NUMBER = 1e12


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


WIDE = "[" + "".join(FULLWIDTH) + "".join(NUMERIC_PUNCT[0]) + "]"


@dataclass(frozen=True)
class Present:
    """What a sheet's values hold at all (one pass over them all), so that a mapping or a check none of them
    needs is not run on every cell: full-width forms, spaces, odd characters, Excel error values."""

    wide: bool
    space: bool
    odd: bool
    error: bool

    @classmethod
    def of(cls, frame: pl.DataFrame, keys: list[str]) -> Present:
        """Looked for in all values at once: joined into one text (with "," between, which none of these
        is), so that each pattern is one search, not one per cell."""
        if not keys or not frame.height:
            return cls(False, False, False, False)
        blob = pl.concat([frame[key] for key in keys], rechunk=False).drop_nulls().str.join(",")
        kinds = pl.concat([frame[f"{key}{KIND}"] for key in keys], rechunk=False)

        def has(pattern: str, *, literal: bool = False) -> bool:
            return bool(blob.str.contains(pattern, literal=literal).item())

        odd, space = f"{ODD_STRICT}|{OTHER_DIGITS}", r"\s"  # any Unicode space
        error = has("#", literal=True) or bool((kinds == "e").any())  # every Excel error value has a "#"
        if not has(f"{WIDE}|{space}|{odd}"):  # a clean sheet: one search
            return cls(wide=False, space=False, odd=False, error=error)
        return cls(wide=has(WIDE), space=has(space), odd=has(odd), error=error)


def _clean(expr: pl.Expr, field: FieldSpec, present: Present) -> pl.Expr:
    """The table above, applied: an empty cell is null."""
    if present.wide:
        expr = expr.str.replace_many(FULLWIDTH, HALFWIDTH)
    if present.space or present.wide:  # the ideographic space is mapped to a space
        expr = expr.str.strip_chars()  # any Unicode space
        if field.type in COMPACT_TYPES:  # thin and narrow no-break spaces too: 李平\u2009飞 is 李平飞
            expr = expr.str.replace_all(r"\s+", "")
    if field.type in NUMERIC_TYPES and present.wide:
        expr = expr.str.replace_many(*NUMERIC_PUNCT)
    if field.type == "id_number":
        expr = expr.str.to_uppercase()
    return pl.when(expr == "").then(None).otherwise(expr)


def _date(text: pl.Expr, kind: pl.Expr, epoch: pl.Expr) -> pl.Expr:
    """A date typed as text in an unambiguous form, a date cell (an Excel serial), or an ISO date cell."""

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

    days = text.str.extract(r"^([0-9]+)", 1).cast(pl.Int64, strict=False)
    serial = pl.when((kind == "n") & text.str.contains(SERIAL) & days.is_between(1, 2_958_465))
    typed_text = pl.when(kind == "s")
    iso = pl.when(kind == "d").then(text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False))
    return pl.coalesce(
        typed_text.then(from_parts(DATE_TEXT)),
        typed_text.then(from_parts(DATE_COMPACT)),
        serial.then(epoch + pl.duration(days=days)).cast(pl.Date),
        iso,
    )


def _month(text: pl.Expr, kind: pl.Expr, epoch: pl.Expr) -> pl.Expr:
    parts = text.str.extract_groups(MONTH_TEXT)
    month_only = pl.concat_str(
        [parts.struct.field("1"), parts.struct.field("2").str.zfill(2), pl.lit("01")], separator="-"
    ).str.to_date("%Y-%m-%d", strict=False)
    return pl.coalesce(pl.when(kind == "s").then(month_only), _date(text, kind, epoch).dt.truncate("1mo"))


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


def _number_problem(field: FieldSpec, text: pl.Expr) -> pl.Expr:
    """Why a numeric cell is not a number this form takes, before its pattern: what the clerk typed that a
    guess would have misread (a decimal comma, a unit after the number)."""
    _, message = PATTERNS[field.type]
    unit = text.str.extract(r"([^0-9.+-]+)$", 1)
    return (
        pl.when(text.str.contains(r"[,，]"))
        .then(pl.lit(f"{message}；请只填数字，不要用逗号（小数点用“.”，不加千位分隔符）"))
        .when(text.str.contains(r"^[+-]?[0-9.]+") & text.str.contains(UNITS))
        .then(pl.format(f"{message}；请只填数字，不要带单位“{{}}”", unit))
    )


def _typed(field: FieldSpec, text: pl.Expr, kind: pl.Expr, epoch: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, error message or null) for a non-null cleaned text stored as ``kind``."""
    kind_of = field.type
    if kind_of in PATTERNS:
        pattern, message = PATTERNS[kind_of]
        ok = text.str.contains(pattern)
        if kind_of in NUMERIC_TYPES:
            ok = ok | ((kind == "n") & text.str.contains(NUMBER_CELL))
            problem = _number_problem(field, text)
            number = text.cast(pl.Float64, strict=False)
            too_large = number.is_nan() | (number.abs() > MAX_NUMBER)
            problem = problem.when(ok & (number.is_null() | too_large)).then(pl.lit(f"{message}；数值过大或无法识别"))
            if not field.signed:  # below zero ("-0" is zero)
                problem = problem.when(number < 0).then(pl.lit(f"{message}；不能为负数"))
            if kind_of == "integer":
                problem = problem.when(number.is_not_null() & (number != number.floor())).then(pl.lit(message))
                value = number.cast(pl.Int64, strict=False)
            else:
                value = number
            return value, problem.when(ok).then(None).otherwise(pl.lit(message))
        # an ID, phone or account: the character that does not belong is named in Python (``_explain``)
        return text, pl.when(ok).then(None).otherwise(pl.lit(f"{ODD}{message}"))
    if kind_of == "date":
        value = _date(text, kind, epoch)
        message = pl.lit("日期无法识别或不存在，请写成 2020-10-01 这样的日期")
        bare_year = pl.lit("只填了年份，请写成 2020-10-01 这样完整的日期")
        problem = pl.when(value.is_not_null()).then(None).when(text.str.contains(r"^[0-9]{4}$")).then(bare_year)
        return value, problem.otherwise(message)
    if kind_of == "month":
        value = _month(text, kind, epoch)
        bare_year = pl.lit("只填了年份，请写成 2020-09 这样的年月")
        problem = pl.when(value.is_not_null()).then(None).when(text.str.contains(r"^[0-9]{4}$")).then(bare_year)
        return value, problem.otherwise(pl.lit("年月无法识别，请写成 2020-09 这样的年月"))
    if kind_of == "yes_no":
        ok = text.is_in(list(YES_NO))
        logical = pl.lit("是单元格的逻辑值 TRUE/FALSE，只能填“是”或“否”")
        return text, pl.when(ok).then(None).when(kind == "b").then(logical).otherwise(pl.lit("只能填“是”或“否”"))
    if kind_of == "single":
        mapping = _option_map(field)
        value = text.replace_strict(mapping, default=None, return_dtype=pl.String)
        message = "不是表上的选项；可选：" + "、".join(field.dropdown)
        return value, pl.when(value.is_null()).then(pl.lit(message)).otherwise(None)
    if kind_of == "multiple":
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
    limit = MAX_NAME if kind_of == "name" else MAX_TEXT
    too_long = text.str.len_chars() > limit
    return text, pl.when(too_long).then(pl.lit(f"内容过长（超过{limit}个字）")).otherwise(None)


def _cell_problem(field: FieldSpec, text: pl.Expr, kind: pl.Expr, present: Present) -> pl.Expr:
    """What is wrong with a cell whatever its field's type: an Excel error value, an odd character (a control
    or invisible one anywhere, a digit of another script where a number goes)."""
    odd = ODD_CHARS if field.type == "text" else ODD_STRICT  # a line break is free text's own
    error_value = ((kind == "e") | text.is_in(list(EXCEL_ERRORS))) if present.error else pl.lit(False)
    odd_chars = text.str.contains(odd) if present.odd else pl.lit(False)
    if field.type in DIGIT_TYPES and present.odd:
        odd_chars = odd_chars | text.str.contains(OTHER_DIGITS)
    return (
        pl.when(error_value)
        .then(pl.format("是 Excel 的错误值（{}），不是数据：请填写实际内容（公式出错的请改填数值）", text))
        .when(odd_chars)
        .then(pl.lit(ODD))
    )


def _check_sheet(
    form: FormSpec, read: SheetData
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, FieldSpec], dict[str, str]]:
    """(typed values with _row, errors long: _row, key, message, raw, fields, column letters) for one sheet."""
    fields = form.fields_of(read.sheet.id)
    frame = read.frame
    epoch = EXCEL_EPOCH_1904 if read.date1904 else EXCEL_EPOCH
    keys = [f.key for f in fields]
    present = Present.of(frame, keys)
    cleaned = frame.with_columns([_clean(pl.col(f.key), f, present).alias(f.key) for f in fields])
    nonblank = pl.any_horizontal([pl.col(key).is_not_null() for key in keys])
    values, errors = [], []
    for f in fields:
        text, kind = pl.col(f.key), pl.col(f"{f.key}{KIND}").fill_null("s")
        typed, message = _typed(f, text, kind, epoch)
        values.append(typed.alias(f.key))
        missing = pl.lit("必填项未填写") if f.required else None
        problem = _cell_problem(f, text, kind, present)
        errors.append(
            pl.when(text.is_null()).then(missing).otherwise(problem.otherwise(message)).cast(pl.String).alias(f.key)
        )
    # One pass: typed values and per-cell messages side by side; blank rows (left in the sheet) dropped.
    both = (
        cleaned.filter(nonblank)
        .select(pl.col(ROW), *values, pl.struct(errors).alias("_errors"))
        .with_columns(pl.any_horizontal([pl.col("_errors").struct.field(k).is_not_null() for k in keys]).alias("_bad"))
    )
    typed_frame = both.drop("_errors", "_bad")
    bad = both.filter(pl.col("_bad")).select(pl.col(ROW), pl.col("_errors").struct.unnest())
    long = bad.unpivot(index=ROW, variable_name="key", value_name="message").drop_nulls("message")
    raw = (
        frame.select(ROW, *keys)
        .join(bad.select(ROW), on=ROW, how="semi")
        .unpivot(index=ROW, variable_name="key", value_name="raw")
    )
    long = long.join(raw, on=[ROW, "key"], how="left")
    return typed_frame, long, {f.key: f for f in fields}, read.letters


def _duplicates(frame: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    """Every row whose unique key another row repeats (a household, a person pasted twice): _row, key,
    message naming the other rows. All of them are rejected: which one is right is the clerk's to say."""
    if not keys or frame.is_empty():
        return pl.DataFrame(schema={ROW: pl.Int64, "key": pl.String, "message": pl.String})
    groups = (
        frame.drop_nulls(list(keys))
        .group_by(list(keys))
        .agg(pl.col(ROW).sort().alias("_rows"))
        .filter(pl.col("_rows").list.len() > 1)
    )
    repeated = groups.with_columns(pl.col("_rows").alias("_all")).explode("_rows")
    listed = pl.col("_all").list.eval(pl.element().cast(pl.String)).list.join("、")
    return repeated.select(
        pl.col("_rows").alias(ROW),
        pl.lit(keys[-1]).alias("key"),
        pl.format("第{}行重复填写了同一户（人），请只保留一行，删去其余后重新上传", listed).alias("message"),
    )


# A check of the household rows that needs what the form does not know (the uploading unit's place in the tree,
# include/door/places.py): given the form and its household sheet's typed rows that passed their own checks, the
# rows it rejects as _row, key (the field), message, raw. Their members are rejected with them.
HouseholdCheck = Callable[[FormSpec, pl.DataFrame], pl.DataFrame]


def read_and_check(
    path: Path, allowed_forms: Iterable[str], campaign: str | None = None, households: HouseholdCheck | None = None
) -> Checked:
    """Read the workbook (``WorkbookRefused`` if it fails as a whole, or was written for another ``campaign``) and
    check its rows, each sheet checked in its own thread as soon as it is read."""
    return check_workbook(read_workbook(path, allowed_forms, hook=_check_sheet, campaign=campaign), households)


def check_workbook(workbook: Workbook, households: HouseholdCheck | None = None) -> Checked:
    """Join the per-sheet checks (``read_workbook``'s hook results) and check across sheets; rows with
    any failing cell are left out of ``tables``; ``households`` checks the household rows that passed."""
    form = workbook.form
    result = Checked(form=form)
    typed: dict[str, pl.DataFrame] = {}
    problems: dict[str, pl.DataFrame] = {}
    fields_by_sheet: dict[str, dict[str, FieldSpec]] = {}
    letters_by_sheet: dict[str, dict[str, str]] = {}
    for sheet in form.sheets:
        frame, errors, fields, letters = workbook.results[sheet.id]
        letters_by_sheet[sheet.id] = letters
        valid = frame.join(errors.select(ROW).unique(), on=ROW, how="anti")
        duplicated = _duplicates(valid, sheet.unique)
        typed[sheet.id] = frame
        problems[sheet.id] = pl.concat([errors, duplicated.with_columns(pl.lit(None, pl.String).alias("raw"))])
        fields_by_sheet[sheet.id] = fields
        result.rows[sheet.id] = frame.height
    key = form.household_key
    home = form.field(key).sheet if key else None
    if key and home:
        if households is not None:
            passed = typed[home].join(problems[home].select(ROW).unique(), on=ROW, how="anti")
            outside = households(form, passed)
            schema = problems[home].schema
            problems[home] = pl.concat(
                [problems[home], outside.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])]
            )
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
        result.errors.extend(_row_errors(form, sheet, bad, fields_by_sheet[sheet.id], letters_by_sheet[sheet.id]))
    return result


def _row_errors(
    form: FormSpec, sheet: SheetSpec, bad: pl.DataFrame, fields: dict[str, FieldSpec], letters: dict[str, str]
) -> list[RowError]:
    order = {key: i for i, key in enumerate(f.key for f in form.fields_of(sheet.id))}
    out = []
    ordered = bad.sort([ROW, pl.col("key").replace_strict(order, return_dtype=pl.Int64)])
    for row, key, message, raw in ordered.iter_rows():
        f = fields[key]
        if message.startswith(ODD):
            message = _explain(f, raw, message.removeprefix(ODD))
        out.append(
            RowError(
                sheet=sheet.name,
                cell=f"{letters[key]}{row}",  # the file's own column and row
                field=f.header,
                value=shown_value(f.type, raw),
                message=redact(f"{f.header}：{message}"),
            )
        )
    return out


CHARACTER_NAMES = {
    "'": "撇号（'）",
    "\u2018": "左单引号（‘）",
    "\u2019": "右单引号（’）",
    "`": "反引号（`）",
    "\u00a0": "不换行空格",
    "\u200b": "零宽空格（U+200B）",
    "\u200c": "零宽非连接符（U+200C）",
    "\u200d": "零宽连接符（U+200D）",
    "\u2060": "零宽不换行空格（U+2060）",
    "\ufeff": "字节顺序标记（U+FEFF）",
    "\u00ad": "软连字符（U+00AD）",
    "\t": "制表符",
    "\n": "换行符",
    "\r": "回车符",
}


def describe_character(ch: str) -> str:
    """A character as a clerk can find it: its name where it has one, the digit of another script as such."""
    if ch in CHARACTER_NAMES:
        return CHARACTER_NAMES[ch]
    if ch.isdigit():
        return f"非阿拉伯数字“{ch}”（U+{ord(ch):04X}，请用 0-9）"
    if unicodedata.category(ch) == "Cc":
        return f"不可见的控制字符（U+{ord(ch):04X}）"
    if not ch.isprintable() or odd_character(ch):
        return f"不可见的字符（U+{ord(ch):04X}）"
    return f"“{ch}”"


def _explain(field: FieldSpec, raw: object, message: str) -> str:
    """The first character that does not belong, and where: "第7个字符是撇号（'）"."""
    text = str(raw or "").strip()
    numbered = field.type in ("id_number", "phone", "account")
    message = message or (PATTERNS[field.type][1] if numbered else "")
    allowed = "0123456789" + ("Xx" if field.type == "id_number" else "-" if field.type == "phone" else "")
    for position, ch in enumerate(text, start=1):
        other_digit = ch.isdigit() and not "0" <= ch <= "9" and not "\uff10" <= ch <= "\uff19"
        stray = numbered and ch not in allowed and not "\uff10" <= ch <= "\uff19"
        if odd_character(ch, free_text=field.type == "text") or (field.type in DIGIT_TYPES and other_digit) or stray:
            where = f"第{position}个字符是{describe_character(ch)}"
            if numbered:
                return f"{message}；{where}，号码中只能有数字" + ("（末位可为X）" if field.type == "id_number" else "")
            if other_digit:
                return f"{where}，请改用 0-9 填写"
            return f"{where}，请删除后重新填写（常见于从网页或聊天软件复制的内容）"
    if numbered:
        return f"{message}（现为{len(text)}位）"
    return message


def shown_value(field_type: str, raw: object) -> object:
    """A rejected value as the problem list shows it: enough to find it in the sheet, never a whole number.
    A number (seven digits and more) is masked by its field's type; other text is shown, any personal-length
    number inside it masked; a name is masked always."""
    if raw is None or not isinstance(raw, str):
        return raw
    printable = "".join(ch if ch.isprintable() else "?" for ch in raw)
    if field_type == "name":
        return mask_value("name", printable)
    if field_type in ("id_number", "phone", "account") and sum(ch.isdigit() for ch in printable) >= 7:
        return redact(str(mask_value(field_type, printable)))
    return redact(printable)
