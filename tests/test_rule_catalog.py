"""Each rule with a row that breaks it and one that does not, on 龙驹镇 (seed 001): "今年贫困户识别和退出收入
标准为年人均纯收入4000元", "边缘易致贫户以……家庭年人均可支配收入低于6000元……为标准".

The rows are written into the records store as an upload would leave them; the engine runs the
catalog over them as over any campaign.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from include import records
from include.calendar import read_calendar
from include.paths import calendar_file
from include.rules.catalog import RULES
from include.rules.engine import run_rules
from include.synth import check_digit

LONGJU = read_calendar(calendar_file("2020-chongqing-longju"))
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


def store(form: str, households: list[dict], members: list[dict], unit: str = "LJ01") -> None:
    tables = {"households": pl.DataFrame(households).with_columns(pl.lit(unit).alias("unit"))}
    tables["members"] = pl.DataFrame(members, schema_overrides={"A9": pl.String, "A14": pl.String}).with_columns(
        pl.lit(unit).alias("unit")
    )
    records.replace(LONGJU.id, form, unit, f"test-{len(households)}-{len(members)}", tables, {})


def found(rule: str) -> set[tuple[str, str | None]]:
    problems = run_rules(LONGJU, AT, rules=tuple(r for r in RULES if r.id == rule))
    return {(row["household"], row["person"]) for row in problems.iter_rows(named=True)}


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


def test_edge_household_below_6000_per_person():
    store(
        "2020-2",
        [household(GOOD_HEAD, 5999.99), household(BAD_HEAD, 6000)],
        [member(GOOD_HEAD, GOOD_HEAD, "男", "户主"), member(BAD_HEAD, BAD_HEAD, "男", "户主")],
    )
    assert found("edge_below_line") == {(BAD_HEAD, None)}


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


@pytest.mark.parametrize("rule", [r.id for r in RULES])
def test_every_rule_has_a_test_here_or_in_the_ground_truth(rule):
    covered_here = {
        "id_check_digit", "id_birth_date", "sex_matches_id", "one_head", "person_in_one_household", "transfer_sum",
        "new_poor_below_line", "edge_below_line", "dropout_reason",
    }  # fmt: skip
    covered_by_synth = {"net_income_formula"}  # tests/test_rules.py, 2023-zibo-jixia
    assert rule in covered_here | covered_by_synth
