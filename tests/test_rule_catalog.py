"""Each rule with a row that breaks it and one that does not, on 龙驹镇 (seed 001): "今年贫困户识别和退出收入
标准为年人均纯收入4000元", "边缘易致贫户以……家庭年人均可支配收入低于6000元……为标准"; on Shanxi 2017
(seed 002, "3200元扶贫指导线", "贫困发生率降至2%以下") and 稷下街道 2023 (seed 003's monitoring form).

The rows are written into the records store as an upload would leave them; the engine runs the
catalog over them as over any campaign.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from include.calendar.registry import load_campaign
from include.devtools.synth import check_digit
from include.forms import records
from include.rules.catalog import RULES
from include.rules.engine import rule_quote, run_rules

LONGJU = load_campaign("2020-chongqing-longju")
SHANXI = load_campaign("2017-shanxi")
JIXIA = load_campaign("2023-zibo-jixia")
AT = dt.datetime(2020, 11, 25, 2, 0, tzinfo=dt.UTC)


def person(birth: str, male: bool, serial: int = 1) -> str:
    body = f"500101{birth}{serial:02d}{1 if male else 2}"
    return body + check_digit(body)


GOOD_HEAD = person("19700101", True)
GOOD_WIFE = person("19720505", False)
GOOD_CHILD = person("20100301", True)
BAD_HEAD = person("19650101", True, 3)


def member(household: str, number: str, sex: str, relation: str, school: str | None = None, dropout=None) -> dict:
    return {
        "household_id": household,
        "A1": "张三",
        "A2": sex,
        "A4": number,
        "A5": relation,
        "A9": school,
        "A14": dropout,
    }


def household(key: str, wage: float, transfer: float = 0.0, parts: float = 0.0) -> dict:
    row = {"household_id": key, "A28": wage, "A29": transfer, "A30": 0.0, "A31": 0.0, "A32": 0.0}
    row.update({f"A29{s}": 0.0 for s in "abcdef"})
    row["A29a"] = parts
    return row


def store(
    form: str, households: list[dict], members: list[dict], unit: str = "LJ01", calendar=LONGJU, meta=None, **more
) -> None:
    tables = {"households": pl.DataFrame(households).with_columns(pl.lit(unit).alias("unit"))} if households else {}
    if members:
        tables["members"] = pl.DataFrame(
            members, schema_overrides={"A9": pl.String, "A14": pl.String}, infer_schema_length=None
        ).with_columns(pl.lit(unit).alias("unit"))
    for sheet, rows in more.items():
        tables[sheet] = pl.DataFrame(rows).with_columns(pl.lit(unit).alias("unit"))
    records.replace(calendar.id, form, unit, f"test-{len(households)}-{len(members)}", tables, meta or {})


def problems_of(rule: str, calendar=LONGJU, at=AT) -> pl.DataFrame:
    return run_rules(calendar, at, rules=tuple(r for r in RULES if r.id == rule))


def found(rule: str, calendar=LONGJU, at=AT) -> set[tuple[str, str | None]]:
    return {(row["household"], row["person"]) for row in problems_of(rule, calendar, at).iter_rows(named=True)}


def test_id_check_digit_sex_and_birth_date():
    wrong_digit = GOOD_CHILD[:17] + ("0" if GOOD_CHILD[17] != "0" else "1")
    no_such_day = "50010120100230011"
    no_such_day += check_digit(no_such_day)
    store(
        "2020-1",
        [household(GOOD_HEAD, 3000), household(BAD_HEAD, 3000)],
        [
            member(GOOD_HEAD, GOOD_HEAD, "男", "户主"),
            member(GOOD_HEAD, GOOD_WIFE, "女", "配偶"),
            member(BAD_HEAD, BAD_HEAD, "女", "户主"),  # the 17th digit is odd: a man
            member(BAD_HEAD, wrong_digit, "男", "子女"),
            member(BAD_HEAD, no_such_day, "男", "子女"),
        ],
    )
    assert found("id_check_digit") == {(BAD_HEAD, wrong_digit)}
    assert found("sex_matches_id") == {(BAD_HEAD, BAD_HEAD)}
    assert found("id_birth_date") == {(BAD_HEAD, no_such_day)}


def test_one_head_and_one_person_in_one_household():
    store(
        "2020-1",
        [household(GOOD_HEAD, 3000), household(BAD_HEAD, 3000)],
        [
            member(GOOD_HEAD, GOOD_HEAD, "男", "户主"),
            member(GOOD_HEAD, GOOD_WIFE, "女", "配偶"),
            member(BAD_HEAD, BAD_HEAD, "男", "户主"),
            member(BAD_HEAD, GOOD_WIFE, "女", "户主"),  # a second head, and a person of another household
        ],
    )
    assert found("one_head") == {(BAD_HEAD, None)}
    assert found("person_in_one_household") == {(GOOD_HEAD, GOOD_WIFE), (BAD_HEAD, GOOD_WIFE)}


def test_one_head_is_a_rule_of_household_forms_not_of_the_added_members():
    """附件4 lists the members added under a head named in its header (seed 000: "户主姓名、证件号码"): a newborn's
    row has no 户主 beside it and needs none; the household form (附件1) still needs exactly one."""
    newborn = person("20200315", True, 61)
    store("2020-4", [], [{"household_id": GOOD_HEAD, "A4": newborn, "A5": "子女", "increase_reason": "1",
                          "change_month": dt.date(2020, 3, 1)}])  # fmt: skip
    store("2020-1", [household(BAD_HEAD, 1000)], [member(BAD_HEAD, BAD_HEAD, "男", "配偶")])
    assert found("one_head") == {(BAD_HEAD, None)}


def test_a_change_belongs_to_a_household_the_campaign_knows():
    """附件4/5 are filled "针对有家庭成员增加的贫困户，以户为单位": the head named must be a household of the campaign,
    on a household form of any unit or on the year's 工作台账; without a workload the rule is reported not run."""
    from include.rules.engine import run_catalog

    on_form, on_workload, unknown = GOOD_HEAD, BAD_HEAD, person("19720202", True, 71)
    store("2020-1", [household(on_form, 1000)], [member(on_form, on_form, "男", "户主")], unit="LJ02")
    store("2020-4", [], [
        {"household_id": key, "A4": person("20200401", n % 2 == 0, 72 + n), "increase_reason": "1",
         "change_month": dt.date(2020, 4, 1)} for n, key in enumerate((on_form, on_workload, unknown))
    ])  # fmt: skip
    rule = tuple(r for r in RULES if r.id == "change_head_known")
    problems, runs = run_catalog(LONGJU, AT, rules=rule, workload=[on_workload, person("19600101", False, 79)])
    assert {(row["unit"], row["household"]) for row in problems.iter_rows(named=True)} == {("LJ01", unknown)}
    assert problems["severity"][0] == "warning" and "工作台账" in problems["message"][0]
    assert runs[0].state == "ran"
    problems, runs = run_catalog(LONGJU, AT, rules=rule)
    assert problems.is_empty() and runs[0].state == "not_run" and "campaign workload load" in runs[0].reason


