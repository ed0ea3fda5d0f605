"""Validation runs: the catalog over the records, problem status across stages, one problem list per unit.

Stages follow the seed plans: analysis (数据分析和问题梳理, lists go to the cities), verification
(问题数据核查) and completion (完善系统数据). A problem's status compares a stage with the stage before:
``new`` (not there before), ``open`` (still there), ``fixed`` (there before, gone now). Rerunning a
stage for a unit compares with the same earlier stage again, so the same data twice gives the same
results; it replaces that unit's results atomically and leaves the other units alone.

Stored under ``$CAMPAIGN_HOME/validation/<campaign>/<stage>/<unit>/`` (include/forms/records.py's atomic
folder: ``problems.parquet`` and ``ingest.json`` with the run's metadata).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from include import paths
from include.calendar import Calendar
from include.calendar.instants import local_iso
from include.forms import records
from include.rules.engine import RuleRun, household_context, pin_forms, run_catalog
from include.rules.imported import SOURCES, imported_problems
from include.rules.stages import STAGES
from include.store.models import WorkloadHousehold

KEY = ["rule", "household", "person_key", "fields_key"]
# new, open (still there), reopened (the unit said it was fixed, the data still show it): to verify;
# fixed (gone from the data), dismissed (the unit found it 不属实 and the office accepted that): closed.
CLOSED = ("fixed", "dismissed")
FollowUp = Mapping[str, tuple[str, str | None]]  # problem → the unit's latest result, the office's review of it


def stage_dir(campaign: str, stage: str, unit: str) -> Path:
    return paths.campaign_home() / "validation" / campaign / stage / unit


def previous_results(campaign: str, stage: str, unit: str) -> pl.DataFrame | None:
    """The unit's results of the latest earlier stage that has any, or None."""
    for earlier in reversed(STAGES[: STAGES.index(stage)]):
        folder = stage_dir(campaign, earlier, unit)
        version = records.version_in(folder)
        if version is not None:
            return pl.read_parquet(folder / version / "problems.parquet")
    return None


def _keyed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("person").fill_null("").alias("person_key"), pl.col("fields").list.join(",").alias("fields_key")
    )


