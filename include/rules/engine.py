"""The rule engine: every rule of the catalog as one set-based DuckDB query over the records store.

DuckDB reads the Parquet files in force (include/records.py) directly; there is no Python loop over
rows. DESIGN.md's measurement on 2 cores (2.5 M persons, 9 rules: DuckDB about 2 s, Polars about
3 s, SQLite and PostgreSQL about 21 s) chose it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import polars as pl

from include import records
from include.calendar import Calendar
from include.forms.spec import FieldSpec, FormSpec, get_form
from include.rules.catalog import RULES, Rule

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

    def resolve(self, rule: Rule) -> dict[str, str] | None:
        if not all(role in self.columns for role in rule.roles):
            return None
        return self.columns


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
        if f.code:  # household items (incomes …) are rules' roles by their printed code
            columns[f.code] = key
    codes = {f.key: f.code or f.label for f in form.fields}
    return Roles(columns=columns, codes=codes)


def _views(connection: duckdb.DuckDBPyConnection, calendar: Calendar, form: FormSpec, units: list[str] | None) -> bool:
    found = False
    for sheet in ("households", "members"):
        files = records.sheet_files(calendar.id, form.id, sheet, units)
        if files:
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            connection.execute(f"CREATE OR REPLACE VIEW {sheet} AS SELECT * FROM read_parquet([{listed}])")
            found = True
    return found


def run_rules(
    calendar: Calendar, at: dt.datetime, units: list[str] | None = None, rules: tuple[Rule, ...] = RULES
) -> pl.DataFrame:
    """Every problem the catalog finds in the campaign's records (one unit's or all): one row each."""
    frames = []
    status_date = calendar.status_date.at if calendar.status_date else at
    for form_id in calendar.forms:
        form = get_form(form_id)
        roles = roles_of(form)
        with duckdb.connect() as connection:
            if not _views(connection, calendar, form, units):
                continue
            for rule in rules:
                columns = roles.resolve(rule)
                if rule.forms and form.id not in rule.forms:
                    continue
                if columns is None or not all(name in calendar.thresholds for name in rule.params):
                    continue
                sql = rule.sql.format(**columns)
                params = {name: float(calendar.thresholds[name].value) for name in rule.params}
                if "$status_date" in sql:
                    params["status_date"] = status_date.replace(tzinfo=None)
                cursor = connection.execute(sql, params)
                names = [column[0] for column in cursor.description]
                found = pl.DataFrame(cursor.fetchall(), schema=names, orient="row", infer_schema_length=None)
                if found.is_empty():
                    continue
                fields = [roles.codes.get(columns.get(name, name), name) for name in rule.fields]
                frames.append(
                    found.select(
                        pl.col("unit").cast(pl.String),
                        pl.col("household").cast(pl.String),
                        pl.col("person").cast(pl.String),
                        pl.lit(fields, dtype=pl.List(pl.String)).alias("fields"),
                        pl.lit(rule.id).alias("rule"),
                        pl.lit(rule.severity).alias("severity"),
                        pl.col("message").cast(pl.String),
                    )
                )
    if not frames:
        return _empty()
    return pl.concat(frames).sort(["unit", "household", "rule", "person"], nulls_last=True)


def household_context(calendar: Calendar, units: list[str] | None = None) -> pl.DataFrame:
    """Per household: unit, household, county (as entered) and the head's name, for the problem lists."""
    frames = []
    for form_id in calendar.forms:
        form = get_form(form_id)
        roles = roles_of(form).columns
        if not {"household", "relation", "name"} <= set(roles):
            continue
        county = f"any_value(h.{roles['county']})" if "county" in roles else "NULL"
        with duckdb.connect() as connection:
            if not _views(connection, calendar, form, units):
                continue
            has_households = bool(records.sheet_files(calendar.id, form.id, "households", units))
            join = f"LEFT JOIN households h ON h.unit = m.unit AND h.{roles['household']} = m.{roles['household']}"
            cursor = connection.execute(
                f"""
                SELECT m.unit, m.{roles["household"]} AS household,
                       {county if has_households else "NULL"} AS county,
                       any_value(m.{roles["name"]}) FILTER (WHERE m.{roles["relation"]} = '户主') AS head_name
                FROM members m {join if has_households else ""}
                GROUP BY m.unit, m.{roles["household"]}
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