def test_transfer_sum():
    store(
        "2020-1",
        [household(GOOD_HEAD, 3000, transfer=800, parts=800), household(BAD_HEAD, 3000, transfer=800, parts=300)],
        [member(GOOD_HEAD, GOOD_HEAD, "男", "户主"), member(BAD_HEAD, BAD_HEAD, "男", "户主")],
    )
    assert found("transfer_sum") == {(BAD_HEAD, None)}


def test_new_poor_household_below_4000_per_person():
    store(
        "2020-1",
        [household(GOOD_HEAD, 7999), household(BAD_HEAD, 8000)],  # two members each: 3999.50 and 4000.00
        [
            member(GOOD_HEAD, GOOD_HEAD, "男", "户主"),
            member(GOOD_HEAD, GOOD_WIFE, "女", "配偶"),
            member(BAD_HEAD, BAD_HEAD, "男", "户主"),
            member(BAD_HEAD, person("19900101", False, 5), "女", "配偶"),
        ],
    )
    assert found("new_poor_below_line") == {(BAD_HEAD, None)}
    problems = run_rules(LONGJU, AT, rules=tuple(r for r in RULES if r.id == "new_poor_below_line"))
    assert "人均纯收入4000.00元（2人），不低于识别标准4000元" in problems["message"][0]


