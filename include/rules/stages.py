"""The validation stages of the seed plans, in order; importable at DAG-parse time (no heavy imports)."""

from __future__ import annotations

# 数据分析和问题梳理, 问题数据核查, 完善系统数据
STAGES = ("analysis", "verification", "completion")
