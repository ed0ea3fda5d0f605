"""Each seed plan's calendar, as `campaign calendar show ID --json` gives it, against its seed sentences."""

from __future__ import annotations

import re

import pendulum
import pytest
import yaml

from include.calendar import read_calendar
from include.paths import CONFIG_CAMPAIGNS
from tests.conftest import SEED_FILES, squash

PLANS = ["2020-shandong", "2020-chongqing-longju", "2017-shanxi", "2023-zibo-jixia"]


def phases(data: dict) -> dict[str, tuple[str, str]]:
    return {phase["id"]: (phase["starts"], phase["ends"]) for phase in data["phases"]}


def milestone(data: dict, milestone_id: str) -> dict:
    return next(item for item in data["milestones"] if item["id"] == milestone_id)


def quote_in(seed: str, sentence: str) -> None:
    assert squash(sentence) in seed, f"not in the seed: {sentence}"


@pytest.mark.parametrize("plan", PLANS)
def test_every_quote_of_the_calendar_is_in_its_seed(plan, seed_text):
    """A calendar cites its source for every date; each citation must be the seed's own words."""
    raw = yaml.safe_load((CONFIG_CAMPAIGNS / f"{plan}.yaml").read_text(encoding="utf-8"))
    cited = 0

    def walk(node, source):
        nonlocal cited
        if isinstance(node, dict):
            source = node.get("source", source)
            if "quote" in node:
                quote_in(seed_text(source), node["quote"])
                cited += 1
            for value in node.values():
                walk(value, source)
        elif isinstance(node, list):
            for item in node:
                walk(item, source)

    walk(raw, raw["seed"])
    assert cited >= len(raw["phases"]) + len(raw["milestones"]) + 1


def test_shandong_2020(show_json, seed_text):
    seed = seed_text(SEED_FILES["000"])
    data = show_json("2020-shandong")
    assert data["campaign"] == "2020-shandong"
    assert data["timezone"] == "Asia/Shanghai"
    assert list(data) == ["campaign", "timezone", "phases", "milestones", "system_close"]

    quote_in(seed, "11月11日至11月30日，各市将动态管理工作开展情况报省扶贫开发办")
    quote_in(seed, "11月30日24时前，县、乡扶贫部门完成全部数据录入和系统操作工作。")
    quote_in(seed, "12月31日24时关闭信息系统。")
    quote_in(seed, "2021年1月1日至10日，各市对扶贫对象动态管理工作进行认真总结")
    assert phases(data) == {
        # "9月24日，省扶贫开发办在济南举办全省培训动员会议……9月30日前，市、县、乡逐级进行部署培训。"
        "training": ("2020-09-24T00:00:00+08:00", "2020-10-01T00:00:00+08:00"),
        # "10月1日至11月10日，组织基层干部进村入户开展动态调整"
        "collection": ("2020-10-01T00:00:00+08:00", "2020-11-11T00:00:00+08:00"),
        "entry": ("2020-11-11T00:00:00+08:00", "2020-12-01T00:00:00+08:00"),
        # "12月1日至10日，国务院扶贫办和省扶贫开发办同时开展数据分析"
        "analysis": ("2020-12-01T00:00:00+08:00", "2020-12-11T00:00:00+08:00"),
        # "12月11日至20日，各市根据问题清单……开展实地核查"
        "verification": ("2020-12-11T00:00:00+08:00", "2020-12-21T00:00:00+08:00"),
        # "12月21日至31日，各市组织县、乡扶贫部门在信息系统中对问题数据进行修改完善。"
        "completion": ("2020-12-21T00:00:00+08:00", "2021-01-01T00:00:00+08:00"),
        "summary": ("2021-01-01T00:00:00+08:00", "2021-01-11T00:00:00+08:00"),
    }
    assert [phase["id"] for phase in data["phases"]] == [
        "training",
        "collection",
        "entry",
        "analysis",
        "verification",
        "completion",
        "summary",
    ]
    assert data["system_close"] == "2021-01-01T00:00:00+08:00"
    report = milestone(data, "completion_report")
    assert report["due"] == "2020-12-01T00:00:00+08:00"
    assert len(report["reporters"]) == 16  # the 16 cities of Shandong in 2020 (莱芜 merged into 济南 in 2019)
    assert milestone(data, "summary_report")["due"] == "2021-01-11T00:00:00+08:00"
    assert milestone(data, "province_training")["due"] == "2020-09-25T00:00:00+08:00"
    assert milestone(data, "province_training")["reporters"] == []


