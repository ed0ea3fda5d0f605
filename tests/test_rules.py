"""The rule catalog against `campaign synth`'s ground truth.

Every injected defect must be found by its rule and nothing else reported: recall and precision
100 % per rule, on 2020-shandong (seed 000's 附件1), 2017-shanxi (seed 002's 附件2, "3200元扶贫指导线":
synth keeps its poor households below the line) and 2023-zibo-jixia (seed 003's monitoring form,
"A33=A28+A29+A30+A31-A32").
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pytest

from include.calendar.instants import parse_instant
from include.calendar.registry import load_campaign
from include.door.windows import record_approval
from include.rules.catalog import RULES
from include.rules.engine import rule_quote, run_rules
from include.store.db import database_url, make_engine, upgrade

CASES = {
    "2020-shandong": {"units": "370100,370200", "at": "2020-11-20T10:00+08:00", "reports": ["completion_report"]},
    # Seed 002: the city reports, applies, and the province opens the entry function.
    "2017-shanxi": {
        "units": "140100,140200",
        "at": "2017-11-23T10:00+08:00",
        "reports": ["completion_report", "entry_application"],
        "approve": "2017-11-22T09:00+08:00",
    },
    "2023-zibo-jixia": {"units": "JX01,JX02", "at": "2023-12-01T10:00+08:00", "reports": []},
    # The same with 临淄区's 县农民人均可支配收入 entered (a test figure): seed 003 附件2's rule runs.
    "2023-zibo-jixia-county": {"units": "JX01,JX02", "at": "2023-12-01T10:00+08:00", "reports": []},
}
COUNTY_INCOME = """  rural_income_yuan:
    label: 县（市、区）农民人均可支配收入
    unit: 元
    quote: 户年人均可支配收入达到所在县（市、区）、农民人均可支配收入水平的；
    counties:
      临淄区: {value: 30000, source: 测试用数值，不是临淄区的统计数}
