"""Ingestion throughput: a 100,000-member workbook through the project's ingest, against pandas and frictionless.

All on the same file in one run (2020-shandong 附件1, written by ``campaign synth`` in the project's
template: households, members and helpers sheets):
- project:      ``include.ingest.ingest`` end to end: the whole-file checks, reading (fastexcel,
                sheets in parallel threads), every row checked for type, option, required and format
                (Polars), stored as Parquet atomically, audited;
- pandas:       ``pandas.read_excel(engine="openpyxl")`` of the three data sheets (reading only);
- frictionless: ``frictionless validate`` of the three data sheets (reading and type inference);
- and, to choose the reader, the bare readers: python-calamine ``to_python()`` and fastexcel, each
  reading the three sheets one after another.
Goal (issue 4): at least 50,000 member rows per second end to end and at least 5× the pandas figure.

Run: ``make bench-ingest`` (or ``.venv/bin/python bench/ingest.py [--members N] [--skip-slow]``).
The workbook is cached under ``.campaign/bench/``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAMPAIGN = "2020-shandong"
UNIT = "370100"
SHEETS = ("户", "家庭成员", "帮扶责任人")


def workbook(members: int) -> tuple[Path, int]:
    """The cached synthetic workbook with at least ``members`` member rows, and its member count."""
    from include.calendar.registry import load_campaign
    from include.synth import synthesize

    folder = ROOT / ".campaign" / "bench" / f"ingest-{members}"
    path = folder / f"{CAMPAIGN}-2020-1-{UNIT}.xlsx"
    if path.exists() and not _current_template(path):
        path.unlink()
    if not path.exists():
        print(f"生成 {members} 人的工作簿（只需一次）……", flush=True)
        calendar = load_campaign(CAMPAIGN)
        households = int(members / 3.34) + 1
        truth = synthesize(calendar, folder, households=households, defect_rate=0.0, seed=1, units=[UNIT])
        print(f"  {truth['files'][0]['households']} 户，{truth['files'][0]['members']} 人", flush=True)
    import fastexcel

    count = fastexcel.read_excel(path).load_sheet("家庭成员", dtypes="string").height
    return path, count


def _current_template(path: Path) -> bool:
    """A workbook cached by an older version of the template writer is written anew."""
    import zipfile

    from include.forms.template import MARKER_PREFIX

    with zipfile.ZipFile(path) as archive:
        return f"{MARKER_PREFIX}form".encode() in archive.read("xl/workbook.xml")


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def project(path: Path) -> float:
    """End-to-end ingest into a fresh campaign home each time (a re-upload of the same bytes is a no-op)."""
    home = tempfile.mkdtemp(prefix="bench-ingest-")
    os.environ["CAMPAIGN_HOME"] = home
    import pendulum

    from include.calendar.registry import load_campaign
    from include.ingest import ingest
    from include.store.db import make_engine, upgrade
    from include.submissions import Actor, submit_report

    calendar = load_campaign(CAMPAIGN)
    engine = make_engine(upgrade())
    submit_report(
        engine,
        calendar,
        unit=UNIT,
        milestone_id="completion_report",
        at=pendulum.parse("2020-11-12T10:00:00+08:00"),
        actor=Actor(name="bench"),
    )
    at = pendulum.parse("2020-11-20T10:00:00+08:00")
    start = time.perf_counter()
    result = ingest(engine, calendar, path, UNIT, at, actor="bench")
    elapsed = time.perf_counter() - start
    engine.dispose()
    assert result.status == "stored" and not result.rejected_rows, result.rejected_rows[:3]
    return elapsed


def pandas_read(path: Path) -> None:
    import pandas as pd

    pd.read_excel(path, sheet_name=list(SHEETS), engine="openpyxl", dtype=str)


def frictionless_validate(path: Path) -> None:
    from frictionless import Resource, formats, validate

    for sheet in SHEETS:
        # A relative path with a basepath: frictionless refuses an absolute path (and says so only in the report).
        resource = Resource(path=path.name, basepath=str(path.parent), control=formats.ExcelControl(sheet=sheet))
        report = validate(resource, limit_errors=10**9)  # the default stops reading after 1,000 errors
        task = report.tasks[0]
        assert task.stats.get("rows", 0) > 0, [error.message for error in task.errors][:3]


def calamine_read(path: Path) -> None:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    for sheet in SHEETS:
        book.get_sheet_by_name(sheet).to_python()


def fastexcel_read(path: Path) -> None:
    import fastexcel

    reader = fastexcel.read_excel(path)
    for sheet in SHEETS:
        reader.load_sheet(sheet, dtypes="string").to_polars()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="pandas and frictionless once, not --runs times")
    args = parser.parse_args()
    path, members = workbook(args.members)
    print(f"文件：{path}（{path.stat().st_size / 1024 / 1024:.1f} MB，家庭成员 {members} 行）", flush=True)
    figures: dict[str, float] = {}
    figures["project ingest (end to end)"] = statistics.median(project(path) for _ in range(args.runs))
    print(f"  project ingest: {figures['project ingest (end to end)']:.2f} s", flush=True)
    figures["fastexcel (read only)"] = timed(lambda: fastexcel_read(path), args.runs)
    figures["python-calamine to_python (read only)"] = timed(lambda: calamine_read(path), args.runs)
    slow_runs = 1 if args.skip_slow else args.runs
    figures["pandas.read_excel openpyxl (read only)"] = timed(lambda: pandas_read(path), slow_runs)
    print(f"  pandas: {figures['pandas.read_excel openpyxl (read only)']:.2f} s", flush=True)
    figures["frictionless validate"] = timed(lambda: frictionless_validate(path), slow_runs)
    ours = figures["project ingest (end to end)"]
    print()
    print(f"{'方法':<42}{'秒':>9}{'成员行/秒':>12}{'相对本项目':>12}")
    for name, seconds in figures.items():
        print(f"{name:<42}{seconds:>9.2f}{members / seconds:>12,.0f}{seconds / ours:>11.1f}×")
    rate = members / ours
    pandas_ratio = figures["pandas.read_excel openpyxl (read only)"] / ours
    print()
    print(f"本项目端到端：{rate:,.0f} 成员行/秒（目标 ≥ 50,000）：{'达到' if rate >= 50_000 else '未达到'}")
    print(f"对 pandas：{pandas_ratio:.1f}×（目标 ≥ 5×）：{'达到' if pandas_ratio >= 5 else '未达到'}")
    print(f"对 frictionless：{figures['frictionless validate'] / ours:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
