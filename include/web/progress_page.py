"""The progress page the province and the units open in a browser: HTML and an SVG chart drawn here.

No external script, stylesheet or font: the page is one HTML document. Every value from data is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from include.door.status import STATE_WORDS

COLOURS = {"on_time": "#2e7d32", "late": "#ef6c00", "missing": "#c62828", "pending": "#9e9e9e"}
STATE = {state: (STATE_WORDS[state], colour) for state, colour in COLOURS.items()}
STYLE = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC",sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:12px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:center}
th{background:#ddebf7}td.name{text-align:left;white-space:nowrap}.state{color:#fff;font-weight:bold}
"""


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def chart_svg(units: list[dict[str, Any]]) -> str:
    """Horizontal bars of the share of the roster entered, one per unit, in the page's order."""
    bar, gap, left, width = 18, 6, 110, 360
    height = len(units) * (bar + gap) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" role="img" '
        'aria-label="各单位录入完成比例">'
    ]
    for n, unit in enumerate(units):
        y = 10 + n * (bar + gap)
        share = min(unit["share"] or 0.0, 1.0)
        parts.append(
            f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="12">{escape(unit["name"])}</text>'
        )
        parts.append(f'<rect x="{left}" y="{y}" width="{width}" height="{bar}" fill="#eeeeee"/>')
        parts.append(f'<rect x="{left}" y="{y}" width="{share * width:.1f}" height="{bar}" fill="#1565c0"/>')
        parts.append(f'<text x="{left + width + 6}" y="{y + 13}" font-size="12">{escape(_share(unit["share"]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def progress_html(report: dict[str, Any], *, whole: bool) -> str:
    """The unit × milestone matrix (worst first) and the completion chart; ``whole`` when the reader sees all."""
    milestones = report["milestones"]
    head = "".join(f"<th>{escape(item['name'])}</th>" for item in milestones)
    rows = []
    for unit in report["units"]:
        cells = []
        for item in unit["milestones"]:
            text, colour = STATE.get(item["state"], (item["state"], "#607d8b"))
            cells.append(f'<td class="state" style="background:{colour}" data-state="{item["state"]}">{text}</td>')
        link = f"{escape(report['campaign'])}/units/{escape(unit['unit'])}"
        problems = "—" if unit["open_problems"] is None else unit["open_problems"]
        rows.append(
            f'<tr data-unit="{escape(unit["unit"])}"><td class="name"><a href="{link}">{escape(unit["name"])}</a></td>'
            f"{''.join(cells)}<td>{unit['entered']}</td><td>{_count(unit['roster'])}</td>"
            f"<td>{_share(unit['share'])}</td><td>{problems}</td></tr>"
        )
    scope = "全部单位" if whole else "本单位"
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(report["name"])} 进度</title>'
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{escape(report['name'])} 进度</h1><p>截至 {escape(report['at'])}（{scope}，落后的在前）</p>"
        f'<table id="matrix"><thead><tr><th>单位</th>{head}<th>已录入（户）</th><th>底数（户）</th><th>完成比例</th>'
        f"<th>未整改问题</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h2>录入完成比例</h2>{chart_svg(report['units'])}</body></html>"
    )


def unit_html(report: dict[str, Any], unit: dict[str, Any]) -> str:
    """One unit's drill-down: its reports, entry window, households and problems."""
    names = {item["id"]: item["name"] for item in report["milestones"]}
    rows = "".join(
        f"<tr><td class='name'>{escape(names.get(item['id'], item['id']))}</td>"
        f"<td>{STATE.get(item['state'], (item['state'],))[0]}</td><td>{escape(item['received_at'] or '—')}</td></tr>"
        for item in unit["milestones"]
    )
    window = unit.get("entry_window") or {}
    problems = (
        "尚未校验" if unit["open_problems"] is None else f"{unit['open_problems']} 个（{unit['problems_stage']}）"
    )
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(unit["name"])}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(unit['name'])}（{escape(unit['unit'])}）</h1>"
        f"<p>截至 {escape(report['at'])}</p><table><tr><th>事项</th><th>状态</th><th>收到时间</th></tr>{rows}</table>"
        f"<p>录入窗口：{escape(str(window.get('state', '—')))}；已录入 {unit['entered']} 户，"
        f"底数 {unit['roster'] if unit['roster'] is not None else '—'} 户（{_share(unit['share'])}）；"
        f"未整改问题：{problems}</p></body></html>"
    )
