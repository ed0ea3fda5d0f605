"""Form specs: the collection forms of the seed documents as data.

One YAML file per form in ``include/forms/specs/``. A field keeps the code printed on the paper form
(A1, A4, A29d …) because staff read problem lists by these codes; a field the form prints without a
code gets an English ``key`` and is headed by its label alone.

A bulk workbook has one sheet per kind of row (households, members, helpers …). Every row of every
sheet carries the household's key, the head's ID number as entered (``household`` in problem lists).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

FieldType = Literal[
    "text",  # free text
    "name",  # a person's name (masked outside the unit's own list)
    "id_number",  # 居民身份证(残疾人证)号码: 18 characters, kept as text
    "phone",  # 联系电话: kept as text
    "account",  # 银行账号: kept as text, masked
    "integer",
    "money",  # 元, up to two decimals
    "area",  # 亩 or 平方米, up to two decimals
    "number",  # other measures (公里)
    "date",
    "month",
    "yes_no",  # □是 □否
    "single",  # one of the printed options
    "multiple",  # several of the printed options, separated by 、
]

PERSONAL_TYPES = frozenset({"name", "id_number", "phone", "account"})
TEXT_FORMAT_TYPES = frozenset({"id_number", "phone", "account", "text", "name"})
YES_NO = ("是", "否")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AddedOptions(_Frozen):
    """Options a later document adds to a printed list (e.g. "因疫情", seed 004)."""

    values: tuple[str, ...]
    source: str
    quote: str


class FieldSpec(_Frozen):
    key: str  # unique within the form; the printed code where there is one
    code: str | None = None  # as printed: "A4", "A29d"
    label: str  # the full Chinese label
    printed: str | None = None  # the label as the seed prints it, where the seed truncates or garbles it
    type: FieldType
    options: tuple[str, ...] = ()  # exactly as printed, in order
    added_options: AddedOptions | None = None
    option_codes: bool = False  # the form asks for the option's number: "(2)婚入" is filled in as "2"
    max_choices: int | None = None  # "最多选两项"
    required: bool = False
    sheet: str  # a sheet id of the form
    generated: bool = False  # "系统生成", "由户表生成": may be left empty; the rules check it
    signed: bool = False  # a quantity that may be negative; incomes, areas and sizes may not
    bulk: bool = False  # a column only the bulk workbook needs (the household link): not printed on the form
    # A column the project adds, no form prints: the sentence of the form's seed it asks about, quoted (seed 003's
    # 附件2 criteria on the 2023 form's added sheet).
    basis: str | None = None
    note: str | None = None  # why the spec reads the form this way, with the seed's words

    @property
    def header(self) -> str:
        """The column heading of the bulk template: "A4 居民身份证(残疾人证)号码"."""
        return f"{self.code} {self.label}" if self.code else self.label

    @property
    def personal(self) -> bool:
        return self.type in PERSONAL_TYPES

    @property
    def choices(self) -> tuple[str, ...]:
        """Every accepted option: the printed ones, then any added by a later document."""
        if self.type == "yes_no":
            return YES_NO
        added = self.added_options.values if self.added_options else ()
        return (*self.options, *added)

    @property
    def dropdown(self) -> tuple[str, ...]:
        """What the template's dropdown offers: "2 婚入" where the form asks for numbers."""
        if self.option_codes:
            return tuple(f"{i} {option}" for i, option in enumerate(self.choices, start=1))
        return self.choices

    @model_validator(mode="after")
    def _options_fit_type(self) -> FieldSpec:
        if self.type in ("single", "multiple") and not self.choices:
            raise ValueError(f"{self.key}: 单选或多选字段需要选项")
        if self.type not in ("single", "multiple") and (self.options or self.added_options):
            raise ValueError(f"{self.key}: 只有单选或多选字段可以有选项")
        return self


class SheetSpec(_Frozen):
    id: str  # households, members, helpers …
    name: str  # the sheet's Chinese name in the workbook
    row: str  # what one row is: "一户一行"
    # Field keys that identify a row within one upload (a household listed twice, a member pasted twice in
    # one household). A person listed in two households is not refused here: that is a rule
    # (person_in_one_household) across all units.
    unique: tuple[str, ...] = ()


class FormSpec(_Frozen):
    id: str  # "2020-1"
    version: int  # raised whenever a column changes; old templates are refused
    name: str  # 新识别贫困户信息采集表
    seed: str  # the seed file that prints the form
    attachment: str  # "附件1"
    household_key: str | None = Field(default=None)  # the key field every sheet carries
    sheets: tuple[SheetSpec, ...]
    fields: tuple[FieldSpec, ...]
    notes: tuple[str, ...] = ()
    # False for a table no seed prints (the province's registry figures); ``basis`` quotes the seed sentence
    # that needs it.
    printed: bool = True
    basis: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FormSpec:
        keys = [f.key for f in self.fields]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"表 {self.id}: 字段键重复：{'、'.join(duplicates)}")
        sheet_ids = {s.id for s in self.sheets}
        for f in self.fields:
            if f.sheet not in sheet_ids:
                raise ValueError(f"表 {self.id}: 字段 {f.key} 属于未定义的工作表 {f.sheet}")
        for sheet in self.sheets:
            headers = [f.header for f in self.fields_of(sheet.id)]
            if len(headers) != len(set(headers)):
                raise ValueError(f"表 {self.id}: 工作表 {sheet.id} 的列标题重复")
            for key in sheet.unique:
                if key not in {f.key for f in self.fields_of(sheet.id)}:
                    raise ValueError(f"表 {self.id}: 工作表 {sheet.id} 的唯一键 {key} 不是该表的字段")
        return self

    def fields_of(self, sheet_id: str) -> tuple[FieldSpec, ...]:
        """The sheet's columns in order: the household key first, then the sheet's own fields."""
        own = tuple(f for f in self.fields if f.sheet == sheet_id)
        if self.household_key is None:
            return own
        key_field = self.field(self.household_key)
        if key_field.sheet == sheet_id:
            return (key_field, *(f for f in own if f.key != key_field.key))
        return (key_field.model_copy(update={"sheet": sheet_id}), *own)

    def field(self, key: str) -> FieldSpec:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(key)

    def sheet(self, sheet_id: str) -> SheetSpec:
        for s in self.sheets:
            if s.id == sheet_id:
                return s
        raise KeyError(sheet_id)

    @property
    def title(self) -> str:
        return f"{self.attachment} {self.name}"


@cache
def all_forms() -> dict[str, FormSpec]:
    """Every form spec shipped in include/forms/specs, by id, in id order."""
    specs = resources.files("include.forms").joinpath("specs")
    forms = {}
    for entry in sorted(specs.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            spec = FormSpec.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8")))
            forms[spec.id] = spec
    return dict(sorted(forms.items()))


def get_form(form_id: str) -> FormSpec:
    forms = all_forms()
    if form_id not in forms:
        raise KeyError(form_id)
    return forms[form_id]
