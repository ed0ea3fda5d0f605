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

PROBLEM_COLUMNS = ("unit", "household", "person", "fields", "rule", "severity", "message")


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
    ):
        key = first(members, test)
        if key:
            columns[role] = key
    for key, f in households.items():
        if f.code and f.type == "money":  # income items are rules' roles by their printed code
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
                if columns is None:
                    continue
                sql = rule.sql.format(**columns)
                params = {"status_date": status_date.replace(tzinfo=None)} if "$status_date" in sql else {}
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
        return pl.DataFrame(
            schema={
                "unit": pl.String,
                "household": pl.String,
                "person": pl.String,
                "fields": pl.List(pl.String),
                "rule": pl.String,
                "severity": pl.String,
                "message": pl.String,
            }
        )
    return pl.concat(frames).sort(["unit", "household", "rule", "person"], nulls_last=True)