def test_the_household_counts_its_members_as_of_the_status_date():
    """Seed 004: "家庭人口数按截至2019年9月30日时点统计。" A member who left before it (附件5, 减少) or was born after
    it is not counted: on Longju (no status date of its own: the run's time), a member who moved out in 2020-03
    leaves the head alone with 7,000 yuan; on 稷下 (status 2023-09-30 24时) a child born 2023-10-01 is not one of
    the household's three."""
    left = person("19920202", False, 31)
    store(
        "2020-1",
        [household(GOOD_HEAD, 7000), household(BAD_HEAD, 7000)],
        [member(GOOD_HEAD, GOOD_HEAD, "男", "户主"), member(GOOD_HEAD, GOOD_WIFE, "女", "配偶"),
         member(BAD_HEAD, BAD_HEAD, "男", "户主"), member(BAD_HEAD, left, "女", "配偶")],
    )  # fmt: skip
    store("2020-5", [], [{"household_id": BAD_HEAD, "member_id": left, "decrease_reason": "5",
                          "change_month": dt.date(2020, 3, 1)}])  # fmt: skip
    assert found("new_poor_below_line") == {(BAD_HEAD, None)}
    assert "人均纯收入7000.00元（1人）" in problems_of("new_poor_below_line")["message"][0]

    born_after, born_on = person("20231001", True, 32), person("20230930", False, 33)
    net = {"A28": 9000.0, "A29": 0.0, "A30": 0.0, "A31": 0.0, "A32": 0.0, "A35": 0.0, "A36": 0.0}
    rows = [
        {"household_id": GOOD_HEAD, **net, "A33": 9000.0, "A34": 3000.0, "A37": 9000.0, "A38": 3000.0},
        {"household_id": BAD_HEAD, **net, "A33": 9000.0, "A34": 2250.0, "A37": 9000.0, "A38": 2250.0},
    ]
    members = [
        {"household_id": GOOD_HEAD, "A7": key} for key in (GOOD_HEAD, GOOD_WIFE, born_on)
    ] + [{"household_id": BAD_HEAD, "A7": key} for key in (BAD_HEAD, person("19660101", False, 34), GOOD_CHILD,
                                                           born_after)]  # fmt: skip
    store("2023-1", rows, members, unit="JX01", calendar=JIXIA)
    assert found("per_capita_formula", JIXIA) == {(BAD_HEAD, None)}
    assert problems_of("per_capita_formula", JIXIA)["message"][0].startswith(
        "按统计时点的家庭人口3人：A34 应为3000.00元（填2250.00）"
    )


def test_edge_household_below_6000_per_person():
    store(
        "2020-2",
        [household(GOOD_HEAD, 5999.99), household(BAD_HEAD, 6000)],
        [member(GOOD_HEAD, GOOD_HEAD, "男", "户主"), member(BAD_HEAD, BAD_HEAD, "男", "户主")],
    )
    assert found("edge_below_line") == {(BAD_HEAD, None)}
    # Seed 001 measures 可支配收入; the 2020 form gives only 纯收入 items: the rule says which it used, and why.
    rule = next(r for r in RULES if r.id == "edge_below_line")
    assert "纯收入" in rule.title and "可支配收入" in rule.title
    message = problems_of("edge_below_line")["message"][0]
    assert message.startswith("人均纯收入6000.00元（1人，按A28+A29+A30+A31-A32计：表上无可支配收入项），不低于6000元")


def test_child_of_school_age_out_of_school_needs_a_dropout_reason():
    other_child = person("20120301", False, 7)
    store(
        "2020-1",
        [household(GOOD_HEAD, 3000), household(BAD_HEAD, 3000)],
        [
            member(GOOD_HEAD, GOOD_HEAD, "男", "户主"),
            member(GOOD_HEAD, GOOD_CHILD, "男", "子女", school="非在校生", dropout="因病"),
            member(BAD_HEAD, BAD_HEAD, "男", "户主", school="非在校生"),  # an adult: no reason needed
            member(BAD_HEAD, other_child, "女", "子女", school="非在校生"),
        ],
    )
    assert found("dropout_reason") == {(BAD_HEAD, other_child)}


def test_options_are_those_printed_on_the_form():
    store(
        "2020-1",
        [household(GOOD_HEAD, 3000) | {"A23": "国家"}, household(BAD_HEAD, 3000) | {"A23": "省定"}],
        [
            member(GOOD_HEAD, GOOD_HEAD, "男", "户主") | {"A15": "是"},
            member(BAD_HEAD, BAD_HEAD, "男", "户主") | {"A15": "会"},  # 是否会讲普通话: 是 or 否
        ],
    )
    problems = problems_of("option_in_range")
    assert {(row["household"], row["person"], tuple(row["fields"])) for row in problems.iter_rows(named=True)} == {
        (BAD_HEAD, None, ("A23",)),
        (BAD_HEAD, BAD_HEAD, ("A15",)),
    }
    assert "A23 识别标准（单选）填“省定”，不是表上的选项（可选：国家）" in problems["message"].to_list()