def test_shandong_units_are_the_cities_of_2020():
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    names = [unit.name for unit in calendar.unit_list]
    assert names[:3] == ["济南市", "青岛市", "淄博市"]
    assert "莱芜市" not in names and "菏泽市" in names
    assert [unit.code for unit in calendar.unit_list][-1] == "371700"


def test_longju_2020_inside_the_national_closing(show_json, seed_text):
    seed = seed_text(SEED_FILES["001"])
    data = show_json("2020-chongqing-longju")
    quote_in(seed, "10月1日至11月1日，组织驻村工作队、帮扶责任人、镇村干部进村入户")
    quote_in(
        seed,
        "11月1日至11月20日，在完成进村入户和信息采集相关工作后，完成全部数据录入国家扶贫开发信息系统工作。（11月30日国扶系统准时关闭）。",
    )
    quote_in(seed, "11月2日至20日，开展数据分析和数据清洗")
    quote_in(seed, "11月20日至30日，区扶贫办根据问题清单")
    quote_in(seed, "12月1日至31日，全市组织在信息系统中对核实的问题数据进行修改完善。")
    quote_in(seed, "2021年1月1日至8日，各村（社区）对2020年度扶贫对象动态管理工作进行总结")
    assert phases(data) == {
        "training": ("2020-09-28T00:00:00+08:00", "2020-10-01T00:00:00+08:00"),
        "collection": ("2020-10-01T00:00:00+08:00", "2020-11-02T00:00:00+08:00"),
        "entry": ("2020-11-01T00:00:00+08:00", "2020-11-21T00:00:00+08:00"),
        "analysis": ("2020-11-02T00:00:00+08:00", "2020-11-21T00:00:00+08:00"),
        "verification": ("2020-11-20T00:00:00+08:00", "2020-12-01T00:00:00+08:00"),
        "completion": ("2020-12-01T00:00:00+08:00", "2021-01-01T00:00:00+08:00"),
        "summary": ("2021-01-01T00:00:00+08:00", "2021-01-09T00:00:00+08:00"),
    }
    # Overlap is allowed: collection runs to 11-01 24:00 while entry opens on 11-01.
    assert data["phases"][1]["ends"] > data["phases"][2]["starts"]
    assert data["system_close"] == "2020-12-01T00:00:00+08:00"
    quote_in(
        seed, "10月24日前将拟新识别贫困户、边缘易致贫户和新增家庭成员名单经村（社区）负责人、第一书记签字盖章报镇扶贫办"
    )
    signed = milestone(data, "signed_lists")
    assert signed["due"] == "2020-10-25T00:00:00+08:00"
    assert signed["phase"] == "collection"
    assert len(signed["reporters"]) == 8


def test_longju_villages_are_placeholders_and_thresholds_from_the_seed(seed_text):
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-chongqing-longju.yaml")
    assert all(unit.placeholder for unit in calendar.unit_list)
    quote_in(seed_text(SEED_FILES["001"]), "今年贫困户识别和退出收入标准为年人均纯收入4000元。")
    assert calendar.thresholds["poverty_line_yuan"].value == 4000
    assert calendar.thresholds["unstable_edge_line_yuan"].value == 6000


def test_shanxi_2017(show_json, seed_text):
    seed = seed_text(SEED_FILES["002"])
    data = show_json("2017-shanxi")
    quote_in(
        seed,
        "2017年度扶贫对象动态管理工作从10月20日“贫困退出对标提升现场会”开始，11月30日前完成线下工作，以市为单位上报“2017年度扶贫对象动态管理工作报告”。12月20日前结束数据录入工作。",
    )
    assert phases(data) == {
        "training": ("2017-10-20T00:00:00+08:00", "2017-10-21T00:00:00+08:00"),
        "collection": ("2017-10-20T00:00:00+08:00", "2017-12-01T00:00:00+08:00"),
        "entry": ("2017-10-24T00:00:00+08:00", "2017-12-21T00:00:00+08:00"),
    }
    assert milestone(data, "completion_report")["due"] == "2017-12-01T00:00:00+08:00"
    quote_in(seed, "于12月20日前上报全市贫困村退出抽检报告")
    assert milestone(data, "sampling_report")["due"] == "2017-12-21T00:00:00+08:00"
    quote_in(seed, "标注截止时间为2017年12月20日。")
    assert milestone(data, "exit_marking")["due"] == "2017-12-21T00:00:00+08:00"
    assert data["system_close"] == "2017-12-21T00:00:00+08:00"
    assert len(milestone(data, "entry_application")["reporters"]) == 11  # the 11 cities of Shanxi