"""


def county_campaign() -> None:
    """2023-zibo-jixia-county: 稷下街道's calendar with 临淄区's figure entered, as the office would."""
    from include import paths

    text = (paths.CONFIG_CAMPAIGNS / "2023-zibo-jixia.yaml").read_text(encoding="utf-8")
    text = text[: text.index("  rural_income_yuan:")] + COUNTY_INCOME
    text = text.replace("id: 2023-zibo-jixia\n", "id: 2023-zibo-jixia-county\n", 1)
    folder = paths.campaign_home() / "campaigns"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2023-zibo-jixia-county.yaml").write_text(text, encoding="utf-8")


def load(run_cli, tmp_path, campaign, households, rate, seed):
    case = CASES[campaign]
    if campaign == "2023-zibo-jixia-county":
        county_campaign()
    out = tmp_path / campaign
    code, _, err = run_cli(
        "synth", "--campaign", campaign, "--households", households, "--defect-rate", rate, "--seed", seed,
        "--out", out, "--units", case["units"],
    )  # fmt: skip
    assert code == 0, err
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    calendar = load_campaign(campaign)
    for file in truth["files"]:
        for report in case["reports"]:
            reported = parse_instant(case.get("approve", "2020-11-12T10:00+08:00")) - dt.timedelta(days=1)
            code, _, err = run_cli(
                "report", "submit", "--campaign", campaign, "--unit", file["unit"], "--milestone", report,
                "--at", reported.isoformat(),
            )  # fmt: skip
            assert code == 0, err
        if "approve" in case:
            engine = make_engine(upgrade(database_url()))
            assert record_approval(
                engine, calendar, "entry", file["unit"], approved=True, by="省扶贫办", at=parse_instant(case["approve"])
            )
            engine.dispose()
        code, stdout, err = run_cli(
            "ingest", out / file["file"], "--campaign", campaign, "--unit", file["unit"], "--at", case["at"], "--json"
        )
        assert code == 0, stdout + err
        assert json.loads(stdout)["rejected_rows"] == [], "synth defects pass the form checks"
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
    if campaign == "2023-zibo-jixia-county":  # criterion 1 by income and 2–8 by the added sheet, both injected
        assert len(expected["not_enjoying_policy_income"]) >= 5
    for rule in sorted(set(expected) | set(found)):
        missed = expected[rule] - found[rule]
        extra = found[rule] - expected[rule]
        assert not missed and not extra, (rule, sorted(missed)[:3], sorted(extra)[:3])
    assert all(message for message in problems["message"])


@pytest.mark.parametrize("form", ["2020-4", "2020-5"])
def test_a_form_of_changes_lists_the_members_added_or_gone_and_its_defects_are_found(run_cli, tmp_path, form):
    """附件4 and 附件5 are filled "以户为单位" with the members added (a newborn: reason 1, its birth month) or gone,
    under the head named in the header (seed 000: "户主姓名、证件号码"); no 户主 row, and every injected defect is
    found by its rule, nothing else."""
    import openpyxl

    from include.forms.spec import get_form

    campaign, case = "2020-shandong", CASES["2020-shandong"]
    out = tmp_path / form
    code, _, err = run_cli("synth", "--campaign", campaign, "--form", form, "--households", "120", "--defect-rate",
                           "0.3", "--seed", "24", "--out", out, "--units", case["units"])  # fmt: skip
    assert code == 0, err
    truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
    spec = get_form(form)
    for file in truth["files"]:
        ws = openpyxl.load_workbook(out / file["file"])[spec.sheet("members").name]
        header = [str(cell.value) for cell in ws[1]]
        rows = [dict(zip(header, row, strict=False)) for row in ws.iter_rows(min_row=2, values_only=True)]
        assert len(rows) == file["households"], "one change per household, not its every member"
        if form == "2020-4":
            assert {row["增加原因"] for row in rows} == {"1"} and "户主" not in {row["A5 与户主关系"] for row in rows}
        assert all(row["户主姓名"] for row in rows)
        run_cli("report", "submit", "--campaign", campaign, "--unit", file["unit"], "--milestone", "completion_report",
                "--at", "2020-11-11T10:00+08:00")  # fmt: skip
        code, stdout, err = run_cli("ingest", out / file["file"], "--campaign", campaign, "--unit", file["unit"],
                                    "--at", case["at"], "--json")  # fmt: skip
        assert code == 0, stdout + err
        assert json.loads(stdout)["rejected_rows"] == []
    problems = run_rules(load_campaign(campaign), parse_instant(case["at"]))
    expected = {(d["rule"], d["unit"], d["household"], d["person"]) for d in truth["defects"]}
    found = {(row["rule"], row["unit"], row["household"], row["person"]) for row in problems.iter_rows(named=True)}
    assert expected and found == expected


@pytest.mark.parametrize("campaign", list(CASES))
def test_clean_data_has_no_problems(run_cli, tmp_path, campaign):
    _, problems = load(run_cli, tmp_path, campaign, "120", "0", "22")
    assert problems.is_empty(), problems.head(5)


def test_every_rule_quotes_its_seed(seed_text):
    for rule in RULES:
        assert rule.quote.replace(" ", "") in seed_text(rule.source), rule.id
    for campaign in ("2020-shandong", "2017-shanxi", "2023-zibo-jixia", "2020-chongqing-longju"):
        calendar = load_campaign(campaign)
        for rule in RULES:  # a rule of the income period quotes the campaign's own seed
            source, quote = rule_quote(rule, calendar)
            assert quote.replace(" ", "") in seed_text(source), (campaign, rule.id)


def test_validate_says_of_every_rule_whether_it_ran_and_why_not(run_cli, tmp_path):
    """稷下街道's calendar gives no 县农民人均可支配收入: seed 003's 脱贫不享受政策 rule is reported as not run, with what
    to fill in, in `campaign validate --json` and in each problem list's summary; no rule is skipped silently."""
    import openpyxl

    load(run_cli, tmp_path, "2023-zibo-jixia", "60", "0.4", "23")
    out = tmp_path / "lists"
    code, stdout, err = run_cli(
        "validate", "--campaign", "2023-zibo-jixia", "--stage", "analysis", "--at", "2023-12-02T09:00+08:00",
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(stdout)
    rules = {item["rule"]: item for item in result["rules"]}
    assert set(rules) == {rule.id for rule in RULES}
    policy = rules["not_enjoying_policy_income"]
    assert policy["state"] == "not_run" and "county_figures.rural_income_yuan.counties" in policy["reason"]
    assert "config/campaigns/2023-zibo-jixia.yaml" in policy["reason"]
    assert rules["poor_household_below_line_2017"]["state"] == "not_applicable"
    counted: dict[str, int] = defaultdict(int)
    for problem in result["problems"]:
        counted[problem["rule"]] += 1
    ran = {rule: item["problems"] for rule, item in rules.items() if item["state"] == "ran"}
    assert {"net_income_formula", "id_check_digit", "per_capita_formula"} <= set(ran)
    assert {rule: n for rule, n in ran.items() if n} == dict(counted)
    assert result["summary"]["not_run"] == ["not_enjoying_policy_income"]
    summary = openpyxl.load_workbook(out / "2023-zibo-jixia-analysis-JX01-问题清单.xlsx")["汇总"]
    rows = [[cell.value for cell in row] for row in summary.iter_rows()]
    assert ["未运行的规则（其问题未查，不等于没有问题）", None, None, "原因"] in rows
    line = next(row for row in rows if row[0] == policy["title"])
    assert line[1] == "未能运行" and "按县填写数值和出处" in line[3]


def test_validate_writes_problem_lists_and_tracks_status_across_stages(run_cli, tmp_path):
    """Seed 000: "形成到户到人的问题清单并反馈各市" (analysis), then "问题数据核查" (verification)."""
    truth, _ = load(run_cli, tmp_path, "2020-shandong", "80", "0.5", "31")
    out = tmp_path / "lists"
    code, stdout, err = run_cli(
        "validate", "--campaign", "2020-shandong", "--stage", "analysis", "--at", "2020-12-02T09:00+08:00",
        "--out", out, "--json",
    )  # fmt: skip
    assert code == 0, err
    analysis = json.loads(stdout)
    assert analysis["stage"] == "analysis"
    assert {p["status"] for p in analysis["problems"]} == {"new"}
    assert len(analysis["problems"]) >= len(truth["defects"]) // 2
    assert set(analysis["summary"]["by_unit"]) == {"370100", "370200"}
    jinan = out / "2020-shandong-analysis-370100-问题清单.xlsx"
    assert str(jinan) in analysis["files"]
    # the same data twice: the same results
    code, again, _ = run_cli(
        "validate", "--campaign", "2020-shandong", "--stage", "analysis", "--at", "2020-12-02T09:00+08:00",
        "--out", out, "--json",
    )  # fmt: skip
    assert json.loads(again)["problems"] == analysis["problems"]
    # 济南市 fixes every problem: its data are now the clean file; verification marks them fixed
    clean = tmp_path / "clean"
    code, _, err = run_cli(
        "synth",
        "--campaign",
        "2020-shandong",
        "--households",
        "40",
        "--seed",
        "32",
        "--out",
        clean,
        "--units",
        "370100",
    )
    assert code == 0, err
    code, _, err = run_cli(
        "ingest", clean / "2020-shandong-2020-1-370100.xlsx", "--campaign", "2020-shandong", "--unit", "370100",
        "--at", "2020-11-29T10:00+08:00",
    )  # fmt: skip
    assert code == 0, err
    code, stdout, err = run_cli(
        "validate", "--campaign", "2020-shandong", "--unit", "370100", "--stage", "verification",
        "--at", "2020-12-12T09:00+08:00", "--out", out, "--json",
    )  # fmt: skip
    assert code == 0, err
    verification = json.loads(stdout)
    jinan_before = [p for p in analysis["problems"] if p["unit"] == "370100"]
    assert jinan_before and len(verification["problems"]) == len(jinan_before)
    assert {p["status"] for p in verification["problems"]} == {"fixed"}
    assert {p["unit"] for p in verification["problems"]} == {"370100"}, "a rerun for one unit leaves the others alone"


def test_problem_list_cells_are_never_formulas(tmp_path):
    import openpyxl
    import polars as pl

    from include.rules.problem_list import write_problem_list

    problems = pl.DataFrame(
        {
            "unit": ["370100"] * 2,
            "household": ["370102198001011237", "370102198001011245"],
            "person": [None, "370102198001011261"],
            "fields": [["A29", "A29a"], ["A2", "A4"]],
            "rule": ["transfer_sum", "sex_matches_id"],
            "severity": ["error", "error"],
            "message": ["转移性收入填500.00元", "性别填“男”，身份证号码第17位表明是“女”"],
            "status": ["new", "open"],
            "county": ["历下区", "=1+1"],
            "head_name": ["=1+1", "@SUM(A1)"],
        }
    )
    path = write_problem_list(problems, tmp_path / "x.xlsx", unit_name="济南市", campaign_name="山东", stage="analysis")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[0] == "汇总"
    assert wb["汇总"]._charts, "a native chart on the summary sheet"
    cells = [c for ws in wb.worksheets[1:] for row in ws.iter_rows(min_row=2) for c in row if c.value is not None]
    assert cells and all(c.data_type == "s" for c in cells)
    assert any(c.value == "=1+1" for c in cells), "a name such as =1+1 stays plain text"
    assert "370102198001011261" in [c.value for c in cells], "the unit's own list shows full ID numbers"
