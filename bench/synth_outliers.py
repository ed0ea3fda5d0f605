"""How far synth's clean households lie from their county's per-capita income, by DHIS2's modified z-score.

Issue 16's outlier warnings (Part 2, item 5) flag a household whose per-capita net income is far from its county's
median: |M| = 0.6745 · |x − median| / MAD above a threshold (3.5 in DHIS2). The ground truth needs clean synthetic
data to have none; this prints, per calendar, the largest |M| and the largest ratio to the median that synth's clean
households reach (over ``--seeds`` seeds, 4 units of 120 households each, counties of 8 households or more), so
that the threshold can be compared with what synth makes. Not a timing: nothing here goes into a test.

    .venv/bin/python bench/synth_outliers.py [--seeds 12]
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

from include.calendar.registry import load_campaign
from include.devtools.synth import Synth, default_form, unit_prefixes
from include.rules.catalog import INCOME_ITEMS_2017

CALENDARS = ("2020-shandong", "2017-shanxi", "2023-zibo-jixia", "2020-chongqing-longju")


def per_capita(row: dict[str, object], size: int, form_id: str) -> float:
    if form_id == "2017-2":
        return sum(float(row.get(key) or 0) for key in INCOME_ITEMS_2017) / size
    gross = sum(float(row.get(key) or 0) for key in ("A28", "A29", "A30", "A31"))
    return (gross - float(row.get("A32") or 0)) / size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=12)
    args = parser.parse_args()
    print("calendar                 form    max |M|  max ratio to median  (DHIS2 flags |M| > 3.5)")
    for campaign in CALENDARS:
        calendar = load_campaign(campaign)
        form = default_form(calendar)
        worst_m = worst_ratio = 0.0
        for seed in range(args.seeds):
            synth = Synth(calendar, form, seed, 0.0)
            groups: dict[tuple[str, object], list[float]] = defaultdict(list)
            for unit in calendar.unit_codes[:4]:
                prefixes = unit_prefixes(calendar, unit)
                for _ in range(120):
                    household = synth.household(synth.rng.choice(prefixes))
                    county = household.row.get("address_county") or household.row.get("county")
                    groups[(unit, county)].append(per_capita(household.row, len(household.members), form.id))
            for values in groups.values():
                if len(values) < 8:
                    continue
                median = statistics.median(values)
                mad = statistics.median(abs(value - median) for value in values)
                if mad == 0:
                    continue
                worst_m = max(worst_m, max(abs(0.6745 * (value - median) / mad) for value in values))
                if median > 0:
                    worst_ratio = max(worst_ratio, max(value / median for value in values))
        print(f"{campaign:24} {form.id:7} {worst_m:7.2f}  {worst_ratio:7.2f}")


if __name__ == "__main__":
    main()