def test_shanxi_entry_needs_the_province_and_the_2016_2017_income_period(seed_text):
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2017-shanxi.yaml")
    quote_in(seed_text(SEED_FILES["002"]), "国务院扶贫办提出的计算周期为2016年10月1日至2017年9月30日。")
    window = calendar.entry_windows[0]
    assert window.approval == "province"
    assert window.requires == ("completion_report", "entry_application")
    assert calendar.income_period.starts.isoformat() == "2016-09-30T16:00:00+00:00"
    assert calendar.income_period.ends.isoformat() == "2017-09-30T16:00:00+00:00"
    assert calendar.thresholds["poverty_line_yuan"].value == 3200
    assert calendar.thresholds["village_exit_incidence_max"].value == 0.02
    assert calendar.thresholds["village_sampling_rate_min"].value == 0.10
    assert [unit.name for unit in calendar.unit_list][-1] == "吕梁市"


def test_jixia_2023(show_json, seed_text):
    seed = seed_text(SEED_FILES["003"])
    data = show_json("2023-zibo-jixia")
    quote_in(seed, "12月8日前完成信息录入，开展数据清洗；12月31日24时，国家将统一关闭巩固脱贫攻坚成果数据录入功能。")
    # Training and collection are undated in the plan (dated 2023-11-07): each runs until the entry deadline.
    quote_in(seed, "街道扶贫办公室细化街道工作方案，召开培训会议，部署有关工作，培训到村级干部。")
    assert phases(data)["training"] == ("2023-11-07T00:00:00+08:00", "2023-12-09T00:00:00+08:00")
    assert phases(data)["entry"] == ("2023-11-07T00:00:00+08:00", "2023-12-09T00:00:00+08:00")
    assert [item["id"] for item in data["milestones"]] == ["entry_done", "classification_report", "data_cleaned"]
    assert phases(data)["completion"] == ("2023-12-09T00:00:00+08:00", "2024-01-01T00:00:00+08:00")
    assert data["system_close"] == "2024-01-01T00:00:00+08:00"
    quote_in(seed, "并于12月8日前由街道扶贫办公室汇总审定后报区乡村振兴局。")
    assert milestone(data, "classification_report")["due"] == "2023-12-09T00:00:00+08:00"


def test_no_date_the_seed_does_not_give(show_json, run_cli, seed_text):
    """Issue 16: "keep only what a seed says". Where a seed dates nothing, the file writes no date but ``until``:
    Shanxi's application ("在完成信息采集工作后，以市为单位提交《数据录入申请书》") is due with the window it opens;
    Jixia's training and collection end with the entry ("12月8日前完成信息录入"); Longju's "全市组织…修改完善" is the
    city's work after the national system closed, a parent plan's deadline no village owes."""
    shanxi = load_raw("2017-shanxi")
    application = next(item for item in shanxi["milestones"] if item["id"] == "entry_application")
    assert "due" not in application and application["until"] == "entry"
    quote_in(seed_text(SEED_FILES["002"]), application["quote"])
    assert not re.search(r"\d+月\d+日", application["quote"])  # the sentence it follows dates nothing
    data = show_json("2017-shanxi")
    assert milestone(data, "entry_application")["until"] == "entry"
    assert milestone(data, "entry_application")["due"] == "2017-12-21T00:00:00+08:00"  # the window's 12-20 24时
    code, out, _ = run_cli("calendar", "show", "2017-shanxi")
    assert (
        code == 0
        and "2017-12-20 24:00（方案未定截止时间，以“全国扶贫开发信息系统“2018年初动态管理”功能模块”关闭为限）" in out
    )

    jixia = load_raw("2023-zibo-jixia")
    for phase_id in ("training", "collection"):
        phase = next(item for item in jixia["phases"] if item["id"] == phase_id)
        assert "ends" not in phase and phase["until"] == "entry_done"
    data = show_json("2023-zibo-jixia")
    assert [item["until"] for item in data["phases"][:3]] == ["entry_done", "entry_done", None]
    assert phases(data)["training"][1] == milestone(data, "entry_done")["due"] == "2023-12-09T00:00:00+08:00"
    code, out, _ = run_cli("calendar", "show", "2023-zibo-jixia")
    assert (
        "| training | 印发方案和培训部署 | 2023-11-07 00:00 | 2023-12-08 24:00（方案未定结束时间，以“各村完成信息录入”截止为限） |"
        in out
    )

    longju = read_calendar(CONFIG_CAMPAIGNS / "2020-chongqing-longju.yaml")
    assert longju.milestone("data_completed") is None
    city = next(item for item in longju.parent_deadlines if item.id == "city_data_completed")
    quote_in(seed_text(SEED_FILES["001"]), city.quote)
    assert city.due.isoformat() == "2020-12-31T16:00:00+00:00"
    assert not [item.id for item in longju.milestones if item.phase == "completion" and longju.owers(item)]


