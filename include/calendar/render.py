"""A calendar as people and programs read it: JSON, a Chinese text table, the DAG's doc_md."""

from __future__ import annotations

from typing import Any

from include.calendar.instants import local_iso, local_text
from include.calendar.model import Calendar


def calendar_json(calendar: Calendar) -> dict[str, Any]:
    """The shape of ``campaign calendar show ID --json``: local instants with their +08:00 offset."""
    return {
        "campaign": calendar.id,
        "timezone": calendar.timezone,
        "phases": [
            {
                "id": phase.id.value,
                "name": phase.name,
                "starts": local_iso(phase.starts),
                "ends": local_iso(phase.ends),
                "until": phase.until,  # the seed dates no end of its own: it ends with this item
            }
            for phase in calendar.phases_in_order()
        ],
        "milestones": [
            {
                "id": item.id,
                "name": item.name,
                "phase": item.phase,
                "due": local_iso(item.due),
                "until": item.until,  # the seed dates no due of its own: it is due with this item
                "reporters": calendar.reporters_of(item),
                "level": calendar.level_of(item),
                "by": item.by,
            }
            for item in sorted(calendar.milestones, key=lambda item: item.due)
        ],
        "system_close": local_iso(calendar.system_close.at),
    }


def _reporters_text(calendar: Calendar, codes: list[str]) -> str:
    if not codes:
        return "—"
    if len(codes) == len(calendar.unit_list):
        return f"全部 {len(codes)} 个单位"
    names = calendar.unit_names
    return "、".join(names.get(code, code) for code in codes)


def calendar_markdown(calendar: Calendar) -> str:
    """The calendar as Markdown (the campaign DAG's doc_md); times are local, 24:00 is end of day."""
    closing = local_text(calendar.system_close.at, end=True)
    lines = [
        f"# {calendar.name}",
        "",
        f"日历编号 `{calendar.id}`，时区 {calendar.timezone}（北京时间）。依据：`{calendar.seed}`。",
        f"截止时间“X月Y日24时”即次日 0 时，此前提交为按时。系统关闭：**{closing}**。",
        "",
        "## 阶段",
        "",
        "| 阶段 | 名称 | 开始 | 结束 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{phase.id.value}` | {phase.name} | {local_text(phase.starts)} | {local_text(phase.ends, end=True)}"
        f"{calendar.until_words(phase)} |"
        for phase in calendar.phases_in_order()
    ]
    lines += ["", "## 节点", "", "| 节点 | 阶段 | 截止 | 报送单位 | 材料 |", "|---|---|---|---|---|"]
    for item in sorted(calendar.milestones, key=lambda item: item.due):
        reporters = _reporters_text(calendar, calendar.reporters_of(item))
        report = item.report.value if item.report else "—"
        lines.append(
            f"| {item.name} | `{item.phase}` | {local_text(item.due, end=True)}{calendar.until_words(item)} "
            f"| {reporters} | {report} |"
        )
    if calendar.entry_windows:
        lines += ["", "## 录入窗口", "", "| 窗口 | 开放 | 关闭 | 开放条件 |", "|---|---|---|---|"]
        for window in calendar.entry_windows:
            condition = "、".join(window.requires) or "—"
            if window.approval:
                condition += "，省级审批后开通"
            lines.append(
                f"| {window.name} | {local_text(window.opens)} | {local_text(window.closes, end=True)} | {condition} |"
            )
    placeholder = any(unit.placeholder for unit in calendar.unit_list)
    lines += ["", f"## 单位（{len(calendar.unit_list)} 个{'，占位名单，待替换' if placeholder else ''}）", ""]
    lines.append("、".join(f"{unit.name}（{unit.code}）" for unit in calendar.unit_list))
    if calendar.compressed_from:
        origin = calendar.compressed_from
        lines += [
            "",
            f"> 本日历由 `{origin.id}` 压缩而来：自 {local_text(origin.start)} 起，全程 {origin.span_seconds:.0f} 秒。",
        ]
    return "\n".join(lines) + "\n"


def calendar_text(calendar: Calendar) -> str:
    """The calendar for a terminal: the same content as the doc_md, without Markdown tables' noise."""
    return calendar_markdown(calendar).replace("`", "")