def test_option_numbers_and_multiple_choices():
    newborn = person("20200315", True, 9)
    store(
        "2020-4",
        [],
        [
            {"household_id": GOOD_HEAD, "A4": GOOD_HEAD, "increase_reason": "2"},  # (2)婚入
            {"household_id": GOOD_HEAD, "A4": newborn, "increase_reason": "7"},  # six reasons are printed
        ],
    )
    assert found("option_in_range") == {(GOOD_HEAD, newborn)}
    assert "可选：1 新生儿、2 婚入" in problems_of("option_in_range")["message"][0]
    store(
        "2023-1",
        [
            {"household_id": GOOD_HEAD, "A27": ["因病", "因学"]},
            {"household_id": BAD_HEAD, "A27": ["因病", "因懒"]},
        ],
        [],
        unit="JX01",
        calendar=JIXIA,
    )
    assert found("option_in_range", JIXIA) == {(BAD_HEAD, None)}
    assert "其中“因懒”不是表上的选项" in problems_of("option_in_range", JIXIA)["message"][0]


def test_2017_poor_household_below_3200_per_person():
    def row(key: str, wage: float) -> dict:
        return {"household_id": key, "wage_income": wage, "business_income": 200.0, "property_income": 0.0,
                "pension_income": None, "eco_compensation": 100.0}  # fmt: skip

    def one(key: str) -> dict:
        return {"household_id": key, "member_id": key, "member_sex": "男", "relation": "户主", "member_name": "李四"}

    # Seed 002: "家庭人均收入稳定超过国家现行扶贫标准（2017年省级确定的3200元扶贫指导线）": 3,200 does not exceed it.
    store("2017-2", [row(GOOD_HEAD, 2900), row(BAD_HEAD, 2900.01)], [one(GOOD_HEAD), one(BAD_HEAD)], "140100", SHANXI)
    assert found("poor_household_below_line_2017", SHANXI) == {(BAD_HEAD, None)}
    assert (
        "家庭人均收入3200.01元（1人），已超过扶贫指导线3200元"
        in problems_of("poor_household_below_line_2017", SHANXI)["message"][0]
    )


def test_village_exit_needs_incidence_below_2_percent():
    villages = [
        {"admin_village": "东村", "village_name": "东一", "population_total": 600, "poor_population": 6},
        {"admin_village": "东村", "village_name": "东二", "population_total": 400, "poor_population": 13},  # 1.9 %
        {"admin_village": "西村", "village_name": "西一", "population_total": 500, "poor_population": 10},  # 2.0 %
    ]
    store("2017-3", [], [], "140100", SHANXI, villages=villages)
    assert found("village_exit_incidence", SHANXI) == {("西村", None)}
    assert (
        "行政村贫困发生率2.00%（贫困人口10人／总人口500人，1个自然村合计），不低于2%"
        in problems_of("village_exit_incidence", SHANXI)["message"][0]
    )


def test_risk_elimination_has_its_date_in_the_year_and_not_after_it_was_entered():
    """Seed 003 asks that risks found eliminated in the Nov–Dec 排查 be marked then ("致贫返贫风险消除且不存在“三保障”和
    饮水安全问题的，及时标注“风险消除”。"): an A54 after 09-30 is right; one outside 2023, or after the upload that
    entered it (2023-11-20 10:00), is not; A53 and A54 come together."""
    dates = {
        GOOD_HEAD: dt.date(2023, 1, 1),
        GOOD_WIFE: dt.date(2023, 11, 20),  # the day of the upload
        GOOD_CHILD: dt.date(2023, 10, 8),  # after 9月30日24时, found in the 排查
        BAD_HEAD: dt.date(2022, 12, 31),
        person("19810101", True, 41): dt.date(2023, 11, 21),
    }
    rows = [{"household_id": key, "A53": "帮扶消除", "A54": when} for key, when in dates.items()]
    rows += [
        {"household_id": person("19820101", True, 42), "A53": None, "A54": None},
        {"household_id": person("19830101", True, 43), "A53": "自然消除", "A54": None},
        {"household_id": person("19840101", True, 44), "A53": None, "A54": dt.date(2023, 6, 1)},
    ]
    store("2023-1", rows, [], unit="JX01", calendar=JIXIA, meta={"at": "2023-11-20T10:00:00+08:00"})
    messages = dict(problems_of("risk_elimination_date", JIXIA).select("household", "message").iter_rows())
    assert messages == {
        BAD_HEAD: "A54 风险消除时间2022-12-31不在本年度（2023年）内",
        person("19810101", True, 41): "A54 风险消除时间2023-11-21晚于录入时间2023-11-20 10:00",
        person("19830101", True, 43): "A53 风险消除方式填“自然消除”，A54 风险消除时间未填",
        person("19840101", True, 44): "A54 风险消除时间填2023-06-01，A53 风险消除方式未填（风险未消除的留空）",
    }


