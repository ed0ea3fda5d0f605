"""Every form spec against the seed document that prints the form.

The seed text and every quoted string are compared without whitespace (the documents break lines and pad
table cells) and with full-width brackets （） read as ().
"""

from __future__ import annotations

import re
from functools import cache

import pytest

from include.forms.spec import FieldSpec, FormSpec, all_forms
from tests.conftest import SEEDS, require_seeds, squash

FORMS = {form_id: form for form_id, form in all_forms().items() if form.printed}
FORM_IDS = {"2017-1", "2017-2", "2017-3", "2020-1", "2020-2", "2020-3", "2020-4", "2020-5", "2023-1"}

# The seed prints a wrong code ("A52a致贫风险2(单选项)" for the second risk): `printed` carries the
# printed code as well and is looked up alone.
PRINTED_WITH_CODE = {("2020-2", "A52b"), ("2020-2", "A52c")}
# Code and label apart in the seed ("A55监测联系人：联系电话："): the label is looked up alone;
# test_2023_monitoring_form checks the whole line.
LABEL_ALONE = {("2023-1", "A55_phone")}
# A second field under one printed code.
KEY_IS_NOT_CODE = {("2023-1", "A55_phone")}

_BRACKETS = str.maketrans({"（": "(", "）": ")"})


def norm(text: str) -> str:
    return squash(text).replace("\u3000", "").translate(_BRACKETS)


@cache
def seed(name: str) -> str:
    require_seeds()
    return norm((SEEDS / name).read_text(encoding="utf-8"))


def form_text(form: FormSpec) -> str:
    """The form's part of its seed: from its title (the name's last occurrence; the name is also listed
    among the attachments; 2017-1's letter has a title of its own, so its part starts at the list) up to
    the next form's title."""
    text = seed(form.seed)
    start = text.rindex(norm(form.name))
    starts = [text.rindex(norm(other.name)) for other in FORMS.values() if other.seed == form.seed]
    end = min((s for s in starts if s > start), default=len(text))
    return text[start:end]


def needle(form: FormSpec, field: FieldSpec) -> str:
    """What the seed prints for the field."""
    if (form.id, field.key) in PRINTED_WITH_CODE:
        assert field.printed, field.key
        return norm(field.printed)
    if (form.id, field.key) in LABEL_ALONE:
        return norm(field.printed or field.label)
    return norm((field.code or "") + (field.printed or field.label))


forms = pytest.mark.parametrize("form", list(FORMS.values()), ids=list(FORMS))


def test_the_forms_of_the_seeds():
    assert set(FORMS) == FORM_IDS


def test_a_table_no_seed_prints_quotes_the_sentence_that_needs_it():
    unprinted = [form for form in all_forms().values() if not form.printed]
    assert [form.id for form in unprinted] == ["registry"]
    for form in unprinted:
        assert form.basis and norm(form.basis) in seed(form.seed), form.id


@forms
def test_name_is_in_the_seed(form):
    assert norm(form.name) in seed(form.seed)


@forms
def test_every_printed_field_is_in_the_form(form):
    text = form_text(form)
    missing = [
        f"{field.key}: {needle(form, field)}"
        for field in form.fields
        if not field.bulk and not field.basis and needle(form, field) not in text
    ]
    assert not missing, f"表 {form.id} 的种子里找不到：{missing}"


def test_columns_the_project_adds_quote_the_criterion_they_ask():
    """Seed 003's 附件2 (脱贫不享受政策人口认定标准) is no form: the 2023 form's added sheet asks its criteria 2–8 and
    exceptions 2–4, a column each, its label the criterion's own words and marked as added."""
    form = FORMS["2023-1"]
    added = [field for field in form.fields if field.basis]
    assert {field.sheet for field in added} == {"policy"} and "本系统增设" in form.sheet("policy").name
    assert [field.label.split(" ")[0] for field in added] == [f"情形{n}" for n in range(2, 9)] + [
        f"例外{n}" for n in range(2, 5)
    ]
    for field in added:
        assert norm(field.basis) in seed(form.seed) and field.label.endswith(field.basis), field.key


@forms
def test_options_are_printed_in_order_after_the_label(form):
    text = form_text(form)
    for field in form.fields:
        if field.type not in ("single", "multiple") or field.bulk:
            continue
        position = text.index(needle(form, field)) + len(needle(form, field))
        for option in field.options:
            found = text.find(norm(option), position)
            assert found >= 0, f"表 {form.id} {field.key}: 选项“{option}”不在标签之后（或次序不对）"
            position = found + len(norm(option))


@forms
def test_added_options_quote_their_source(form):
    for field in form.fields:
        added = field.added_options
        if added is None:
            continue
        assert norm(added.quote) in seed(added.source), f"{field.key}: 引文不在 {added.source}"
        for value in added.values:
            assert value in added.quote, f"{field.key}: “{value}”不在引文里"
            assert value not in field.options, f"{field.key}: “{value}”已是印好的选项"


