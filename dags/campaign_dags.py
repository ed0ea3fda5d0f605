"""Airflow campaign DAGs: one per calendar in config/campaigns/ and in the campaign home's campaigns/.

An invalid calendar shows up as a DAG named 日历文件有误 listing its problems; the others still load.
"""

from __future__ import annotations

from include.orchestration.dag_factory import build_all
from include.paths import calendar_files

globals().update(build_all(calendar_files()))
