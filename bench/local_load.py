"""A local Airflow under a campaign's load: compressed campaigns played on this machine, Airflow's own limits
against the measured ones (``LOCAL_LIMITS`` in include/devtools/local_airflow.py), side by side.

Each run is ``campaign simulate ID --span SPAN`` as a whole process: a real Airflow (four components under the
watchdog, LocalExecutor, SQLite), every city played through the HTTP API, and for 2017-shanxi the province's
officer answering through Airflow's HITL API (approve, reject with a reason, leave one to time out). Per run:

- verdict: the simulation's own (every report state, gate, approval task, approval record, window and
  instant as played), or "hang" when the campaign never finished;
- late: seconds each instant task (a phase's start, a due instant, a window's opening or closing, the
  system's closing) finished after its instant (median, 95th percentile, worst): what the load costs;
- retried: task instances that needed a second try (a gate whose door closed without its report fails at once,
  without one); mismatch: the scheduler's "state changed externally" verdicts; api 5xx: the api-server's 5xx
  answers; timeouts: the tasks' API ReadTimeouts; locked: "database is locked" in any log; restarts: components
  the watchdog started again.

Issue 17 saw, with Airflow's defaults on this 2-core machine, two hung runs of three, 500s, "database is locked"
and a dead triggerer. The tally of ten consecutive Shanxi runs with the measured limits is the issue's
acceptance: ``bench/local_load.py --campaigns 2017-shanxi --settings measured --runs 10``.

Run: ``.venv/bin/python bench/local_load.py [--campaigns 2017-shanxi,2020-shandong] [--settings
airflow-defaults,measured] [--runs N] [--span 4m]``; about 7 minutes a run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = Path(sys.executable).parent / "campaign"


def one_run(campaign: str, setting: str, span: str, out: Path) -> dict:
    outcome = out / f"{campaign}-{setting}-{time.monotonic_ns()}.json"
    command = [str(CAMPAIGN), "simulate", campaign, "--span", span, "--outcome", str(outcome)]
    command += ["--airflow-limits", setting]
    start = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT)
        code, tail = done.returncode, done.stdout[-3000:] + done.stderr[-2000:]
    except subprocess.TimeoutExpired:
        code, tail = -1, "timeout"
    seconds = time.monotonic() - start
    if not outcome.exists():
        return {"verdict": "hang", "seconds": seconds, "tail": tail}
    result = json.loads(outcome.read_text(encoding="utf-8"))
    load = result["load"]
    latencies = load["instant_lateness"] or [0.0]
    return {
        "verdict": "pass" if code == 0 else "fail",
        "seconds": seconds,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "worst": latencies[-1],
        "retried": load["retried"],
        "mismatch": load["state_mismatch"],
        "api_5xx": load["api_errors"],
        "timeouts": load["api_timeouts"],
        "locked": load["locked"],
        "restarts": len(load["restarts"]),
        "approvals": result.get("approval_tasks", {}),
        "problems": result.get("problems", []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", default="2017-shanxi,2020-shandong")
    parser.add_argument("--settings", default="airflow-defaults,measured")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--span", default="4m")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="local-load-"))
    header = f"{'campaign':<16}{'limits':<18}{'run':>4}  {'verdict':<8}{'late50':>7}{'late95':>7}{'worst':>7}"
    header += f"{'retried':>8}{'mismatch':>9}{'api5xx':>7}{'timeouts':>9}{'locked':>7}{'restarts':>9}"
    print(header + "  approval tasks", flush=True)
    results: dict[tuple[str, str], list[dict]] = {}
    for campaign in args.campaigns.split(","):
        for setting in args.settings.split(","):
            for n in range(1, args.runs + 1):
                run = one_run(campaign, setting, args.span, out)
                results.setdefault((campaign, setting), []).append(run)
                line = f"{campaign:<16}{setting:<18}{n:>4}  {run['verdict']:<8}"
                if run["verdict"] == "hang":
                    print(line + f"  (no outcome after {run['seconds']:.0f} s) {run['tail'][-300:]!r}", flush=True)
                    continue
                states = sorted(run["approvals"].values())
                approvals = " ".join(f"{state}×{states.count(state)}" for state in sorted(set(states))) or "—"
                print(
                    line + f"{run['p50']:>7.1f}{run['p95']:>7.1f}{run['worst']:>7.1f}{run['retried']:>8}"
                    f"{run['mismatch']:>9}{run['api_5xx']:>7}{run['timeouts']:>9}{run['locked']:>7}"
                    f"{run['restarts']:>9}  {approvals}",
                    flush=True,
                )
                for problem in run["problems"][:5]:
                    print(f"      - {problem}", flush=True)
    print()
    print("tally (late: instant tasks after their instant, s; ratio: Airflow's defaults over the measured limits)")
    for campaign in args.campaigns.split(","):
        rows = {setting: results.get((campaign, setting), []) for setting in args.settings.split(",")}
        for setting, runs in rows.items():
            passed = sum(run["verdict"] == "pass" for run in runs)
            hung = sum(run["verdict"] == "hang" for run in runs)
            measured = [run for run in runs if run["verdict"] != "hang"]
            p95 = median_p95(runs)
            errors = sum(run["api_5xx"] for run in measured)
            locked = sum(run["locked"] for run in measured)
            print(
                f"  {campaign} {setting}: {passed}/{len(runs)} passed, {hung} hung; median p95 late {p95:.1f} s; "
                f"api 5xx {errors}; locked {locked}; mismatch {sum(run['mismatch'] for run in measured)}; "
                f"timeouts {sum(run['timeouts'] for run in measured)}"
            )
        if {"airflow-defaults", "measured"} <= set(rows) and all(rows.values()):
            ratio = median_p95(rows["airflow-defaults"]) / max(median_p95(rows["measured"]), 1e-9)
            print(f"  {campaign}: p95 lateness of the instant tasks, Airflow's defaults / measured = {ratio:.2f}")


def median_p95(runs: list[dict]) -> float:
    finished = [run for run in runs if run["verdict"] != "hang"]
    return statistics.median([run["p95"] for run in finished]) if finished else float("nan")


if __name__ == "__main__":
    main()