@forms
def test_keys_are_the_printed_codes(form):
    for field in form.fields:
        if field.code and (form.id, field.key) not in KEY_IS_NOT_CODE:
            assert field.key == field.code


@forms
def test_household_key_leads_every_sheet(form):
    if form.household_key is None:
        return
    key_field = form.field(form.household_key)
    assert key_field.type == "id_number"
    assert key_field.required
    for sheet in form.sheets:
        assert form.fields_of(sheet.id)[0].key == form.household_key


def test_2023_codes_a1_to_a55():
    numbers = set()
    for field in FORMS["2023-1"].fields:
        if field.code:
            match = re.fullmatch(r"A(\d+)[a-z]?", field.code)
            assert match, field.code
            numbers.add(int(match[1]))
    assert numbers == set(range(1, 56))


def test_2020_new_household_pension():
    # "A29d 养老保险金（元）"
    assert FORMS["2020-1"].field("A29d").label == "养老保险金（元）"


def test_2020_edge_household_risks():
    form = FORMS["2020-2"]
    text = form_text(form)
    for n in (1, 2, 3):
        assert f"A52a致贫风险{n}(单选项)" in text
    assert "A52b" not in text and "A52c" not in text
    assert [form.field(k).code for k in ("A52a", "A52b", "A52c")] == ["A52a", "A52b", "A52c"]
    assert form.field("A52a").required and not form.field("A52b").required
    assert form.field("A52a").choices[-1] == "因疫情"
    assert "bank_account" not in {f.key for f in form.fields}


def test_2020_unstable_household_key_is_printed():
    form = FORMS["2020-3"]
    key = form.field(form.household_key)
    assert not key.bulk
    assert key.sheet == "households"
    assert norm("备注：返贫风险包括：因大病、因学、因灾、因残、因突发事件、因产业失败、因就业不稳、其他") in form_text(
        form
    )
    assert form.field("risk_1").required


def test_2020_natural_increase_reasons():
    form = FORMS["2020-4"]
    field = form.field("increase_reason")
    assert field.options == ("新生儿", "婚入", "户籍迁入", "刑满释放", "收养", "失联人口回归")
    assert field.option_codes
    assert field.dropdown[1] == "2 婚入"
    assert norm("填写增加原因后括号内的编号，如婚入填“2”。") in form_text(form)
    assert not form.field(form.household_key).bulk
    assert form.field("change_month").bulk and form.field("change_month").type == "month"
    assert norm("对边缘户家庭成员也要及时标注其自然变化情况，标注到月。") in seed("004_371bf13e07ef619c.txt")


def test_2020_natural_decrease_reasons():
    form = FORMS["2020-5"]
    field = form.field("decrease_reason")
    assert field.options == ("死亡", "婚出", "出国定居", "判刑收监", "户籍迁出", "农转非", "失联", "分散供养转集中供养")
    assert field.option_codes
    assert norm("填写减少原因后括号内的编号，如婚出填“2”。") in form_text(form)
    assert form.field(form.household_key).label == "户主证件号码"


def test_2017_application_is_a_letter():
    form = FORMS["2017-1"]
    assert form.household_key is None
    assert norm("现申请开通全国扶贫开发信息系统业务子系统中“2018年初动态管理”功能模块") in form_text(form)
    assert form.field("report_submitted").type == "yes_no"


def test_2017_poor_household_causes():
    form = FORMS["2017-2"]
    other = form.field("other_causes")
    assert other.type == "multiple" and other.max_choices == 2
    assert "其他致贫原因(最多选两项)" in form_text(form)
    assert len(form.field("main_cause").options) == 11
    assert len(form.field("return_cause").options) == 12
    assert all(field.code is None for field in form.fields)


def test_2017_natural_village():
    form = FORMS["2017-3"]
    assert form.household_key is None
    assert form.sheet("villages").unique == ("admin_village", "village_name")
    generated = {field.key for field in form.fields if field.generated}
    assert generated == {"poor_households", "poor_population"}
    assert form_text(form).count("(由户表生成)") == 2


def test_2023_monitoring_form():
    form = FORMS["2023-1"]
    text = form_text(form)
    assert "A55监测联系人：联系电话：" in text
    assert form.field("A17").label == "是否参加城乡居民（职工）基本医疗保险"
    # A26 names A17 as the basic medical insurance.
    assert "A26是否有家庭成员未参加城乡居民(职工)基本医疗保险(A17指标生成)" in text
    for key in ("A17", "A19", "A20", "A21", "A22"):
        field = form.field(key)
        assert field.printed and norm(field.label).startswith(norm(field.printed)), key
    for key in ("A44", "A50", "A51", "A52"):
        assert form.field(key).type == "yes_no", key
    assert "其他（文字备注）" in form.field("A27").options
    assert {form.field(k).sheet for k in ("A5", "A22")} == {"members"}
    assert all(form.field(f"A{n}").required for n in (3, 28, 29, 30, 31, 32))
    assert all(form.field(f"A{n}").generated for n in (4, 26, 33, 34, 37, 38))