def with_status(current: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """new / open for the current problems, plus the previous stage's problems now gone as fixed."""
    current = _keyed(current)
    if previous is None:
        marked = current.with_columns(pl.lit("new").alias("status"))
    else:
        before = _keyed(previous.filter(~pl.col("status").is_in(CLOSED)))
        seen = before.select(KEY).with_columns(pl.lit(True).alias("_seen"))
        marked = (
            current.join(seen, on=KEY, how="left", nulls_equal=True)
            .with_columns(pl.when(pl.col("_seen")).then(pl.lit("open")).otherwise(pl.lit("new")).alias("status"))
            .drop("_seen")
        )
        gone = before.join(current.select(KEY), on=KEY, how="anti", nulls_equal=True).with_columns(
            pl.lit("fixed").alias("status")
        )
        marked = pl.concat([marked, gone.select(marked.columns)], how="vertical_relaxed")
    return marked.drop("person_key", "fields_key").sort(["household", "rule", "person"], nulls_last=True)


@dataclass
class ValidationRun:
    run: str
    campaign: str
    stage: str
    at: dt.datetime
    problems: pl.DataFrame  # unit, household, person, fields, rule, severity, message, status, county, head_name
    units: list[str] = field(default_factory=list)
    rules: list[RuleRun] = field(default_factory=list)  # what became of each rule of the catalog

    def summary(self) -> dict[str, object]:
        active = self.problems.filter(~pl.col("status").is_in(CLOSED))
        states: dict[str, list[str]] = {}
        for run in self.rules:
            states.setdefault(run.state, []).append(run.rule)
        return {
            "rules": {state: len(ids) for state, ids in sorted(states.items())},
            "not_run": states.get("not_run", []),
            "units": len(self.units),
            "problems": active.height,
            "by_status": dict(self.problems.group_by("status").len().sort("status").iter_rows()),
            "by_rule": dict(active.group_by("rule").len().sort("rule").iter_rows()),
            "by_unit": dict(active.group_by("unit").len().sort("unit").iter_rows()),
            "by_severity": dict(active.group_by("severity").len().sort("severity").iter_rows()),
        }

    def as_json(self) -> dict[str, object]:
        columns = ["unit", "household", "person", "fields", "rule", "severity", "message", "status"]
        return {
            "run": self.run,
            "campaign": self.campaign,
            "stage": self.stage,
            "at": local_iso(self.at),
            "problems": self.problems.select(columns).to_dicts(),
            "rules": [run.as_json() for run in self.rules],
            "summary": self.summary(),
        }


def workload_households(engine: Engine, campaign: str) -> list[str] | None:
    """The households on the campaign's 工作台账 (every unit's), or None where none is loaded."""
    with engine.connect() as connection:
        keys = (
            connection.execute(
                select(WorkloadHousehold.household).where(WorkloadHousehold.campaign_id == campaign).distinct()
            )
            .scalars()
            .all()
        )
    return list(keys) or None


def find_problems(
    calendar: Calendar, at: dt.datetime, workload: list[str] | None = None
) -> tuple[pl.DataFrame, list[RuleRun]]:
    """The catalog over every unit's data (some rules look across units), with each household's
    county and head's name: one row per problem, before any status; and what became of each rule.
    ``workload``: the 工作台账's households (``workload_households``), for the rules that need it."""
    pins = pin_forms(calendar)  # the rules and the households' context read the same versions
    found, rules = run_catalog(calendar, at, pins=pins, workload=workload)
    issued = imported_problems(calendar.id)  # the national and provincial offices' lists join the loop
    if issued.height:
        found = pl.concat([found, issued], how="vertical_relaxed")
    found = found.join(household_context(calendar, pins=pins), on=["unit", "household"], how="left")
    # a county's own uploads are its city's to verify: their problems go into the city's list
    counties = {unit for unit in found["unit"].unique().to_list() if unit not in calendar.unit_names}
    reporting = {unit: calendar.reporting_unit(unit) or unit for unit in counties}
    return (found.with_columns(pl.col("unit").replace(reporting)) if reporting else found), rules


def write_rule_runs(rules: list[RuleRun], path: Path) -> None:
    """What became of each rule, beside a run's problems (the validation DAG's units read it)."""
    paths.write_atomically(path, json.dumps([run.as_json() for run in rules], ensure_ascii=False, indent=1))


def read_rule_runs(path: Path) -> list[RuleRun]:
    if not path.exists():
        return []
    return _rule_runs(json.loads(path.read_text("utf-8")))


def _rule_runs(items: list[dict]) -> list[RuleRun]:
    return [RuleRun(**{**item, "forms": tuple(item["forms"])}) for item in items]


def stored_rule_runs(campaign: str, stage: str, unit: str) -> list[RuleRun]:
    """What became of each rule in the run that stored the unit's problems of the stage."""
    meta = records.meta_in(stage_dir(campaign, stage, unit)) or {}
    return _rule_runs(meta.get("rules", []))


def problem_id(campaign: str, rule: str, household: str | None, person: str | None, fields: list[str] | None) -> str:
    """A problem's number in the lists (问题编号): the same problem has the same number at every stage, so that a
    result given to it follows it; it says nothing of the household (a digest, not the ID number)."""
    key = "/".join([campaign, rule, household or "", person or "", ",".join(fields or [])])
    return "Q" + hashlib.sha256(key.encode()).hexdigest()[:11].upper()


def with_ids(frame: pl.DataFrame, campaign: str) -> pl.DataFrame:
    """``frame`` with each problem's ``problem`` (its number, ``problem_id``)."""
    ids = [
        problem_id(campaign, row["rule"], row["household"], row["person"], row["fields"])
        for row in frame.select("rule", "household", "person", "fields").iter_rows(named=True)
    ]
    return frame.with_columns(pl.Series("problem", ids, dtype=pl.String))


def with_follow_up(marked: pl.DataFrame, follow_up: FollowUp | None) -> pl.DataFrame:
    """The units' answers in the status: a problem found again that the unit found 不属实, with the office's
    acceptance, is ``dismissed`` (later runs do not raise it again); one it said 属实，已整改 is ``reopened``."""
    if not follow_up:
        return marked
    dismissed = [p for p, (result, review) in follow_up.items() if result == "not_a_problem" and review == "accepted"]
    said_fixed = [p for p, (result, _) in follow_up.items() if result == "fixed"]
    found = pl.col("status").is_in(["new", "open", "reopened"])
    # An issued problem (a national or provincial list) is no finding of the data: the unit's 已整改 closes it.
    issued = pl.col("rule").is_in(list(SOURCES))
    return marked.with_columns(
        pl.when(found & pl.col("problem").is_in(dismissed))
        .then(pl.lit("dismissed"))
        .when(found & issued & pl.col("problem").is_in(said_fixed))
        .then(pl.lit("fixed"))
        .when(found & pl.col("problem").is_in(said_fixed))
        .then(pl.lit("reopened"))
        .otherwise(pl.col("status"))
        .alias("status")
    )


def stored_problems(campaign: str, stage: str, unit: str) -> pl.DataFrame | None:
    """The unit's problems of one stage, as stored by its latest run (with their numbers), or None."""
    folder = stage_dir(campaign, stage, unit)
    version = records.version_in(folder)
    if version is None:
        return None
    return with_ids(pl.read_parquet(folder / version / "problems.parquet"), campaign)


def finish_unit(
    calendar: Calendar,
    stage: str,
    at: dt.datetime,
    unit: str,
    found: pl.DataFrame,
    rules: list[RuleRun] | None = None,
    follow_up: FollowUp | None = None,
) -> pl.DataFrame:
    """One unit's problems with their status against the earlier stage and the unit's answers (``follow_up``:
    ``include/rules/results.follow_up``) and their numbers, stored atomically (with what became of each rule,
    ``rules``, for the list written again later: ``stored_rule_runs``)."""
    if stage not in STAGES:
        raise ValueError(stage)
    mine = found.filter(pl.col("unit") == unit)
    marked = with_ids(with_status(mine, previous_results(calendar.id, stage, unit)), calendar.id)
    marked = with_follow_up(marked, follow_up)
    digest = hashlib.sha256(
        json.dumps(
            marked.drop("message", "problem").to_dicts(), ensure_ascii=False, sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:20]
    meta = {"campaign": calendar.id, "stage": stage, "unit": unit, "at": local_iso(at), "problems": marked.height}
    if rules is not None:
        meta["rules"] = [run.as_json() for run in rules]
    records.replace_folder(stage_dir(calendar.id, stage, unit), f"r-{digest}", {"problems": marked}, meta)
    return marked


def run_id(calendar: Calendar, stage: str, at: dt.datetime, units: list[str]) -> str:
    return hashlib.sha256(f"{calendar.id}/{stage}/{local_iso(at)}/{','.join(units)}".encode()).hexdigest()[:12]


def validate(
    calendar: Calendar,
    stage: str,
    at: dt.datetime,
    units: list[str] | None = None,
    follow_up: Callable[[str], FollowUp] | None = None,
    workload: list[str] | None = None,
) -> ValidationRun:
    """Find the problems, then mark and store each requested unit's (all units by default), with each unit's
    answers (``follow_up(unit)``) in the status."""
    if stage not in STAGES:
        raise ValueError(stage)
    wanted = units or calendar.unit_codes
    found, rules = find_problems(calendar, at, workload)
    marked = [
        finish_unit(calendar, stage, at, unit, found, rules, follow_up(unit) if follow_up else None) for unit in wanted
    ]
    problems = pl.concat(marked, how="vertical_relaxed") if marked else found.head(0).with_columns(status=pl.lit(""))
    return ValidationRun(
        run=run_id(calendar, stage, at, wanted),
        campaign=calendar.id,
        stage=stage,
        at=at,
        problems=problems,
        units=wanted,
        rules=rules,
    )


def open_problems(campaign: str, unit: str) -> tuple[str, int] | None:
    """The unit's latest stage with results and its problems not fixed, or None before any validation."""
    for stage in reversed(STAGES):
        folder = stage_dir(campaign, stage, unit)
        version = records.version_in(folder)
        if version is not None:
            problems = pl.read_parquet(folder / version / "problems.parquet")
            return stage, problems.filter(~pl.col("status").is_in(CLOSED)).height
    return None
