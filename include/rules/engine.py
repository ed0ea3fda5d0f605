"""The rule engine: every rule of the catalog as one set-based DuckDB query over the records store.

DuckDB reads the Parquet files in force (include/forms/records.py) directly; there is no Python loop over
rows. DESIGN.md's measurement on 2 cores (2.5 M persons, 9 rules: DuckDB about 2 s, Polars about
3 s, SQLite and PostgreSQL about 21 s) chose it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import duckdb
import polars as pl

from include.calendar import Calendar, regions
from include.forms import records
from include.forms.spec import FieldSpec, FormSpec, all_forms, get_form
from include.rules.catalog import RULES, Rule, option_checks

PROBLEM_SCHEMA = {
    "unit": pl.String,
    "household": pl.String,
    "person": pl.String,
    "fields": pl.List(pl.String),
    "rule": pl.String,
    "severity": pl.String,
    "message": pl.String,
}


@dataclass(frozen=True)
class Roles:
    """The form's column for each role a rule may name."""

    columns: dict[str, str]
    codes: dict[str, str]  # column → the code printed on the form (for the problem list)


def roles_of(form: FormSpec) -> Roles:
    members = {f.key: f for f in form.fields_of("members")} if any(s.id == "members" for s in form.sheets) else {}
    households = (
        {f.key: f for f in form.fields_of("households")} if any(s.id == "households" for s in form.sheets) else {}
    )
    columns: dict[str, str] = {}
    if form.household_key:
        columns["household"] = form.household_key

    def first(fields: dict[str, FieldSpec], test) -> str | None:  # noqa: ANN001 - a predicate on FieldSpec
        return next((key for key, f in fields.items() if test(f)), None)

    for role, test in (
        ("id", lambda f: f.type == "id_number" and f.key != form.household_key),
        ("sex", lambda f: f.label == "性别"),
        ("relation", lambda f: f.label.startswith("与户主关系")),
        ("name", lambda f: f.type == "name"),
        ("school", lambda f: f.label.startswith("在校生状况")),
        ("dropout", lambda f: f.label.startswith("失学或辍学原因")),
    ):
        key = first(members, test)
        if key:
            columns[role] = key
    if "address_county" in households:
        columns["county"] = "address_county"
    for key, f in households.items():
        # Household items (incomes …) are rules' roles by their printed code; 2017's forms print none: by key.
        columns.setdefault(f.code or key, key)
    for key, f in members.items():
        if f.key != form.household_key:
            columns.setdefault(f.code or key, key)
    for sheet in form.sheets:
        if sheet.id not in ("households", "members"):  # villages …: by key
            for f in form.fields_of(sheet.id):
                columns.setdefault(f.code or f.key, f.key)
    options = option_checks(form, columns)
    if options:
        columns["options"] = options
    codes = {f.key: f.code or f.label for f in form.fields}
    return Roles(columns=columns, codes=codes)


SQL_TYPES = {
    "money": "DOUBLE",
    "number": "DOUBLE",
    "area": "DOUBLE",
    "integer": "BIGINT",
    "multiple": "VARCHAR[]",
    "date": "DATE",
    "month": "DATE",
}


Pins = dict[str, dict[str, str]]  # form → unit → the version a run reads (include/forms/records.py: ``pin``)


def pin_forms(calendar: Calendar, units: list[str] | None = None) -> Pins:
    """The versions in force of every form's units, read once at the start of a run.

    A run reads every sheet of a form through its pin: one version of each unit, whatever the unit
    uploads meanwhile (the records store keeps superseded versions for its readers).
    """
    return {form_id: records.pin(calendar.id, form_id, units) for form_id in all_forms()}