def test_a26_is_generated_from_the_members_a17():
    """Seed 003's form: "A26 是否有家庭成员未参加城乡居民（职工）基本医疗保险（A17 指标生成）"; its rule: "致贫返贫风险消除且
    不存在“三保障”和饮水安全问题的，及时标注“风险消除”。" A risk marked eliminated with a member out of the basic medical
    insurance is found whatever A26 says; an A26 against its members' A17 is found on its own."""
    insured, uninsured, no_rows = (
        person("19850101", True, 51),
        person("19860101", True, 52),
        person("19870101", True, 53),
    )
    basic = {"A23": "否", "A24": "否", "A25": "否", "A53": "帮扶消除", "A54": dt.date(2023, 6, 30)}
    rows = [
        {"household_id": insured, **basic, "A26": "是"},  # A26 wrong; every member insured: the risk may be eliminated
        {"household_id": uninsured, **basic, "A26": "否"},  # A26 wrong; a member uninsured: the risk may not
        {"household_id": GOOD_HEAD, **basic, "A26": None},  # A26 left to the system (可不填); all insured
        {"household_id": no_rows, **basic, "A26": "是"},  # no member rows: A26 as entered
    ]
    members = [
        {"household_id": insured, "A7": insured, "A17": "是"},
        {"household_id": insured, "A7": person("19880101", False, 54), "A17": "是"},
        {"household_id": uninsured, "A7": uninsured, "A17": "是"},
        {"household_id": uninsured, "A7": person("19890101", False, 55), "A17": "否"},
        {"household_id": GOOD_HEAD, "A7": GOOD_HEAD, "A17": "是"},
    ]
    store("2023-1", rows, members, unit="JX01", calendar=JIXIA)
    assert found("a26_from_a17", JIXIA) == {(insured, None), (uninsured, None)}
    messages = dict(problems_of("a26_from_a17", JIXIA).select("household", "message").iter_rows())
    assert messages[uninsured] == "A26 填“否”，按家庭成员的A17应为“是”（1人未参加基本医疗保险）"
    risk = dict(
        problems_of("risk_eliminated_with_basic_needs_unresolved", JIXIA).select("household", "message").iter_rows()
    )
    assert set(risk) == {uninsured, no_rows}
    assert (
        risk[uninsured]
        == "A53 风险消除方式填“帮扶消除”，但A26 有家庭成员未参加基本医疗保险（按A17，1人），风险不能标注消除"
    )


def with_county_income(calendar, value: float = 20000):
    """稷下街道's calendar with 临淄区's 县农民人均可支配收入 entered, as the office would (test figure, not a real one)."""
    from include.calendar.model import CountyFigure

    figures = calendar.county_figures["rural_income_yuan"]
    entered = figures.model_copy(update={"counties": {"临淄区": CountyFigure(value=value, source="测试用数值")}})
    return calendar.model_copy(update={"county_figures": {"rural_income_yuan": entered}})


