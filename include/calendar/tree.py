"""The administrative tree a campaign runs down: province → city (市) → county (县/区) → township → village.

A province's plan derives its cities and their counties from GB/T 2260 for the campaign's year
(`regions`); a ``市辖区`` code (370101) groups a city's districts and is not a county. A town's plan has
its villages under the town's office. Every unit has one parent, the office it reports to, up to the
calendar's office at the root.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from include.calendar.regions import Region, cities, counties, first_and_last_year

Level = Literal["province", "city", "county", "township", "village"]
LEVELS: tuple[Level, ...] = ("province", "city", "county", "township", "village")
# How a level is named in the messages units and offices read.
LEVEL_WORDS: dict[str, str] = {"province": "省", "city": "市", "county": "县区", "township": "乡镇", "village": "村"}
# GB/T 2260 names that group codes under a city and are no unit of their own.
GROUPING_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def short_names(name: str) -> tuple[str, ...]:
    """A place's name and the short form clerks write for it: 济南 for 济南市, 历下 for 历下区, 山东 for 山东省."""
    if len(name) >= 3 and name[-1] in "省市区县":
        return name, name[:-1]
    return (name,)


@dataclass(frozen=True)
class Node:
    """One unit of the tree: its code, name, level and the code of the office it reports to (None: the root)."""

    code: str
    name: str
    level: Level
    parent: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"code": self.code, "name": self.name, "level": self.level, "parent": self.parent}


class Tree:
    """The campaign's units by code, with their parents and children, in the order they were added."""

    def __init__(self, nodes: Iterable[Node]) -> None:
        self._nodes: dict[str, Node] = {}
        self._children: dict[str, list[str]] = {}
        for node in nodes:
            self._nodes[node.code] = node
            self._children.setdefault(node.code, [])
            if node.parent is not None:
                self._children.setdefault(node.parent, []).append(node.code)

    def __contains__(self, code: object) -> bool:
        return code in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def get(self, code: str) -> Node | None:
        return self._nodes.get(code)

    def children(self, code: str) -> list[Node]:
        return [self._nodes[child] for child in self._children.get(code, [])]

    def ancestors(self, code: str) -> list[Node]:
        """The offices above the unit, nearest first."""
        found = []
        node = self._nodes.get(code)
        while node is not None and node.parent is not None:
            node = self._nodes[node.parent]
            found.append(node)
        return found

    def within(self, code: str, under: str) -> bool:
        """Whether the unit is ``under`` itself or below it."""
        return code == under or any(node.code == under for node in self.ancestors(code))

    def subtree(self, code: str) -> list[Node]:
        """The unit and every unit below it, depth first."""
        found: list[Node] = []
        stack = [code]
        while stack:
            current = stack.pop()
            if current in self._nodes:
                found.append(self._nodes[current])
                stack.extend(reversed(self._children.get(current, [])))
        return found

    def at_level(self, level: str, under: str | None = None) -> list[Node]:
        """The units of one level, in the tree's order, optionally only those under a unit."""
        nodes = self.subtree(under) if under is not None else list(self._nodes.values())
        return [node for node in nodes if node.level == level]


def cities_at_year_end(province: str, year: int) -> list[Region]:
    """A province's cities as they stand at the end of the year, when its campaign runs. GB/T 2260 counts a year of
    change twice: in 2018 it has 莱芜市 [1992-2018] with its two districts, and 济南市's 莱芜区 and 钢城区 [2018-].
    Where a code of the province is new in the year, the cities that end in that year are gone."""
    found = cities(province, year)
    changed = any(
        first_and_last_year(item.code)[0] == year for city in found for item in [city, *counties(city.code, year)]
    )
    return [city for city in found if not changed or first_and_last_year(city.code)[1] != year]


def county_nodes(city: str, year: int) -> list[Node]:
    """A city's county-level units (区, 县, 县级市 …) in that year, without the grouping codes such as 市辖区.

    GB/T 2260 counts a year of change twice: in 2020 烟台市 has 蓬莱区 (new that year) and still 蓬莱市 and
    长岛县 (merged into it). A campaign runs at the year's end, so where a city has a code new in the year, the
    codes that end in that year are gone.
    """
    found = [item for item in counties(city, year) if item.name not in GROUPING_NAMES]
    spans = {item.code: first_and_last_year(item.code) for item in found}
    if any(first == year for first, _ in spans.values()):
        found = [item for item in found if spans[item.code][1] != year]
    return [Node(item.code, item.name, "county", city) for item in found]
