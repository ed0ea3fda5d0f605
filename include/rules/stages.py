"""The validation stages of the seed plans, in order; importable at DAG-parse time (no heavy imports)."""

from __future__ import annotations

# 数据分析和问题梳理, 问题数据核查, 完善系统数据
STAGES = ("analysis", "verification", "completion")


def problem_list_name(campaign_id: str, stage: str, unit: str) -> str:
    """The file name of a unit's problem list for a stage, wherever it is written."""
    return f"{campaign_id}-{stage}-{unit}-问题清单.xlsx"
