"""`campaign calendar check` on broken calendars: exit 1 and one Chinese line per problem."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from include.paths import CONFIG_CAMPAIGNS


def load(plan: str) -> dict:
    return yaml.load((CONFIG_CAMPAIGNS / f"{plan}.yaml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def milestone(raw: dict, milestone_id: str) -> dict:
    return next(item for item in raw["milestones"] if item["id"] == milestone_id)


def phase(raw: dict, phase_id: str) -> dict:
    return next(item for item in raw["phases"] if item["id"] == phase_id)


def due_outside_phase(raw):
    # "11月11日至11月30日，各市将动态管理工作开展情况报省": a report due 12-05 leaves the entry phase.
    milestone(raw, "completion_report")["due"] = "2020-12-05T24:00+08:00"


def unknown_unit(raw):
    milestone(raw, "completion_report")["reporters"] = ["370100", "379900"]


def end_before_start(raw):
    phase(raw, "analysis")["ends"] = "2020-11-30T00:00+08:00"


def naive_datetime(raw):
    phase(raw, "entry")["starts"] = "2020-11-11T00:00:00"


def unknown_phase_id(raw):
    phase(raw, "summary")["id"] = "wrapup"


def milestone_in_unknown_phase(raw):
    milestone(raw, "summary_report")["phase"] = "wrapup"


def window_after_system_close(raw):
    raw["entry_windows"][1]["closes"] = "2021-01-02T24:00+08:00"
    phase(raw, "completion")["ends"] = "2021-01-02T24:00+08:00"


def missing_system_close(raw):
    del raw["system_close"]


def misspelt_field(raw):
    item = milestone(raw, "entry_done")
    item["deu"] = item.pop("due")


def impossible_date(raw):
    milestone(raw, "entry_done")["due"] = "2020-11-31T24:00+08:00"


def duplicate_milestone(raw):
    raw["milestones"].append(copy.deepcopy(milestone(raw, "entry_done")))


def region_gone_that_year(raw):
    raw["units"]["derive_from"] = "371200"  # 莱芜市, [1992-2018]


def window_requires_unknown_milestone(raw):
    raw["entry_windows"][0]["requires"] = ["completion_reprot"]


def child_after_parent(raw):
    # Longju: "（11月30日国扶系统准时关闭）"; move the national closing before the town's entry end.
    raw["parent_deadlines"][0]["due"] = "2020-11-15T24:00+08:00"


def level_of_the_office(raw):
    # seed 000 gives the data entry to "县、乡扶贫部门"; written as the province's own, it is no unit's work
    milestone(raw, "entry_done")["level"] = "province"


def county_in_a_town_plan(raw):
    # Longju's units are its villages ("各村"): a town plan has no counties to owe a milestone
    milestone(raw, "signed_lists")["level"] = "county"


def until_nothing(raw):
    # Shanxi's application is due with its window (``until: entry``); a misspelt id bounds it by nothing
    milestone(raw, "entry_application")["until"] = "entyr"


def until_and_another_date(raw):
    # ``until`` says the seed gives no date of its own: a date written beside it that differs is refused
    milestone(raw, "entry_application")["due"] = "2017-12-10T24:00+08:00"


BROKEN = [
    (
        "2020-shandong",
        due_outside_phase,
        "milestones[3].due",
        "截止时间 2020-12-05 24:00 不在所属阶段“数据录入和系统操作”（2020-11-11 00:00 至 2020-11-30 24:00）之内",
    ),
    ("2020-shandong", unknown_unit, "milestones[3].reporters[1]", "未知单位“379900”"),
    ("2020-shandong", end_before_start, "phases[3].ends", "结束时间 2020-11-29 24:00 不晚于开始时间 2020-12-01 00:00"),
    ("2020-shandong", naive_datetime, "phases[2].starts", "缺少时区偏移"),
    ("2020-shandong", unknown_phase_id, "phases[6].id", "取值“wrapup”无效"),
    ("2020-shandong", milestone_in_unknown_phase, "milestones[8].phase", "未知阶段“wrapup”"),
    (
        "2020-shandong",
        window_after_system_close,
        "entry_windows[1].closes",
        "关闭时间 2021-01-02 24:00 晚于系统关闭时间 2020-12-31 24:00",
    ),
    ("2020-shandong", missing_system_close, "system_close", "缺少必填字段"),
    ("2020-shandong", misspelt_field, "milestones[4].deu", "未知字段"),
    ("2020-shandong", impossible_date, "milestones[4].due", "时间“2020-11-31T24:00+08:00”无效"),
    ("2020-shandong", duplicate_milestone, "milestones[9].id", "编号“entry_done”重复"),
    ("2020-shandong", region_gone_that_year, "units.derive_from", "区划代码 371200 在 2020 年不存在"),
    (
        "2020-shandong",
        window_requires_unknown_milestone,
        "entry_windows[0].requires[0]",
        "引用了不存在的里程碑“completion_reprot”",
    ),
    ("2020-shandong", level_of_the_office, "milestones[4].level", "“省”不在本办（省级）之下：里程碑应由下级单位承担"),
    (
        "2017-shanxi",
        until_nothing,
        "milestones[2].until",
        "引用了不存在或没有日期的阶段、里程碑、录入窗口或上级截止时间“entyr”",
    ),
    (
        "2017-shanxi",
        until_and_another_date,
        "milestones[2].due",
        "已写 until: entry，不应再写另一个时间（2017-12-10T24:00+08:00）",
    ),
    ("2020-chongqing-longju", county_in_a_town_plan, "milestones[1].level", "“县区”不在本办（乡镇级）之下"),
    (
        "2020-chongqing-longju",
        child_after_parent,
        "phases[2].ends",
        "截止时间 2020-11-20 24:00 晚于上级截止时间“国扶系统关闭”的 2020-11-15 24:00",
    ),
]


@pytest.mark.parametrize(("plan", "breaks", "path", "reason"), BROKEN, ids=[case[1].__name__ for case in BROKEN])
def test_broken_calendar_is_refused_with_its_reason(tmp_path, run_cli, plan, breaks, path, reason):
    raw = load(plan)
    breaks(raw)
    file = tmp_path / f"{breaks.__name__}.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")

    code, out, _ = run_cli("calendar", "check", file)

    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith(f"{file}: {path}: ") and reason in line for line in lines), out


def test_yaml_syntax_error_names_the_line(tmp_path, run_cli):
    file = tmp_path / "broken.yaml"
    file.write_text("id: x\nphases: [\n  - id: training\n", encoding="utf-8")
    code, out, _ = run_cli("calendar", "check", file)
    assert code == 1
    assert out.startswith(f"{file}: 第 ") and "YAML 格式错误" in out


def test_valid_calendars_pass_and_a_bad_one_fails_the_whole_run(tmp_path, run_cli):
    bad = tmp_path / "bad.yaml"
    raw = load("2020-shandong")
    unknown_unit(raw)
    bad.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    good = sorted(CONFIG_CAMPAIGNS.glob("*.yaml"))

    code, out, _ = run_cli("calendar", "check", *good)
    assert code == 0
    assert out.count("有效") == 4

    code, out, _ = run_cli("calendar", "check", *good, bad)
    assert code == 1
    assert out.count("有效") == 4 and "未知单位“379900”" in out


@pytest.mark.integration
def test_console_script_exits_1_on_a_broken_file(tmp_path):
    """The installed `campaign` command, as a user runs it."""
    raw = load("2020-shandong")
    naive_datetime(raw)
    file = tmp_path / "naive.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "campaign"), "calendar", "check", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"{file}: phases[2].starts: 时间“2020-11-11T00:00:00”缺少时区偏移（如 +08:00），不能使用不带时区的时间"
    )


def test_unknown_calendar_id_is_a_usage_error(run_cli):
    code, _, err = run_cli("calendar", "show", "2019-nowhere")
    assert code == 2
    assert "找不到日历“2019-nowhere”" in err and "2020-shandong" in err


def test_a_directory_and_a_non_utf8_file_get_one_line_each(tmp_path, run_cli):
    folder = tmp_path / "campaigns"
    folder.mkdir()
    gbk = tmp_path / "gbk.yaml"
    gbk.write_bytes("id: 山东".encode("gbk"))
    code, out, _ = run_cli("calendar", "check", folder, gbk)
    assert code == 1
    assert out.splitlines() == [
        f"{folder}: (文件): 这是一个目录，不是日历文件",
        f"{gbk}: (文件): 文件不是 UTF-8 编码的文本",
    ]


def test_a_village_listed_twice_is_named_by_its_place_in_the_list(tmp_path, run_cli):
    raw = load("2020-chongqing-longju")
    raw["units"]["list"][3]["code"] = "LJ01"
    file = tmp_path / "twice.yaml"
    file.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    code, out, _ = run_cli("calendar", "check", file)
    assert code == 1
    assert f"{file}: units.list[3].code: 单位代码 LJ01 重复" in out.splitlines()