def test_not_enjoying_policy_all_eight_criteria_and_four_exceptions():
    """Seed 003 附件2: "脱贫享受政策人口存在以下情形之一的，原则上认定为脱贫不再享受政策人口：1. 户年人均可支配收入达到所在县
    （市、区）、农民人均可支配收入水平的；…" and "存在以上情形，但符合以下条件之一的，原则上仍按脱贫享受政策人口管理：1. 户内家庭
    成员正在享受低保政策的；2. 户内家庭成员患大病，且经各项医疗保障政策报销后个人自付费用支出较大的；3. 户内家庭成员有重度残疾人
    的；4. 因灾因意外等造成家庭生活困难的。" Criterion 1 at its boundary ("达到": 20,000 reaches 20,000, 19,999.99 does not);
    each of 2–8 from the added sheet; each exception, and 大病 or 残疾 alone (not 自付较大, not 重度) is no exception."""
    county = with_county_income(JIXIA)
    keys = {name: person(f"19{60 + n:02d}0101", True, 60 + n) for n, name in enumerate((
        "reaches", "below", "not_poor", "dibao", "ill_paying", "ill_only", "severe", "disabled_only", "disaster",
        "elsewhere", "accident", *(f"c{n}" for n in range(2, 9)),
    ))}  # fmt: skip

    def row(name, a34=10000.0, county_name="临淄区", a4="是"):
        return {"household_id": keys[name], "A4": a4, "A34": a34, "address_county": county_name}

    rows = [
        row("reaches", 20000.0), row("below", 19999.99), row("not_poor", 25000.0, a4="否"),
        row("dibao", 25000.0), row("ill_paying", 25000.0), row("ill_only", 25000.0), row("severe", 25000.0),
        row("disabled_only", 25000.0), row("disaster", 25000.0), row("elsewhere", 25000.0, "桓台县"),
        row("accident", 25000.0) | {"A27": ["因意外事故"]},  # the form's own risk type: 因灾因意外 (exception 4)
        *(row(f"c{n}") for n in range(2, 9)),
    ]  # fmt: skip
    health = {"ill_paying": "患有大病", "ill_only": "患有大病", "severe": "残疾", "disabled_only": "残疾"}
    members = [
        {"household_id": key, "A7": key, "A20": "是" if name == "dibao" else "否", "A13": health.get(name, "健康")}
        for name, key in keys.items()
    ]
    blank = {f"c{n}": "否" for n in range(2, 9)} | {f"e{n}": "否" for n in range(2, 5)}
    sheet = [{"household_id": key, **blank} for key in keys.values()]
    answers = {"ill_paying": "e2", "ill_only": None, "severe": "e3", "disabled_only": None, "disaster": "e4"}
    for item in sheet:
        name = next(name for name, key in keys.items() if key == item["household_id"])
        if name in ("ill_only", "disabled_only"):  # the sheet's 是 where A13 shows no 大病 / 残疾 of that household
            item["e2" if name == "disabled_only" else "e3"] = "是"
        elif answers.get(name):
            item[answers[name]] = "是"
        elif name.startswith("c"):
            item[name] = "是"
    store("2023-1", rows, members, unit="JX01", calendar=JIXIA, policy=sheet)

    assert found("not_enjoying_policy_income", JIXIA) == set()  # no county figure in the shipped calendar
    flagged = {key: message for key, message in
               problems_of("not_enjoying_policy_income", county).select("household", "message").iter_rows()}  # fmt: skip
    want = {"reaches", "ill_only", "disabled_only", "elsewhere", *(f"c{n}" for n in range(2, 9))}
    assert {name for name, key in keys.items() if key in flagged} - {"elsewhere"} == want - {"elsewhere"}
    assert keys["elsewhere"] not in flagged  # 桓台县 has no figure: its households are not compared by income
    assert "第1条（家庭人均纯收入20000.00元，达到临淄区农民人均可支配收入20000元）" in flagged[keys["reaches"]]
    assert "第3条（拥有并经常使用高档乘用车辆）" in flagged[keys["c3"]]
    assert flagged[keys["c8"]].endswith("请核实，符合的按“民主评议—乡镇审核—村级公示”的程序认定为脱贫不再享受政策人口")

    from include.rules.engine import run_catalog

    _, runs = run_catalog(county, AT)
    run = next(item for item in runs if item.rule == "not_enjoying_policy_income")
    assert (run.state, run.word) == ("ran", "部分运行")
    assert run.reason == "桓台县未给出县（市、区）农民人均可支配收入，这些县的户未按收入一条核对"


def test_changes_of_last_october_to_december_belong_to_september():
    born_november = person("20191105", False, 12)
    married_in = person("19950101", False, 13)
    moved_out = person("19600101", True, 14)
    store(
        "2020-4",
        [],
        [
            {"household_id": GOOD_HEAD, "A4": married_in, "increase_reason": "2", "change_month": dt.date(2019, 11, 1)},
            {
                "household_id": GOOD_HEAD,
                "A4": born_november,
                "increase_reason": "1",
                "change_month": dt.date(2019, 11, 1),
            },
            {"household_id": BAD_HEAD, "A4": GOOD_WIFE, "increase_reason": "2", "change_month": dt.date(2019, 9, 1)},
            {"household_id": BAD_HEAD, "A4": BAD_HEAD, "increase_reason": "3", "change_month": dt.date(2020, 1, 1)},
        ],
    )
    store("2020-5", [], [{"household_id": BAD_HEAD, "member_id": moved_out, "decrease_reason": "5",
                          "change_month": dt.date(2019, 12, 1)}])  # fmt: skip
    assert found("change_month_prior_q4") == {(GOOD_HEAD, married_in), (BAD_HEAD, moved_out)}
    problems = problems_of("change_month_prior_q4")
    assert set(problems["severity"]) == {"warning"}  # seed 004 re-dated last year's: maybe the same change again
    assert (
        "变更月份填2019-11：上年10月至12月的自然变更已统一调整至2019年9月，可能与上年度已调整至9月的变更重复，请核实"
        in problems["message"].to_list()
    )