def load_raw(plan: str) -> dict:
    return yaml.safe_load((CONFIG_CAMPAIGNS / f"{plan}.yaml").read_text(encoding="utf-8"))


def test_jixia_income_period_and_status_date(seed_text):
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2023-zibo-jixia.yaml")
    quote_in(seed_text(SEED_FILES["003"]), "计算周期为2022年10月1日至2023年9月30日")
    quote_in(seed_text(SEED_FILES["003"]), "取值时间节点为2023年9月30日24时。")
    assert calendar.income_period.starts.isoformat() == "2022-09-30T16:00:00+00:00"
    assert calendar.income_period.ends.isoformat() == "2023-09-30T16:00:00+00:00"
    assert calendar.status_date.at.isoformat() == "2023-09-30T16:00:00+00:00"
    assert calendar.thresholds["publicity_days"].value == 5


def test_the_24_hour_rule():
    """'11-30 23:59:59 is in time; 12-01 00:00:00 is late' (DOMAIN.md): the due instant is exclusive."""
    calendar = read_calendar(CONFIG_CAMPAIGNS / "2020-shandong.yaml")
    entry_done = next(item for item in calendar.milestones if item.id == "entry_done")
    from include.calendar.instants import parse_instant

    assert parse_instant("2020-11-30T23:59:59.999+08:00") < entry_done.due
    assert not parse_instant("2020-12-01T00:00:00+08:00") < entry_done.due


def test_show_text_is_chinese_in_local_time(run_cli):
    code, out, _ = run_cli("calendar", "show", "2020-shandong")
    assert code == 0
    assert "| entry | 数据录入和系统操作 | 2020-11-11 00:00 | 2020-11-30 24:00 |" in out
    assert "系统关闭：**2020-12-31 24:00**" in out


RANGE = re.compile(r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日至(?:(\d{1,2})月)?(\d{1,2})日")
DEADLINE = re.compile(
    r"(?:(\d{4})年)?(\d{1,2})月(\d{1,2})日(?:24时前|24时|前)|截止时间为(\d{4})年(\d{1,2})月(\d{1,2})日"
)


def day_start(year: str | None, month: str, day: str, default_year: int) -> pendulum.DateTime:
    return pendulum.datetime(int(year or default_year), int(month), int(day), tz="Asia/Shanghai")


def dates_read_from_quote(quote: str, year: int) -> tuple[pendulum.DateTime | None, pendulum.DateTime | None]:
    """(start, exclusive end) as a reader of the quoted sentence would take them, by the 24:00 rule."""
    deadline = DEADLINE.search(quote)
    if deadline:
        y, m, d = deadline.group(1, 2, 3) if deadline.group(2) else deadline.group(4, 5, 6)
        return None, day_start(y, m, d, year).add(days=1)
    span = RANGE.search(quote)
    if span:
        y, m1, d1, m2, d2 = span.groups()
        return day_start(y, m1, d1, year), day_start(y, m2 or m1, d2, year).add(days=1)
    return None, None


@pytest.mark.parametrize("plan", PLANS)
def test_each_dated_quote_gives_the_instant_written_beside_it(plan):
    """'10月1日至11月10日' is [10-01 00:00, 11-11 00:00); '11月30日24时前' and '12月20日前' end at the next 00:00."""
    calendar = read_calendar(CONFIG_CAMPAIGNS / f"{plan}.yaml")
    checked = 0
    for phase in calendar.phases:
        span = RANGE.search(phase.quote)
        if span:
            starts, ends = dates_read_from_quote(span.group(0), calendar.year)
            assert (phase.starts, phase.ends) == (starts, ends), phase.id
            checked += 1
    dated = [(item.id, item.quote, item.due) for item in calendar.milestones]
    dated.append(("system_close", calendar.system_close.quote, calendar.system_close.at))
    for item_id, quote, due in dated:
        _, ends = dates_read_from_quote(quote, calendar.year)
        if ends is not None:
            assert due == ends, item_id
            checked += 1
    assert checked >= 4
