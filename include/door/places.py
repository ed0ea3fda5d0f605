"""Whose households a unit may upload: those whose address lies in its own part of the tree.

Seed 000 gives each level its own: "市不漏县，县不漏乡，乡不漏村". A city uploads for its counties, a village
for itself; a household that lives elsewhere belongs to the unit of its address, and stored under this one
it would be counted twice, or reminded and verified by the wrong office. Its row is rejected with what the
address says and what it should say; the rest of the file is stored as usual.

The address columns of the forms (省、市、县、乡、村) hold names; they are compared with the names GB/T 2260
gives the unit's province, city and counties in the campaign's year (or their short forms: 济南, 历下), and with
the village's own name where a roster names it (not a placeholder). Where a column cannot be checked (a city
without counties, such as 东莞市, has no county names to compare with), it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from include.calendar import Calendar
from include.calendar.regions import region
from include.calendar.tree import GROUPING_NAMES, LEVEL_WORDS, short_names
from include.forms import records
from include.forms.check import ROW, HouseholdCheck
from include.forms.spec import FormSpec

SHOWN_NAMES = 20  # the expected names a message lists before "等" (a city has up to 19 counties, 潍坊 12)


@dataclass(frozen=True)
class Place:
    """The names each address column may hold for one unit's households (None: not checked)."""

    where: str  # the unit's name, as the message says it
    columns: tuple[tuple[str, tuple[str, ...] | None], ...]  # (field key, the names allowed, in the tree's order)


def _region_name(code: str, year: int) -> str | None:
    found = region(code, year)
    return found.name if found is not None else None


