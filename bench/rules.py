"""Rule engine throughput: a synthetic province of 1,000,000 households, against pandera on pandas.

The province (2020-shandong, 16 cities, about 3.3 M members) is generated vectorised with NumPy
straight into the records store as Parquet, as ingestion would leave it (a workbook per city would
take hours to write with openpyxl). Then, in one run:
- project, full catalog, all units: ``include.rules.engine.run_rules`` (DuckDB over the Parquet files);
- project, full catalog, one unit (济南市);
- project, the benchmark subset of rules: ID check digit, options, one head per household, duplicate
  IDs across households, transfer-income sum, per-capita threshold (our options rule checks every
  coded field of the form; pandera's schema the one column the data fill, A15);
- pandera on pandas, the same subset, on the same data (read from the same Parquet files).
Goals (issue 5): the province in 10 s or less, one unit in 1.5 s or less, at least 5× pandera.

Run: ``make bench-rules`` (or ``.venv/bin/python bench/rules.py [--households N]``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CAMPAIGN = "2020-shandong"
WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK = np.array(list("10X98765432"))
SUBSET = (
    "id_check_digit", "option_in_range", "one_head", "person_in_one_household", "transfer_sum", "new_poor_below_line",
)  # fmt: skip
LINE = 4000.0  # seed 001's line, applied to this province for the per-capita rule of both sides


def generate(calendar, households: int, seed: int) -> int:
    """Write every city's households and members into the records store; return the member count."""
    from include.devtools.synth import unit_prefixes
    from include.forms import records

    rng = np.random.default_rng(seed)
    units = [unit.code for unit in calendar.unit_list]
    per_unit = households // len(units)
    total_members = 0
    serial = 0
    for unit in units:
        prefixes = np.array([int(code) for code in unit_prefixes(calendar, unit)], dtype=np.int64)
        sizes = rng.choice(np.arange(1, 7), size=per_unit, p=[0.10, 0.22, 0.22, 0.24, 0.14, 0.08])
        n = int(sizes.sum())
        household_of = np.repeat(np.arange(per_unit), sizes)
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        is_head = np.zeros(n, dtype=bool)
        is_head[first] = True
        birth_year = rng.integers(1940, 2019, size=n)
        birth = birth_year * 10000 + rng.integers(1, 13, size=n) * 100 + rng.integers(1, 29, size=n)
        seq = (np.arange(serial, serial + n) % 1000).astype(np.int64)
        serial += n
        body = prefixes[rng.integers(0, len(prefixes), size=n)] * 10**11 + birth * 1000 + seq
        digits = (body[:, None] // 10 ** np.arange(16, -1, -1)) % 10
        check = CHECK[(digits * WEIGHTS).sum(axis=1) % 11]
        ids = np.char.add(body.astype(str), check)
        male = (seq % 2) == 1
        members = pl.DataFrame(
            {
                "household_id": ids[first][household_of],
                "A1": "张三",
                "A2": np.where(male, "男", "女"),
                "A4": ids,
                "A5": np.where(is_head, "户主", "子女"),
                "A9": np.where((2020 - birth_year >= 6) & (2020 - birth_year <= 15), "义务教育", "非在校生"),
                "A14": pl.Series([None] * n, dtype=pl.String),
                "A15": np.where(rng.random(n) < 0.9, "是", "否"),
                "unit": unit,
            }
        )
        parts = rng.integers(0, 100, size=(per_unit, 6)).astype(np.float64) * 10
        homes = pl.DataFrame(
            {
                "household_id": ids[first],
                "address_county": "某区",
                "A28": rng.integers(0, 500, size=per_unit).astype(np.float64) * 10,
                "A29": parts.sum(axis=1),
                **{f"A29{letter}": parts[:, i] for i, letter in enumerate("abcdef")},
                "A30": 0.0,
                "A31": 0.0,
                "A32": 0.0,
                "unit": unit,
            }
        )
        records.replace(CAMPAIGN, "2020-1", unit, f"bench-{seed}", {"households": homes, "members": members}, {})
        total_members += n
    return total_members


def pandera_subset(folder_files: dict[str, list[Path]]) -> int:
    """The benchmark subset as a pandera schema on pandas; returns the failure cases found."""
    import pandas as pd
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

    def frame(files: list[Path]) -> pd.DataFrame:
        # Both sides start from the same Parquet files; pandas reads them through Polars (no pyarrow here).
        table = pl.read_parquet(files)
        return pd.DataFrame({name: table[name].to_numpy() for name in table.columns})

    members = frame(folder_files["members"])
    homes = frame(folder_files["households"])

    def check_digit_ok(ids: pd.Series) -> pd.Series:
        total = sum(ids.str[i].astype(int) * int(w) for i, w in enumerate(WEIGHTS))
        return ids.str[17] == pd.Series(CHECK[(total % 11).to_numpy()], index=ids.index)

    heads = members.assign(head=members["A5"] == "户主").groupby(["unit", "household_id"])["head"].sum()
    size = members.groupby(["unit", "household_id"]).size()
    households_of = members.groupby("A4")["household_id"].nunique()
    member_schema = pa.DataFrameSchema(
        {
            "A4": pa.Column(str, [pa.Check(check_digit_ok, error="check digit")]),
            "A15": pa.Column(str, pa.Check.isin(["是", "否"])),
        },
        checks=[
            pa.Check(
                lambda df: df.set_index(["unit", "household_id"]).index.map(heads).to_numpy() == 1,
                error="one head",
            ),
            pa.Check(lambda df: df["A4"].map(households_of).to_numpy() <= 1, error="one household"),
        ],
    )
    per_capita = (homes["A28"] + homes["A29"] + homes["A30"] + homes["A31"] - homes["A32"]) / homes.set_index(
        ["unit", "household_id"]
    ).index.map(size).to_numpy()
    home_schema = pa.DataFrameSchema(
        checks=[
            pa.Check(
                lambda df: (df["A29"] - df[[f"A29{s}" for s in "abcdef"]].sum(axis=1)).abs() <= 0.005,
                error="transfer sum",
            ),
            pa.Check(lambda df: per_capita < LINE, error="per capita"),
        ]
    )
    failures = 0
    for schema, frame in ((member_schema, members), (home_schema, homes)):
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as errors:
            failures += len(errors.failure_cases)
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.environ["CAMPAIGN_HOME"] = tempfile.mkdtemp(prefix="bench-rules-")
    from include.calendar.instants import parse_instant
    from include.calendar.model import Threshold
    from include.calendar.registry import load_campaign
    from include.forms import records
    from include.rules.catalog import RULES
    from include.rules.engine import run_rules

    calendar = load_campaign(CAMPAIGN)
    # The per-capita rule needs a line; Shandong's plan names none, so seed 001's is lent to both sides.
    thresholds = {**calendar.thresholds, "poverty_line_yuan": Threshold(value=LINE, unit="元", quote="4000元")}
    calendar = calendar.model_copy(update={"thresholds": thresholds})
    calendar._unit_list = load_campaign(CAMPAIGN).unit_list
    at = parse_instant("2020-12-02T09:00+08:00")
    start = time.perf_counter()
    members = generate(calendar, args.households, args.seed)
    print(f"生成 {args.households:,} 户、{members:,} 人：{time.perf_counter() - start:.1f} s", flush=True)

    def timed(label: str, fn) -> float:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        count = f"pandera 失败项 {result:,}" if isinstance(result, int) else f"问题 {result.height:,}"
        print(f"  {label:<44}{seconds:>8.2f} s   {count}", flush=True)
        return seconds

    subset = tuple(rule for rule in RULES if rule.id in SUBSET)
    whole = timed("本项目：全部规则，全省", lambda: run_rules(calendar, at))
    one = timed("本项目：全部规则，济南市", lambda: run_rules(calendar, at, units=["370100"]))
    ours = timed("本项目：基准子集，全省", lambda: run_rules(calendar, at, rules=subset))
    files = {sheet: records.sheet_files(CAMPAIGN, "2020-1", sheet) for sheet in ("members", "households")}
    theirs = timed("pandera（pandas）：基准子集，全省", lambda: pandera_subset(files))
    print()
    print(f"全省 {whole:.2f} s（目标 ≤ 10 s）：{'达到' if whole <= 10 else '未达到'}")
    print(f"单个市 {one:.2f} s（目标 ≤ 1.5 s）：{'达到' if one <= 1.5 else '未达到'}")
    print(f"对 pandera：{theirs / ours:.1f}×（目标 ≥ 5×）：{'达到' if theirs / ours >= 5 else '未达到'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
