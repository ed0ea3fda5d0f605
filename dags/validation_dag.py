"""The Airflow validation DAG (数据校验与问题清单): ops staff trigger it with campaign, unit (or all) and stage."""

from __future__ import annotations

from include.orchestration.validation_dag import build_validation_dag, campaign_ids
from include.paths import calendar_files

dag = build_validation_dag(campaign_ids(calendar_files()))
