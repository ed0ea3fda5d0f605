"""The rule catalog against `campaign synth`'s ground truth (issue 5, work in progress).

Every injected defect must be found by its rule and nothing else reported: recall and precision
100 % per rule, on 2020-shandong (seed 000's 附件1) and 2023-zibo-jixia (seed 003's monitoring form,
"A33=A28+A29+A30+A31-A32").
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from include.calendar import read_calendar
from include.paths import calendar_file
from include.rules.catalog import RULES
from include.rules.engine import run_rules
from include.timeutil import parse_instant

CASES = {
    "2020-shandong": {"units": "370100,370200", "at": "2020-11-20T10:00+08:00", "report": "completion_report"},
    "2023-zibo-jixia": {"units": "JX01,JX02", "at": "2023-12-01T10:00+08:00", "report": None},
}


def load(run_cli, tmp_path, campaign, households, rate, seed):
    case = CASES[campaign]
    out = tmp_path / campaign
    code, _, err = run_cli(
        "synth", "--campaign", campaign, "--households", households, "--defect-rate", rate, "--seed", seed,
        "--out", out, "--units", case["units"],
    )  # fmt: skip
    assert code == 0, err
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    for file in truth["files"]:
        if case["report"]:
            code, _, err = run_cli(
                "report", "submit", "--campaign", campaign, "--unit", file["unit"], "--milestone", case["report"],
                "--at", "2020-11-12T10:00+08:00",
            )  # fmt: skip
            assert code == 0, err
        code, stdout, err = run_cli(
            "ingest", out / file["file"], "--campaign", campaign, "--unit", file["unit"], "--at", case["at"], "--json"
        )
        assert code == 0, stdout + err
        assert json.loads(stdout)["rejected_rows"] == [], "synth defects pass the form checks"
    calendar = read_calendar(calendar_file(campaign))
    return truth, run_rules(calendar, parse_instant(case["at"]))


@pytest.mark.parametrize("campaign", list(CASES))
def test_every_injected_defect_is_found_by_its_rule_and_nothing_else(run_cli, tmp_path, campaign):
    truth, problems = load(run_cli, tmp_path, campaign, "240", "0.4", "21")
    expected = defaultdict(set)
    for d in truth["defects"]:
        expected[d["rule"]].add((d["unit"], d["household"], d["person"]))
    found = defaultdict(set)
    for row in problems.iter_rows(named=True):
        found[row["rule"]].add((row["unit"], row["household"], row["person"]))
    assert expected, "the synthetic data has defects"
    for rule in sorted(set(expected) | set(found)):
        missed = expected[rule] - found[rule]
        extra = found[rule] - expected[rule]
        assert not missed and not extra, (rule, sorted(missed)[:3], sorted(extra)[:3])
    assert all(message for message in problems["message"])


@pytest.mark.parametrize("campaign", list(CASES))
def test_clean_data_has_no_problems(run_cli, tmp_path, campaign):
    _, problems = load(run_cli, tmp_path, campaign, "120", "0", "22")
    assert problems.is_empty(), problems.head(5)


def test_every_rule_quotes_its_seed(seed_text):
    for rule in RULES:
        assert rule.quote.replace(" ", "") in seed_text(rule.source), rule.id
