"""The validation DAG: ops staff run the rule catalog for a campaign's stage, for one unit or all.

One task runs the catalog over every unit's records (some rules look across units); then one mapped
task per unit marks its problems' status against the earlier stage, stores them atomically and
writes its Excel problem list. Rerunning one city's verification touches that city only.

Imported at DAG-parse time: builds objects only (no database, no clock, no calendar parsing).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from include.rules.stages import STAGES, problem_list_name

DAG_ID = "validation"
ALL_UNITS = "all"  # the `unit` param's value for every unit of the campaign
UNIT_LABEL = "{{ unit_label | default(task.op_kwargs.get('unit', '')) }}"

DOC = """
# 数据校验与问题清单

按战役日历运行校验规则，形成到户到人的问题清单，每个单位一个 Excel 文件，写到
`$CAMPAIGN_HOME/problem-lists/<战役>/<阶段>/`。问题状态与上一阶段比较：新发现、仍存在、已整改。

## 运维：重跑某个市的核查阶段

1. 在 Airflow 界面打开本 DAG（数据校验与问题清单），点“Trigger”（触发）。
2. 参数填写：`campaign` 选战役（如 2020-shandong），`unit` 填该市代码（如 370100，济南市），
   `stage` 选 `verification`（问题数据核查）；`at` 留空即按当前时间。
3. 运行后，“问题清单”任务只有该市一格；该市的结果和清单整体替换，其他市不受影响。
   同样的数据重跑两次，结果相同。

也可在命令行运行：`campaign validate --campaign 2020-shandong --unit 370100 --stage verification --out 目录`。

## 自动触发

战役 DAG 在“数据分析和问题梳理”“问题数据核查”“完善系统数据”各阶段开始时自动触发本 DAG：
`unit` 为 `all`，`at` 为该阶段的开始时间。运行 ID 形如 `<战役>__<阶段>__<战役运行 ID>`，
同一战役运行只触发一次。
"""


def _now() -> dt.datetime:
    import pendulum

    return pendulum.now("UTC")


def build_validation_dag(campaign_ids: list[str]) -> DAG:
    with DAG(
        dag_id=DAG_ID,
        dag_display_name="数据校验与问题清单",
        description="运行校验规则，给每个单位写出问题清单（可按单位、按阶段重跑）",
        schedule=None,
        catchup=False,
        max_active_runs=4,
        max_active_tasks=4,  # a problem list per unit: at most four at once, so a small server stays responsive
        # a task whose worker died is failed by the scheduler, then run again (on another worker): each task
        # writes its results atomically, so a second run gives the same files
        default_args={"retries": 2, "retry_delay": dt.timedelta(seconds=10)},
        doc_md=DOC,
        tags=["validation"],
        params={
            "campaign": Param(
                campaign_ids[0] if campaign_ids else "",
                type="string",
                title="战役",
                **({"enum": campaign_ids} if campaign_ids else {}),
            ),
            "unit": Param(ALL_UNITS, type="string", title="单位代码（all 为全部单位）"),
            "stage": Param("analysis", type="string", enum=list(STAGES), title="阶段"),
            "at": Param("", type="string", title="运行时刻（ISO-8601，带时区；留空为当前时间）"),
        },
    ) as dag:

        @task(task_display_name="运行校验规则（全部单位的数据）")
        def find_problems(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
            """Run the catalog once over the campaign's records; one mapping entry per unit to finish."""
            from include.calendar.instants import parse_instant
            from include.calendar.registry import load_campaign
            from include.paths import atomic_path, campaign_home
            from include.rules.problems import find_problems as run_catalog
            from include.rules.problems import run_id, workload_households, write_rule_runs
            from include.store.db import database_url, make_engine

            params = params or {}
            calendar = load_campaign(params["campaign"])
            at = parse_instant(params["at"]) if params.get("at") else _now()
            codes = calendar.unit_codes
            units = codes if params.get("unit", ALL_UNITS) == ALL_UNITS else [params["unit"]]
            unknown = [unit for unit in units if unit not in codes]
            if unknown:
                raise ValueError(f"{calendar.name}没有单位“{'、'.join(unknown)}”")
            engine = make_engine(database_url())
            try:
                workload = workload_households(engine, calendar.id)
            finally:
                engine.dispose()
            found, rules = run_catalog(calendar, at, workload)
            stage = params["stage"]
            folder = campaign_home() / "validation" / calendar.id / stage / "_runs"
            target = folder / f"{run_id(calendar, stage, at, units)}.parquet"
            write_rule_runs(rules, target.with_suffix(".rules.json"))
            with atomic_path(target) as staging:
                found.write_parquet(staging)
            return [
                {"campaign": calendar.id, "stage": stage, "at": at.isoformat(), "unit": unit, "found": str(target)}
                for unit in units
            ]

        @task(task_display_name="问题清单", map_index_template=UNIT_LABEL)
        def unit_problem_list(campaign: str, stage: str, at: str, unit: str, found: str) -> dict[str, object]:
            """One unit: status against the earlier stage, stored atomically, and its Excel problem list."""
            import polars as pl

            from include.calendar.instants import parse_instant
            from include.calendar.registry import load_campaign
            from include.paths import campaign_home
            from include.progress.verification import declare_if_verified
            from include.rules.problem_list import write_problem_list
            from include.rules.problems import CLOSED, finish_unit, read_rule_runs
            from include.rules.results import follow_up, results_for_list
            from include.store.db import database_url, make_engine

            calendar = load_campaign(campaign)
            names = calendar.unit_names
            rules = read_rule_runs(Path(found).with_suffix(".rules.json"))
            engine = make_engine(database_url())
            try:
                answers = follow_up(engine, campaign, unit)
                given = results_for_list(engine, campaign, unit)
                marked = finish_unit(calendar, stage, parse_instant(at), unit, pl.read_parquet(found), rules, answers)
                declare_if_verified(engine, calendar, unit, parse_instant(at))  # nothing to verify is verified
            finally:
                engine.dispose()
            out = campaign_home() / "problem-lists" / campaign / stage / problem_list_name(campaign, stage, unit)
            write_problem_list(
                marked, out, unit_name=names[unit], campaign_name=calendar.name, stage=stage, rules=rules,
                campaign_id=campaign, unit=unit, results=given,
            )  # fmt: skip
            active = marked.filter(~pl.col("status").is_in(CLOSED)).height
            get_current_context()["unit_label"] = f"{names[unit]} · {active} 个问题"
            return {"unit": unit, "problems": active, "fixed": marked.height - active, "file": str(out)}

        unit_problem_list.expand_kwargs(find_problems())
    return dag


def campaign_ids(files: list[Path]) -> list[str]:
    """Calendar ids by file name (no parsing at DAG-parse time)."""
    return sorted(file.stem for file in files)