def _views(
    connection: duckdb.DuckDBPyConnection, calendar: Calendar, units: list[str] | None, pins: Pins | None = None
) -> set[str]:
    """A view ``"<form>/<sheet>"`` (``"2020-2/households"``) per sheet of every form, over its Parquet files
    of the versions pinned (``pins``; by default those in force when the run starts).

    Each view has the spec's columns: a sheet with no file gets an empty view typed from the spec, and a
    column an older upload lacks is NULL, so that every rule runs on what is stored, and a rule that
    counts across forms (the monitoring scale) runs whichever of them are stored. Returns the forms stored.
    """
    pins = pin_forms(calendar, units) if pins is None else pins
    stored_forms = set()
    for form in all_forms().values():
        pinned = pins.get(form.id, {})
        stored = {
            sheet.id: records.sheet_files(calendar.id, form.id, sheet.id, units, pinned=pinned) for sheet in form.sheets
        }
        if any(stored.values()):
            stored_forms.add(form.id)
        for sheet, files in stored.items():
            source, present = "(SELECT NULL::VARCHAR AS unit WHERE false)", {"unit"}
            if files:
                listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                source = f"read_parquet([{listed}], union_by_name = true)"
                present = {row[0] for row in connection.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            columns = ", ".join(
                f.key if f.key in present else f"NULL::{SQL_TYPES.get(f.type, 'VARCHAR')} AS {f.key}"
                for f in form.fields_of(sheet)
            )
            connection.execute(f'CREATE OR REPLACE VIEW "{form.id}/{sheet}" AS SELECT unit, {columns} FROM {source}')
    return stored_forms


def _use(connection: duckdb.DuckDBPyConnection, form: FormSpec) -> None:
    """The form's sheets under their own names (``households``, ``members``, ``villages`` …) for its rules."""
    own = {sheet.id for sheet in form.sheets}
    for name in sorted({sheet.id for other in all_forms().values() for sheet in other.sheets} - own):
        connection.execute(f"DROP VIEW IF EXISTS {name}")  # another form's sheet of that name is not this form's
    for sheet in sorted(own):
        connection.execute(f'CREATE OR REPLACE VIEW {sheet} AS SELECT * FROM "{form.id}/{sheet}"')


def _entered_table(connection: duckdb.DuckDBPyConnection, calendar: Calendar, pins: Pins) -> None:
    """``_entered``: when each unit's records of each form were uploaded (Beijing time), for rules that compare a
    date entered with the moment it was entered (the view ``entered`` of the form being checked)."""
    rows = [
        (form_id, unit, at.astimezone(ZoneInfo(calendar.timezone)).replace(tzinfo=None))
        for form_id, pinned in pins.items()
        for unit, at in records.entered_at(calendar.id, form_id, pinned).items()
    ]
    connection.execute("CREATE OR REPLACE TEMP TABLE _entered (form VARCHAR, unit VARCHAR, entered_at TIMESTAMP)")
    if rows:
        connection.executemany("INSERT INTO _entered VALUES (?, ?, ?)", rows)


def _known_households(connection: duckdb.DuckDBPyConnection, workload: Iterable[str] | None) -> None:
    """``known_households``: every household key on a household form of any unit, and on the 工作台账."""
    connection.execute("CREATE OR REPLACE TEMP TABLE _workload (household VARCHAR)")
    if workload:
        connection.executemany("INSERT INTO _workload VALUES (?)", [(key,) for key in workload])
    parts = ["SELECT household FROM _workload"]
    for form in all_forms().values():
        if form.household_key and any(sheet.id == "households" for sheet in form.sheets):
            parts.append(f'SELECT CAST({form.household_key} AS VARCHAR) FROM "{form.id}/households"')
    connection.execute("CREATE OR REPLACE VIEW known_households AS " + " UNION ".join(parts))


def _parameters(calendar: Calendar, at: dt.datetime, rule: Rule, sql: str) -> dict[str, object]:
    """The calendar's values a rule's SQL names: its thresholds, the status date, the year's dates."""
    status = calendar.status_date.at if calendar.status_date else at
    derived: dict[str, object] = {
        "status_date": status.replace(tzinfo=None),
        "year_starts": dt.datetime(calendar.year, 1, 1),
        "year_ends": dt.datetime(calendar.year + 1, 1, 1),
        # Seed 004: changes dated October to December of the year before belong to its September.
        "prior_q4_starts": dt.datetime(calendar.year - 1, 10, 1),
        "prior_q4_ends": dt.datetime(calendar.year, 1, 1),
        "prior_september": dt.datetime(calendar.year - 1, 9, 1),
    }
    if calendar.income_period:
        derived["income_starts"] = calendar.income_period.starts.in_timezone(calendar.timezone).naive()
        derived["income_ends"] = calendar.income_period.ends.in_timezone(calendar.timezone).naive()
    params: dict[str, object] = {name: float(calendar.thresholds[name].value) for name in rule.params}
    params.update({name: value for name, value in derived.items() if f"${name}" in sql})
    return params


RunState = Literal["ran", "not_run", "no_data", "not_applicable"]
RUN_WORDS: dict[str, str] = {"ran": "已运行", "not_run": "未能运行", "no_data": "尚无数据", "not_applicable": "不适用"}


@dataclass(frozen=True)
class RuleRun:
    """What became of one rule in one run: ran (with its problems), or why not.

    ``not_run``: the campaign collects a form the rule checks, but lacks what the rule needs (a figure of the
    calendar, the income period, a field); the problem list says so. ``no_data``: nothing of that form is stored
    yet. ``not_applicable``: the campaign collects none of the forms the rule is written for.
    """

    rule: str
    title: str
    severity: str
    state: RunState
    forms: tuple[str, ...]  # the campaign's forms it ran on (ran) or would run on
    problems: int = 0
    reason: str = ""
    source: str = ""
    quote: str = ""

    @property
    def short(self) -> bool:
        """Not run, no data, or run on part of the data only (``reason`` then says which part was not checked)."""
        return self.state in ("not_run", "no_data") or bool(self.state == "ran" and self.reason)

    @property
    def word(self) -> str:
        return "部分运行" if self.state == "ran" and self.reason else RUN_WORDS[self.state]

    def as_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "state": self.state,
            "forms": list(self.forms),
            "problems": self.problems,
            "reason": self.reason,
            "source": self.source,
            "quote": self.quote,
        }


