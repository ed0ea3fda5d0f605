"""Airflow campaign DAGs: one per calendar in config/campaigns/ and in the campaign home's campaigns/."""

from __future__ import annotations

from include.dag_factory import build_all
from include.paths import calendar_files

_dags, _problems = build_all(calendar_files())
globals().update(_dags)
if _problems:
    # An invalid calendar must show up as an import error in the UI, not vanish silently.
    raise ValueError("\n".join(_problems.values()))
