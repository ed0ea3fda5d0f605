"""`campaign synth`: plausible workbooks whose every injected defect is listed, and nothing else wrong.

The checks here are written independently of the generator (python-stdnum's GB 11643 check digit,
the birth date and sex digits of the ID), so the ground truth the rules issue measures itself
against is itself checked.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import openpyxl
import pytest
from stdnum import numdb
from stdnum.cn import ric

from include.forms.spec import get_form


def _rows(path, sheet_name, form, sheet_id):
    keys = [f.key for f in form.fields_of(sheet_id)]
    ws = openpyxl.load_workbook(path, read_only=True)[sheet_name]
    return [dict(zip(keys, row, strict=False)) for row in ws.iter_rows(min_row=2, values_only=True) if row[0]]


def _birth(number: str) -> dt.date | None:
    try:
        return dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None


def _known_place(number: str) -> bool:
    """GB/T 2260 as python-stdnum's own database has it: the six digits name a county-level unit."""
    return bool(numdb.get("cn/loc").info(number[:6])[-1][1])


def _problems(households, members, form_id):
    """Every (household, person, rule) an honest checker finds in the rows."""
    found = set()
    heads = Counter()
    households_of = {}
    for m in members:
        households_of.setdefault(m["A4"], set()).add(m["household_id"])
    for m in members:
        number, household = m["A4"], m["household_id"]
        if m["A5"] == "户主":
            heads[household] += 1
        if number[17] != ric.calc_check_digit(number):  # python-stdnum takes the whole number
            found.add((household, number, "id_check_digit"))
        elif _birth(number) is None:
            found.add((household, number, "id_birth_date"))
        elif ("男" if int(number[16]) % 2 else "女") != m["A2"]:
            found.add((household, number, "sex_matches_id"))
        elif not _known_place(number):
            found.add((household, number, "id_region_prefix"))
        if len(households_of[number]) > 1:  # seed requirement: one person in one household only
            found.add((household, number, "person_in_one_household"))
    for h in households:
        key = h["household_id"]
        if heads[key] != 1:
            found.add((key, None, "one_head"))
        if form_id == "2020-1":
            parts = sum(float(h[k] or 0) for k in ("A29a", "A29b", "A29c", "A29d", "A29e", "A29f"))
            if abs(float(h["A29"]) - parts) > 0.005:
                found.add((key, None, "transfer_sum"))
            if abs(float(h["A31"]) - float(h["A31a"] or 0) - float(h["A31b"] or 0)) > 0.005:
                found.add((key, None, "property_sum"))
    return found


@pytest.mark.parametrize("campaign", ["2020-shandong"])
def test_every_injected_defect_is_in_the_ground_truth_and_nothing_else(run_cli, tmp_path, campaign):
    out = tmp_path / "synth"
    code, stdout, err = run_cli(
        "synth", "--campaign", campaign, "--households", "300", "--defect-rate", "0.3", "--seed", "5", "--out", out,
        "--units", "370100,370200",
    )  # fmt: skip
    assert code == 0, err
    assert "注入缺陷" in stdout
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    form = get_form(truth["form"])
    assert [f["unit"] for f in truth["files"]] == ["370100", "370200"]
    assert sum(f["households"] for f in truth["files"]) == 300
    expected = set()
    for d in truth["defects"]:
        assert d["fields"], d
        expected.add((d["household"], d["person"], d["rule"]))
    assert 60 <= len(truth["defects"]) <= 120, "about 30 % of 300 households"
    found = set()
    for file in truth["files"]:
        path = out / file["file"]
        households = _rows(path, "户", form, "households")
        members = _rows(path, "家庭成员", form, "members")
        assert len(households) == file["households"] and len(members) == file["members"]
        found |= _problems(households, members, form.id)
        # realistic: IDs under the city's own county codes, sizes 1–6
        assert all(m["A4"][:4] == file["unit"][:4] for m in members if m["A4"])
        assert set(Counter(m["household_id"] for m in members).values()) <= set(range(1, 7))
    assert found == expected


def test_synthetic_ids_are_valid_for_python_stdnum():
    import random

    from include.devtools.synth import make_id

    rng = random.Random(1)
    numbers = [make_id(rng, "370102", dt.date(1980, 1, 1) + dt.timedelta(days=n), n % 2 == 0) for n in range(200)]
    assert all(ric.calc_check_digit(number) == number[17] for number in numbers)  # GB 11643 check character
    assert all(
        ric.get_birth_date(number) == dt.date(1980, 1, 1) + dt.timedelta(days=n) for n, number in enumerate(numbers)
    )
    assert all((int(number[16]) % 2 == 1) == (n % 2 == 0) for n, number in enumerate(numbers))


def test_synth_is_reproducible(run_cli, tmp_path):
    for name in ("a", "b"):
        code, _, err = run_cli(
            "synth", "--campaign", "2023-zibo-jixia", "--households", "30", "--defect-rate", "0.2", "--seed", "9",
            "--out", tmp_path / name, "--units", "JX01",
        )  # fmt: skip
        assert code == 0, err
    a = json.loads((tmp_path / "a" / "ground_truth.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "b" / "ground_truth.json").read_text(encoding="utf-8"))
    assert a["defects"] == b["defects"]
    assert a["form"] == "2023-1"
    rows = _rows(tmp_path / "a" / a["files"][0]["file"], "户", get_form("2023-1"), "households")
    # seed 003's note: A33=A28+A29+A30+A31-A32, A37=A33+A35-A36 (system generated, filled in by synth)
    broken = {d["household"] for d in a["defects"] if d["rule"] == "net_income_formula"}
    reference = {d["household"] for d in a["defects"] if d["rule"] == "reference_income_formula"}
    for row in rows:
        net = sum(float(row[k]) for k in ("A28", "A29", "A30", "A31")) - float(row["A32"])
        assert (abs(float(row["A33"]) - net) > 0.005) == (row["household_id"] in broken)
        assert (
            abs(float(row["A37"]) - (net + float(row["A35"] or 0) - float(row["A36"] or 0))) < 0.005
            or row["household_id"] in broken | reference
        )


def test_synth_refuses_bad_arguments(run_cli, tmp_path):
    code, _, err = run_cli(
        "synth", "--campaign", "2020-shandong", "--households", "10", "--defect-rate", "1.5", "--out", tmp_path
    )
    assert code == 2 and "--defect-rate" in err
    code, _, err = run_cli(
        "synth", "--campaign", "2020-shandong", "--households", "10", "--out", tmp_path, "--units", "999999"
    )
    assert code == 2 and "999999" in err