def test_a_newborn_of_last_october_to_december_in_its_birth_month_is_right():
    """Seed 004: "我们对新生儿的身份证号进行分析，发现有一部分生日为2019年10月至12月，这部分人群不做调整。"
    No rule finds anything in a newborn born 2019-10-01 or 2019-12-31 entered in its birth month; one entered in
    the September the others were moved to is in the wrong month, and out of Longju's period (2019-10 on)."""
    first, last, moved = person("20191001", True, 21), person("20191231", False, 22), person("20191115", True, 23)
    store(
        "2020-4",
        [],
        [
            {"household_id": GOOD_HEAD, "A4": first, "increase_reason": "1", "change_month": dt.date(2019, 10, 1)},
            {"household_id": GOOD_HEAD, "A4": last, "increase_reason": "1", "change_month": dt.date(2019, 12, 1)},
            {"household_id": BAD_HEAD, "A4": moved, "increase_reason": "1", "change_month": dt.date(2019, 9, 1)},
        ],
    )
    changes = ("change_month_prior_q4", "newborn_birth_month", "change_month_in_period")
    problems = run_rules(LONGJU, AT, rules=tuple(r for r in RULES if r.id in changes))
    assert {(row["rule"], row["person"]) for row in problems.iter_rows(named=True)} == {
        ("newborn_birth_month", moved),
        ("change_month_in_period", moved),
    }


def test_change_month_within_the_campaigns_own_income_period():
    """Longju's period, from its calendar: 2019-10-01 to 2020-09-30 (seed 004: "贫困户和监测户的收入计算周期，以识别
    月份的上一年作为始点，以识别月份的上月作为终点。"). September 2019 is before it; October 2019 is in it."""
    rows = [(GOOD_HEAD, dt.date(2019, 10, 1)), (GOOD_WIFE, dt.date(2020, 9, 1)), (BAD_HEAD, dt.date(2020, 10, 1))]
    rows += [(GOOD_CHILD, dt.date(2019, 9, 1))]
    store("2020-5", [], [{"household_id": GOOD_HEAD, "member_id": who, "decrease_reason": "1", "change_month": when}
                         for who, when in rows])  # fmt: skip
    assert found("change_month_in_period") == {(GOOD_HEAD, BAD_HEAD), (GOOD_HEAD, GOOD_CHILD)}
    messages = problems_of("change_month_in_period")["message"].to_list()
    assert "变更月份填2020-10，不在本年度计算周期（2019年10月1日至2020年9月30日）内" in messages
    assert "变更月份填2019-09，不在本年度计算周期（2019年10月1日至2020年9月30日）内" in messages
    # The rule quotes the campaign's own seed for its period, not 2023's for the 2020 forms.
    rule = next(r for r in RULES if r.id == "change_month_in_period")
    assert rule_quote(rule, LONGJU) == ("004_371bf13e07ef619c.txt", LONGJU.income_period.quote)
    assert rule_quote(rule, JIXIA)[1].startswith("帮扶对象家庭收入、务工时长、成员自然变化等计算周期为2022年10月1日")


def test_a_newborns_change_month_is_the_birth_month():
    march, may = person("20200315", True, 15), person("20200520", False, 16)
    store(
        "2020-4",
        [],
        [
            {"household_id": GOOD_HEAD, "A4": march, "increase_reason": "1", "change_month": dt.date(2020, 3, 1)},
            {"household_id": BAD_HEAD, "A4": may, "increase_reason": "1", "change_month": dt.date(2020, 7, 1)},
            {"household_id": BAD_HEAD, "A4": GOOD_WIFE, "increase_reason": "2", "change_month": dt.date(2020, 7, 1)},
        ],
    )
    assert found("newborn_birth_month") == {(BAD_HEAD, may)}
    assert "出生于2020-05，变更月份填2020-07" in problems_of("newborn_birth_month")["message"][0]