def _province_city(code: str, year: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The province's name and the names the 市 column may hold for a unit under ``code``'s city: the city's, or
    for a municipality's districts (重庆市 500101) its grouping (市辖区、县) or the municipality itself."""
    province = _region_name(code[:2] + "0000", year)
    city = _region_name(code[:4] + "00", year)
    provinces = (province,) if province else ()
    if city is None or city in GROUPING_NAMES:
        return provinces, provinces + tuple(sorted(GROUPING_NAMES))
    return provinces, (city,)


def place_of(calendar: Calendar, unit: str) -> Place | None:
    """What the addresses of ``unit``'s households must say, or None where the unit is unknown."""
    tree, year = calendar.tree, calendar.year
    node = tree.get(unit)
    if node is None or node.code == calendar.office.code:
        return None
    if node.level == "village":
        home = calendar.office.code  # a town plan's office is its county's code (500101 万州区)
        provinces, cities = _province_city(home, year)
        county = _region_name(home, year)
        placeholder = any(unit.placeholder for unit in calendar.unit_list if unit.code == node.code)
        village = None if placeholder else (node.name,)
        columns = [("address_county", (county,) if county else None), ("address_village", village)]
    else:
        provinces, cities = _province_city(node.code, year)
        if node.level == "city":
            cities = (node.name,)
            counties = tuple(child.name for child in tree.children(node.code) if child.level == "county")
            columns = [("address_county", counties or None)]
        else:
            parent = tree.get(node.parent or "")
            if parent is not None and parent.level == "city":
                cities = (parent.name,)
            columns = [("address_county", (node.name,))]
    head = [("address_province", provinces or None), ("address_city", cities)]
    return Place(where=node.name, columns=tuple(head + columns))


def _listed(names: tuple[str, ...]) -> str:
    shown = "、".join(names[:SHOWN_NAMES])
    return shown + (f"等 {len(names)} 个" if len(names) > SHOWN_NAMES else "")


def address_check(calendar: Calendar, unit: str) -> HouseholdCheck | None:
    """The check ``check_workbook`` runs on the household rows: each row whose address is outside ``unit``'s
    part of the tree, on its first address cell that is, with a message saying whose household it is."""
    place = place_of(calendar, unit)
    if place is None:
        return None
    word = LEVEL_WORDS.get(calendar.tree.get(unit).level, "单位")  # type: ignore[union-attr]

    def check(_form: FormSpec, households: pl.DataFrame) -> pl.DataFrame:
        found = []
        for key, names in place.columns:
            if names is None or key not in households.columns:
                continue
            value = pl.col(key).cast(pl.String).str.replace_all(r"\s", "")
            accepted = [short for name in names for short in short_names(name)]
            outside = households.filter(value.is_not_null() & ~value.is_in(accepted))
            message = (
                f"住址不在{place.where}：本{word}的户应为{_listed(names)}。"
                "该户应由其住址所在的单位上传；请改正住址，或从本单位的文件中删去该户"
            )
            found.append(
                outside.select(
                    pl.col(ROW),
                    pl.lit(key).alias("key"),
                    pl.lit(message).alias("message"),
                    pl.col(key).cast(pl.String).alias("raw"),
                )
            )
        if not found:
            return _no_rows()
        return pl.concat(found).unique(ROW, keep="first", maintain_order=True)

    return check


# -- one uploader per county ------------------------------------------------------------------------------------
# A county may upload its own workbooks, or its city may upload them for it; never both for one form, or its
# households would be counted, validated and reminded twice. The door keeps it so: a county's workbook is refused
# while its city's data in force hold households of it, and a city's rows of a county that has its own are
# rejected.


def counties_on_their_own(calendar: Calendar, unit: str, form_id: str) -> dict[str, str]:
    """The counties below ``unit`` with their own data in force for the form: name → code."""
    return {
        child.name: child.code
        for child in calendar.tree.children(unit)
        if child.level == "county" and records.current_version(calendar.id, form_id, child.code)
    }


def _own_uploads_check(calendar: Calendar, unit: str) -> HouseholdCheck:
    def check(form: FormSpec, households: pl.DataFrame) -> pl.DataFrame:
        own = counties_on_their_own(calendar, unit, form.id)
        if not own or "address_county" not in households.columns:
            return _no_rows()
        county = pl.col("address_county").cast(pl.String).str.replace_all(r"\s", "")
        written = {short: name for name in own for short in short_names(name)}
        return households.filter(county.is_in(list(written))).select(
            pl.col(ROW),
            pl.lit("address_county").alias("key"),
            pl.format(
                "{}已自行上传本县区的数据（{}）：该户应由该县区上传，一个县区的数据只能由一个单位上传；"
                "请从本单位的文件中删去该户",
                county.replace(written),
                pl.lit(form.id),
            ).alias("message"),
            pl.col("address_county").cast(pl.String).alias("raw"),
        )

    return check


def _no_rows() -> pl.DataFrame:
    return pl.DataFrame(schema={ROW: pl.Int64, "key": pl.String, "message": pl.String, "raw": pl.String})


def households_check(calendar: Calendar, unit: str) -> HouseholdCheck | None:
    """Every check of an upload's household rows the unit's place in the tree implies: its address is the unit's,
    and no county below it uploads that household itself. A row fails on the first."""
    checks = [check for check in (address_check(calendar, unit), _own_uploads_check(calendar, unit)) if check]

    def check(form: FormSpec, households: pl.DataFrame) -> pl.DataFrame:
        found = [one(form, households) for one in checks]
        return pl.concat(found).unique(ROW, keep="first", maintain_order=True) if found else _no_rows()

    return check


def held_by_parent(calendar: Calendar, county: str, form: FormSpec) -> int:
    """Households of ``county`` in its city's data in force for the form (by the county their address names)."""
    parent = calendar.reporting_unit(county)
    node = calendar.tree.get(county)
    if parent is None or parent == county or node is None or not records.current_version(calendar.id, form.id, parent):
        return 0
    frame = records.scan(calendar.id, form.id, "households", [parent])
    if frame is None or "address_county" not in frame.collect_schema().names():
        return 0
    county_name = pl.col("address_county").cast(pl.String).str.replace_all(r"\s", "")
    return frame.filter(county_name.is_in(list(short_names(node.name)))).select(pl.len()).collect().item()
