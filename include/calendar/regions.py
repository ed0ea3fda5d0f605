"""Administrative divisions from GB/T 2260, as python-stdnum ships them (``stdnum/cn/loc.dat``).

Each code carries the years it was valid (``[1983-]烟台市``, ``[1992-2018]莱芜市``), so the cities of
a province can be derived for the year of any campaign instead of being typed by hand.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from importlib import resources

_SPAN = re.compile(r"^\[(?P<first>\d{4})?-(?P<last>\d{4})?\](?P<name>.+)$")
_LINE = re.compile(r'^(?P<indent>\s*)(?P<code>\d+) (?:province|county)="(?P<names>[^"]*)"')


@dataclass(frozen=True)
class Region:
    """A six-digit GB/T 2260 code and its name in one year."""

    code: str
    name: str


def _name_in_year(names: str, year: int) -> str | None:
    for part in names.split(","):
        match = _SPAN.match(part)
        if not match:
            return part
        first = int(match["first"] or 0)
        last = int(match["last"] or 9999)
        if first <= year <= last:
            return match["name"]
    return None


@functools.cache
def _table() -> dict[str, str]:
    """Six-digit code to its raw name list (with year spans)."""
    text = resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    province = ""
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        if match["indent"]:
            table[province + match["code"]] = match["names"]
        else:
            province = match["code"]
    return table


@functools.cache
def _codes() -> tuple[str, ...]:
    """Every code of the table, in order (sorted once: a province's counties are read at each calendar load)."""
    return tuple(sorted(_table()))


def region(code: str, year: int) -> Region | None:
    """The region with this code in that year, or None if the code did not exist then."""
    names = _table().get(code)
    name = _name_in_year(names, year) if names is not None else None
    return Region(code, name) if name else None


def cities(province_code: str, year: int) -> list[Region]:
    """Prefecture-level units (市, 地区, 州, 盟) of a province valid in that year, by code."""
    prefix = province_code[:2]
    found = []
    for code in _codes():
        if not code.startswith(prefix) or code[2:] == "0000" or code[4:] != "00":
            continue
        # 9000 groups county-level units directly under the province.
        if code[2:4] == "90":
            continue
        item = region(code, year)
        # A municipality (北京, 重庆 …) has no cities: its 0100 and 0200 are "市辖区" and "县".
        if item is not None and item.name not in ("市辖区", "县"):
            found.append(item)
    return found


def counties(city_code: str, year: int) -> list[Region]:
    """County-level units (区, 县, 县级市 …) of a city valid in that year, by code."""
    prefix = city_code[:4]
    codes = _codes()
    found = []
    for code in codes[bisect.bisect_left(codes, prefix) : bisect.bisect_left(codes, prefix + "~")]:
        if not code.endswith("00"):
            item = region(code, year)
            if item is not None:
                found.append(item)
    return found


def first_and_last_year(code: str) -> tuple[int, int]:
    """The first and the last year the code was valid (0 and 9999 where the table gives no bound)."""
    spans = [m for part in _table().get(code, "").split(",") if (m := _SPAN.match(part))]
    if not spans:
        return 0, 9999
    return min(int(m["first"] or 0) for m in spans), max(int(m["last"] or 9999) for m in spans)


def codes_until(year: int) -> list[str]:
    """Every county-level or higher code that existed in some year up to ``year``: the birth places an ID may name.

    An ID keeps the code of the place where it was first issued, so a code abolished since is still valid.
    """
    return [code for code in _codes() if first_and_last_year(code)[0] <= year]
