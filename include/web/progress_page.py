"""The pages' HTML, from the Jinja2 templates beside this module (include/web/templates): the campaigns a link
covers, the unit × milestone matrix with its SVG chart, one unit's drill-down, and the one-line message pages.

No external script, stylesheet or font: each page is one HTML document. Every value from data is escaped
(autoescape is on for every template).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from include.calendar.instants import local_text
from include.door.status import STATE_WORDS, WINDOW_WORDS
from include.progress.report import workload_words
from include.rules.problem_list import STAGE_TEXT

TEMPLATES = Path(__file__).resolve().parent / "templates"
COLOURS = {"on_time": "#2e7d32", "late": "#ef6c00", "missing": "#c62828", "pending": "#9e9e9e", "not_owed": "#eeeeee"}


def _dash(value: int | None) -> str:
    return "—" if value is None else str(value)


def _when(value: str | None) -> str:
    """An instant as the pages show it, in Beijing time to the minute (2026-12-04 09:56), not ISO-8601."""
    return "—" if not value else local_text(dt.datetime.fromisoformat(value))


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters |= {
        "dash": _dash,
        "share": _share,
        "state_word": lambda state: STATE_WORDS.get(state, state),
        "window_word": lambda window: WINDOW_WORDS.get(window["state"], window["state"]) if window else "—",
        "colour": lambda state: COLOURS.get(state, "#607d8b"),
        "workload": workload_words,
        "when": _when,
        "stage_word": lambda stage: STAGE_TEXT.get(stage, stage),
    }
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def progress_html(report: dict[str, Any], *, whole: bool) -> str:
    """The unit × milestone matrix (worst first), the reporting rates and the completion chart; ``whole`` when the
    reader sees all (the rates are then the province's over its children, else the reader's own unit's)."""
    offices = {unit["parent"] for unit in report["units"]} if whole else {unit["unit"] for unit in report["units"]}
    rates = [rate for rate in report["rates"] if rate["office"] in offices and rate["due"]]
    names = {item["id"]: item["name"] for level in report["levels"] for item in level["milestones"]}
    return render("progress.html", report=report, whole=whole, rates=rates, names=names)


def unit_html(report: dict[str, Any], unit: dict[str, Any]) -> str:
    """One unit's drill-down: its milestones, entry window, households and problems; the reporting rates of the
    units below it and their rows, lagging first, each a link one level further down."""
    names = {item["id"]: item["name"] for level in report["levels"] for item in level["milestones"]}
    children = [row for level in report["levels"] for row in level["units"] if row["parent"] == unit["unit"]]
    columns = next(
        (level["milestones"] for level in report["levels"] if children and level["level"] == children[0]["level"]), []
    )
    rates = [rate for rate in report["rates"] if rate["office"] == unit["unit"] and rate["due"]]
    return render("unit.html", report=report, unit=unit, names=names, children=children, columns=columns, rates=rates)


def index_html(campaigns: list[str]) -> str:
    """The campaigns the reader's token covers, each a link to its progress page."""
    return render("index.html", campaigns=campaigns)


def message_html(title: str, text: str) -> str:
    """A page that says one thing: why the reader cannot see a page, and what to do."""
    return render("message.html", title=title, text=text)
