"""Moved to ``include.orchestration.gates`` (2026-12). Kept so that a ``ReportTrigger`` deferred before the move,
whose row in Airflow's trigger table names ``include.gates.ReportTrigger``, is still rebuilt by the triggerer."""

from include.orchestration.gates import ReportTrigger

__all__ = ["ReportTrigger"]