PERIOD_PARAMETERS = ("income_starts", "income_ends")  # bound from the calendar's income period


NEEDS_WORDS = {"workload": "尚未导入本工作的工作台账（campaign workload load），无法核对户是否在册"}


def missing_for(
    calendar: Calendar, form: FormSpec, rule: Rule, roles: Roles, available: frozenset[str] = frozenset()
) -> str | None:
    """Why the rule cannot run on the campaign's form, in Chinese, or None when it can (``available``: the data
    beyond the forms at hand, such as "workload")."""
    wanting = [need for need in rule.needs if need not in available]
    if wanting:
        return "；".join(NEEDS_WORDS.get(need, need) for need in wanting)
    absent = [role for role in rule.roles if role not in roles.columns]
    if absent:
        return f"{form.id} 表没有所需的指标：{'、'.join(absent)}"
    figures = [name for name in rule.params if name not in calendar.thresholds]
    if figures:
        return (
            f"日历未给出所需的数值：{'、'.join(figures)}（请在 config/campaigns/{calendar.id}.yaml 的 thresholds "
            "中填写，并注明出处）"
        )
    unfigured = [name for name in rule.figures if not _county_values(calendar, name)]
    if unfigured:
        return "；".join(
            f"日历未给出各县的{given.label if (given := calendar.county_figures.get(name)) else name}"
            f"（请在 config/campaigns/{calendar.id}.yaml 的 county_figures.{name}.counties 中按县填写数值和出处）"
            for name in unfigured
        )
    if calendar.income_period is None and any(f"${name}" in rule.sql for name in PERIOD_PARAMETERS):
        return f"日历未给出收入计算周期（config/campaigns/{calendar.id}.yaml 的 income_period）"
    return None


def _county_values(calendar: Calendar, name: str) -> dict[str, float]:
    figures = calendar.county_figures.get(name)
    return {county: figure.value for county, figure in figures.counties.items()} if figures else {}


def _county_tables(connection: duckdb.DuckDBPyConnection, calendar: Calendar, rules: Iterable[Rule]) -> None:
    """``county_<name>`` (county, value) for every county figure a rule compares with."""
    for name in sorted({name for rule in rules for name in rule.figures}):
        connection.execute(f"CREATE OR REPLACE TEMP TABLE county_{name} (county VARCHAR, value DOUBLE)")
        values = _county_values(calendar, name)
        if values:
            connection.executemany(f"INSERT INTO county_{name} VALUES (?, ?)", list(values.items()))