def test_monitoring_scale_in_persons_per_county_over_the_whole_campaign():
    """Seed 004: "以县为单位，……监测对象规模，一般为建档立卡贫困人口 5% 左右，深度贫困地区原则上不超过 10%。" Persons, not
    households; the county over every unit (万州区 is spread over two villages, 2 % each, 5 % together); "左右" a
    band (2.5 %–7.5 % in Longju's calendar), above 10 % an error only in a deep-poverty county."""
    registry = {  # county: (registered households, registered persons, deep poverty)
        "万州区": (400, 1000, "否"), "开州区": (400, 1000, "否"), "忠县": (400, 1000, "否"), "云阳县": (400, 1000, "否"),
        "城口县": (40, 100, "是"), "巫溪县": (40, 100, "是"), "奉节县": (40, 100, "否"),
    }  # fmt: skip
    store("registry", [], [], "CQ", counties=[
        {"county": county, "registered_households": households, "registered_population": persons, "deep_poverty": deep}
        for county, (households, persons, deep) in registry.items()
    ])  # fmt: skip
    objects = {  # unit: county → persons in 2020-2, in households of two (one of one for an odd count)
        "LJ01": {"万州区": 20, "开州区": 75, "忠县": 76, "云阳县": 24, "城口县": 9, "巫溪县": 11, "奉节县": 11},
        "LJ02": {"万州区": 20},
    }
    for unit, counties in objects.items():
        households, members = [], []
        for county, persons in counties.items():
            for n in range(0, persons, 2):
                key = f"{unit}{county}{n}"
                households.append({"household_id": key, "address_county": county})
                members += [{"household_id": key, "A4": f"{key}-{i}"} for i in range(min(2, persons - n))]
        store("2020-2", households, members, unit=unit)
    # 4 unstable households of 万州区 (附件3 has no member rows): 2.5 persons each, its registered average
    store("2020-3", [{"household_id": f"u{i}", "address_county": "万州区", "risk_1": "因学"} for i in range(4)], [],
          unit="LJ02")  # fmt: skip
    warnings = dict(problems_of("monitoring_scale").select("household", "message").iter_rows())
    assert set(warnings) == {"忠县", "云阳县", "奉节县"}
    assert warnings["忠县"] == (
        "忠县监测对象76人，占建档立卡贫困人口1000人的7.6%，高于一般规模（5%左右，按2.5%至7.5%），请核实是否应纳尽纳或有误纳"
    )
    assert warnings["云阳县"].startswith("云阳县监测对象24人，占建档立卡贫困人口1000人的2.4%，低于一般规模")
    assert "11.0%，高于一般规模（5%左右，按2.5%至7.5%），且超过10%" in warnings["奉节县"]
    errors = problems_of("monitoring_scale_deep_poverty")
    assert set(errors["severity"]) == {"error"}
    assert dict(errors.select("household", "message").iter_rows()) == {
        "巫溪县": "巫溪县（深度贫困地区）监测对象11人，占建档立卡贫困人口100人的11.0%，原则上不超过10%"
    }
    # 万州区 at 5 %: 40 persons and 4 estimated households; an eighth household takes it to 6 %, still in the band
    # and said with its estimate once it is asked about: move the band's top below it.
    narrow = LONGJU.thresholds["monitoring_scale_high"].model_copy(update={"value": 0.049})
    calendar = LONGJU.model_copy(update={"thresholds": {**LONGJU.thresholds, "monitoring_scale_high": narrow}})
    wanzhou = {(row["unit"], row["message"]) for row in problems_of("monitoring_scale", calendar).iter_rows(named=True)
               if row["household"] == "万州区"}  # fmt: skip
    message = (
        "万州区监测对象约50人（其中4户无家庭成员表，按该县户均2.5人估算），占建档立卡贫困人口1000人的5.0%，高于一般规模"
    )
    assert {unit for unit, _ in wanzhou} == {"LJ01", "LJ02"} and all(text.startswith(message) for _, text in wanzhou)


@pytest.mark.parametrize("rule", [r.id for r in RULES])
def test_every_rule_has_a_test_here_or_in_the_ground_truth(rule):
    covered_here = {
        "id_check_digit", "id_birth_date", "sex_matches_id", "one_head", "person_in_one_household", "transfer_sum",
        "new_poor_below_line", "edge_below_line", "dropout_reason", "option_in_range", "poor_household_below_line_2017",
        "village_exit_incidence", "risk_elimination_date", "not_enjoying_policy_income", "change_month_prior_q4",
        "newborn_birth_month", "monitoring_scale", "monitoring_scale_deep_poverty", "change_month_in_period",
        "change_head_known",
    }  # fmt: skip
    covered_by_synth = {  # tests/test_rules.py: injected defects found, clean data clean (2020-shandong, 2023-zibo-jixia)
        "net_income_formula", "id_region_prefix", "property_sum", "reference_income_formula", "per_capita_formula",
        "risk_eliminated_with_basic_needs_unresolved", "a26_from_a17",
    }  # fmt: skip
    assert rule in covered_here | covered_by_synth
