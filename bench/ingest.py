"""Ingestion throughput: a 100,000-member workbook through the project's ingest, against pandas and frictionless.

All on the same file in one run (2020-shandong 附件1, written by ``campaign synth`` in the project's
template: households, members and helpers sheets):
- project:      ``include.door.ingest.ingest`` end to end: the whole-file checks, reading (the sparse cell reader of
                include/forms/sheetxml.py, sheets in parallel threads), every row checked for type, option,
                required and format (Polars), stored as Parquet atomically, audited; then the same ingest
                by the code of an earlier commit (``--against``, default: the last one before the sparse
                reader, which read with fastexcel), and with Polars' allocator defaults (include/__init__.py);
- pandas:       ``pandas.read_excel(engine="openpyxl")`` of the three data sheets (reading only);
- frictionless: ``frictionless validate`` of the three data sheets (reading and type inference);
- and, to choose the reader, the bare readers: python-calamine ``to_python()`` and fastexcel, each
  reading the three sheets one after another.
Goal (issue 4): at least 50,000 member rows per second end to end and at least 5× the pandas figure; issue 13:
no slower than before the sparse reader.

Then peak memory (the resident maximum of a fresh process that does only that), beside the time:
- the 100,000-member workbook: the project's ingest against fastexcel reading its three sheets;
- the sparse-dimension file of issue 13: 济南市's 40-household workbook with one space typed in cell
  AT1048576 of 家庭成员 (a 44 KB file): a dense reader holds 46 × 1,048,576 cells, the project's the cells.

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
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAMPAIGN = "2020-shandong"
UNIT = "370100"
SHEETS = ("户", "家庭成员", "帮扶责任人")
BEFORE_ISSUE_13 = "3ea656d"  # fastexcel's dense read, before the sparse cell reader


def workbook(members: int) -> tuple[Path, int]:
    """The cached synthetic workbook with at least ``members`` member rows, and its member count."""
    from include.calendar.registry import load_campaign
    from include.devtools.synth import synthesize

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
    from include.door.ingest import ingest
    from include.door.submissions import Actor, submit_report
    from include.store.db import make_engine, upgrade

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


RUNS_BODY = (
    "import statistics, sys\n"
    "sys.path[:0] = [{root!r}, {root!r} + '/bench']\n"
    "import ingest\n"
    "from pathlib import Path\n"
    "print(statistics.median(ingest.project(Path({path!r})) for _ in range({runs})))\n"
)


def project_elsewhere(path: Path, runs: int, root: Path = ROOT, env: dict[str, str] | None = None) -> float:
    """The median of ``runs`` ingests in a fresh interpreter: the code under ``root`` (another checkout), or
    this one with ``env`` added (Polars' allocator setting is read once, when Polars is loaded)."""
    import subprocess

    code = RUNS_BODY.format(root=str(root), path=str(path), runs=runs)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, env={**os.environ, **(env or {})}
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def project_at(revision: str, path: Path, runs: int) -> float:
    """The same ingest by the code of an earlier commit (a temporary git worktree of this repository)."""
    from worktree import worktree

    with worktree(revision) as folder:
        return project_elsewhere(path, runs, root=folder)


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


def sparse_workbook() -> Path:
    """The 40-household workbook with one space in AT1048576 of 家庭成员 (cached)."""
    from include.calendar.registry import load_campaign
    from include.devtools.synth import synthesize

    folder = ROOT / ".campaign" / "bench" / "sparse"
    path = folder / "sparse-AT1048576.xlsx"
    if path.exists():
        return path
    synthesize(load_campaign(CAMPAIGN), folder, households=40, defect_rate=0.0, seed=1, units=[UNIT])
    source = folder / f"{CAMPAIGN}-2020-1-{UNIT}.xlsx"
    far = '<row r="1048576"><c r="AT1048576" t="inlineStr"><is><t xml:space="preserve"> </t></is></c></row>'
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        names = _sheet_names(source)
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == names["家庭成员"]:
                data = data.replace(b"</sheetData>", far.encode() + b"</sheetData>")
            zout.writestr(item, data)
    return path


def _sheet_names(path: Path) -> dict[str, str]:
    """Sheet name → its part, in a workbook openpyxl wrote (sheetN.xml in sheet order)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    names = wb.sheetnames
    wb.close()
    return {name: f"xl/worksheets/sheet{i}.xml" for i, name in enumerate(names, start=1)}


PEAK = (
    "import json, sys, time\n"
    "def peak_mb():  # VmHWM: this process image's own peak (ru_maxrss would carry the parent's over exec)\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            return int(line.split()[1]) / 1024\n"
    "sys.path.insert(0, {root!r})\n"
    "start = time.perf_counter()\n"
    "{body}\n"
    "print(json.dumps({{'seconds': time.perf_counter() - start,"
    " 'peak_mb': peak_mb()}}))\n"
)
INGEST_BODY = (
    "import os, tempfile, pendulum\n"
    "os.environ['CAMPAIGN_HOME'] = tempfile.mkdtemp(prefix='bench-peak-')\n"
    "from include.calendar.registry import load_campaign\n"
    "from include.door.ingest import ingest\n"
    "from include.store.db import make_engine, upgrade\n"
    "from include.door.submissions import Actor, submit_report\n"
    "calendar = load_campaign({campaign!r})\n"
    "engine = make_engine(upgrade())\n"
    "submit_report(engine, calendar, unit={unit!r}, milestone_id='completion_report',"
    " at=pendulum.parse('2020-11-12T10:00:00+08:00'), actor=Actor(name='bench'))\n"
    "start = time.perf_counter()\n"
    "result = ingest(engine, calendar, __import__('pathlib').Path({path!r}), {unit!r},"
    " pendulum.parse('2020-11-20T10:00:00+08:00'), actor='bench')\n"
    "assert result.status == 'stored', result\n"
)
FASTEXCEL_BODY = (
    "import fastexcel\n"
    "reader = fastexcel.read_excel({path!r})\n"
    "for sheet in {sheets!r}: reader.load_sheet(sheet, dtypes='string').to_polars()\n"
)


def peak(body: str) -> tuple[float, float]:
    """(seconds, peak resident MB) of ``body`` run alone in a fresh interpreter (imports not timed)."""
    import json
    import subprocess

    code = PEAK.format(root=str(ROOT), body=body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["seconds"], figures["peak_mb"]


def memory(path: Path, sheets: tuple[str, ...]) -> tuple[tuple[float, float], tuple[float, float]]:
    ours = peak(INGEST_BODY.format(campaign=CAMPAIGN, unit=UNIT, path=str(path)))
    dense = peak(FASTEXCEL_BODY.format(path=str(path), sheets=sheets))
    return ours, dense


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="pandas and frictionless once, not --runs times")
    parser.add_argument(
        "--against",
        default=BEFORE_ISSUE_13,
        help="also time the ingest of this commit (default: the last one before the sparse reader); '' for none",
    )
    args = parser.parse_args()
    path, members = workbook(args.members)
    print(f"文件：{path}（{path.stat().st_size / 1024 / 1024:.1f} MB，家庭成员 {members} 行）", flush=True)
    figures: dict[str, float] = {}
    figures["project ingest (end to end)"] = statistics.median(project(path) for _ in range(args.runs))
    print(f"  project ingest: {figures['project ingest (end to end)']:.2f} s", flush=True)
    if args.against:
        figures[f"project ingest at {args.against[:7]}"] = project_at(args.against, path, args.runs)
    figures["project ingest, allocator defaults"] = project_elsewhere(path, args.runs, env={"_RJEM_MALLOC_CONF": ""})
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
    print()
    print(f"{'内存峰值（独立进程）':<36}{'秒':>9}{'峰值 MB':>10}{'fastexcel 秒':>14}{'fastexcel MB':>14}{'内存比':>8}")
    sparse = sparse_workbook()
    for label, measured in (
        (f"{members:,} 人的工作簿", path),
        (f"稀疏文件 {sparse.stat().st_size // 1024} KB（AT1048576 一个空格）", sparse),
    ):
        (seconds, ours_mb), (dense_seconds, dense_mb) = memory(measured, SHEETS)
        ratio = dense_mb / ours_mb
        print(f"{label:<36}{seconds:>9.2f}{ours_mb:>10.0f}{dense_seconds:>14.2f}{dense_mb:>14.0f}{ratio:>7.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