def _unfigured_counties(
    connection: duckdb.DuckDBPyConnection, calendar: Calendar, rule: Rule, columns: dict[str, str]
) -> str:
    """What a rule that ran could not compare: the counties of the households it looks at (``figures_for``) that
    have no figure in the calendar."""
    county = columns.get("county")
    if county is None:
        return ""
    notes = []
    for name in rule.figures:
        rows = connection.execute(
            f"SELECT DISTINCT {county} FROM households WHERE {county} IS NOT NULL AND ({rule.figures_for}) "
            f"AND {county} NOT IN (SELECT county FROM county_{name}) ORDER BY 1"
        ).fetchall()
        if rows:
            label = calendar.county_figures[name].label
            notes.append(f"{'、'.join(str(row[0]) for row in rows)}未给出{label}，这些县的户未按收入一条核对")
    return "；".join(notes)


def rule_quote(rule: Rule, calendar: Calendar) -> tuple[str, str]:
    """The seed and sentence a rule follows in this campaign: the calendar's own for a rule of its income
    period (``Rule.period``), the catalog's otherwise."""
    if rule.period and calendar.income_period is not None:
        return calendar.income_period.source or calendar.seed, calendar.income_period.quote
    return rule.source, rule.quote


def run_rules(
    calendar: Calendar,
    at: dt.datetime,
    units: list[str] | None = None,
    rules: tuple[Rule, ...] = RULES,
    pins: Pins | None = None,
    workload: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Every problem the catalog finds in the campaign's records (one unit's or all): one row each.

    The records read are those of ``pins`` (``pin_forms``), by default those in force when the run starts.
    """
    return run_catalog(calendar, at, units, rules, pins, workload)[0]


def run_catalog(
    calendar: Calendar,
    at: dt.datetime,
    units: list[str] | None = None,
    rules: tuple[Rule, ...] = RULES,
    pins: Pins | None = None,
    workload: Iterable[str] | None = None,
) -> tuple[pl.DataFrame, list[RuleRun]]:
    """``run_rules``'s problems, and what became of each rule (``RuleRun``): none is skipped silently.
    ``workload``: the households on the campaign's 工作台账, where one is loaded (a rule that needs it is not run
    without)."""
    available = frozenset({"workload"} if workload is not None else set())
    frames = []
    ran: dict[str, list[str]] = {rule.id: [] for rule in rules}
    counts: dict[str, int] = dict.fromkeys(ran, 0)
    reasons: dict[str, list[str]] = {rule.id: [] for rule in rules}
    empty: dict[str, list[str]] = {rule.id: [] for rule in rules}
    notes: dict[str, list[str]] = {rule.id: [] for rule in rules}  # what a rule that ran could not check
    pins = pin_forms(calendar, units) if pins is None else pins
    with duckdb.connect() as connection:
        stored = _views(connection, calendar, units, pins)
        _entered_table(connection, calendar, pins)
        _known_households(connection, workload)
        _county_tables(connection, calendar, rules)
        if any("regions" in rule.sql for rule in rules):
            connection.execute(
                "CREATE OR REPLACE TEMP TABLE regions AS SELECT unnest($codes) AS code",
                {"codes": regions.codes_until(calendar.year)},
            )
        for form_id in calendar.forms:
            form = get_form(form_id)
            roles = roles_of(form)
            runnable = []
            for rule in (rule for rule in rules if not rule.forms or form.id in rule.forms):
                reason = missing_for(calendar, form, rule, roles, available)
                if reason is not None:
                    reasons[rule.id].append(reason)
                elif form_id not in stored:
                    empty[rule.id].append(form_id)
                else:
                    runnable.append(rule)
            if not runnable:
                continue
            _use(connection, form)
            connection.execute(
                f"CREATE OR REPLACE VIEW entered AS SELECT unit, entered_at FROM _entered WHERE form = {form_id!r}"
            )
            for rule in runnable:
                columns = roles.columns
                ran[rule.id].append(form_id)
                sql = rule.sql.format(**columns)
                cursor = connection.execute(sql, _parameters(calendar, at, rule, sql))
                names = [column[0] for column in cursor.description]
                found = pl.DataFrame(cursor.fetchall(), schema=names, orient="row", infer_schema_length=None)
                counts[rule.id] += found.height
                if rule.figures and (note := _unfigured_counties(connection, calendar, rule, columns)):
                    notes[rule.id].append(note)
                if found.is_empty():
                    continue
                if "field" in names:  # a rule over many fields names the one of each problem
                    fields = pl.concat_list(pl.col("field").cast(pl.String).replace(roles.codes))
                else:
                    codes = [roles.codes.get(columns.get(name, name), name) for name in rule.fields]
                    fields = pl.lit(codes, dtype=pl.List(pl.String))
                frames.append(
                    found.select(
                        pl.col("unit").cast(pl.String),
                        pl.col("household").cast(pl.String),
                        pl.col("person").cast(pl.String),
                        fields.alias("fields"),
                        pl.lit(rule.id).alias("rule"),
                        pl.lit(rule.severity).alias("severity"),
                        pl.col("message").cast(pl.String),
                    )
                )
    runs = []
    for rule in rules:
        source, quote = rule_quote(rule, calendar)
        common = {"rule": rule.id, "title": rule.title, "severity": rule.severity, "source": source, "quote": quote}
        if ran[rule.id]:
            runs.append(
                RuleRun(
                    state="ran", forms=tuple(ran[rule.id]), problems=counts[rule.id],
                    reason="；".join(dict.fromkeys(notes[rule.id])), **common,
                )
            )  # fmt: skip
        elif reasons[rule.id]:
            runs.append(RuleRun(state="not_run", forms=(), reason="；".join(dict.fromkeys(reasons[rule.id])), **common))
        elif empty[rule.id]:
            runs.append(
                RuleRun(
                    state="no_data", forms=tuple(empty[rule.id]),
                    reason=f"尚无 {'、'.join(empty[rule.id])} 表的数据", **common,
                )
            )  # fmt: skip
        else:
            wanted = f"只适用于 {'、'.join(rule.forms)} 表，本工作不采集"
            runs.append(RuleRun(state="not_applicable", forms=(), reason=wanted, **common))
    if not frames:
        return _empty(), runs
    return pl.concat(frames).sort(["unit", "household", "rule", "person"], nulls_last=True), runs


def household_context(calendar: Calendar, units: list[str] | None = None, pins: Pins | None = None) -> pl.DataFrame:
    """Per household: unit, household, county (as entered) and the head's name, for the problem lists
    (of the records of ``pins``, as ``run_rules``)."""
    frames = []
    with duckdb.connect() as connection:
        stored = _views(connection, calendar, units, pins)
        for form_id in calendar.forms:
            form = get_form(form_id)
            roles = roles_of(form).columns
            if form_id not in stored or not {"household", "relation", "name"} <= set(roles):
                continue
            _use(connection, form)
            key = roles["household"]
            county = f"any_value(h.{roles['county']})" if "county" in roles else "NULL"
            households = "households" if any(s.id == "households" for s in form.sheets) else None
            join = f"LEFT JOIN {households} h ON h.unit = m.unit AND h.{key} = m.{key}" if households else ""
            cursor = connection.execute(
                f"""
                SELECT m.unit, m.{key} AS household, {county if households else "NULL"} AS county,
                       any_value(m.{roles["name"]}) FILTER (WHERE m.{roles["relation"]} = '户主') AS head_name
                FROM members m {join}
                GROUP BY m.unit, m.{key}
                """
            )
            names = [column[0] for column in cursor.description]
            frames.append(pl.DataFrame(cursor.fetchall(), schema=names, orient="row", infer_schema_length=None))
    if not frames:
        return pl.DataFrame(
            schema={"unit": pl.String, "household": pl.String, "county": pl.String, "head_name": pl.String}
        )
    return pl.concat(frames, how="vertical_relaxed").unique(["unit", "household"], keep="first")


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=PROBLEM_SCHEMA)
