"""Synthetic campaign data: filled-in workbooks per unit in the project's own templates, with known defects.

Households are plausible (ID numbers with valid check digits under the unit's region codes, birth
dates that agree with age and sex, household sizes 1–6, incomes whose sub-items add up); at rate
``defect_rate`` a household gets one defect that passes the form checks but breaks a rule, and the
ground truth (``ground_truth.json``) lists each: unit, household, person, field codes, rule.
The rules issue measures recall and precision against it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pendulum
from stdnum.cn import ric

from include.calendar import Calendar
from include.calendar.instants import TIMEZONE
from include.calendar.regions import codes_until, region
from include.forms.spec import FieldSpec, FormSpec, get_form
from include.forms.template import build_template
from include.rules.catalog import INCOME_ITEMS_2017, RULES

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华玉兰桂凤建国文平志红春海云霞亮刚辉鹏飞宇浩然子涵欣怡梓轩"
PLACE = "东西南北前后上下大小新旧李王张刘陈杨柳桥河山沟坡庄屯岭湾泉林"
# Plausible entries for text fields whose options the forms do not print.
TEXT_VALUES = {
    "开户银行": ("农村商业银行", "中国邮政储蓄银行", "中国农业银行", "农村信用合作社"),
    "入户路类型": ("泥土路", "砂石路", "水泥路", "沥青路"),
    "危房等级": ("无", "C级", "D级"),
    "主要燃料类型": ("柴草", "煤炭", "电", "液化气", "天然气"),
    "失学或辍学原因": ("",),
    "帮扶（选派）单位名称": ("县农业农村局", "县教育局", "县卫生健康局", "镇人民政府", "县供电公司"),
    "帮扶单位名称": ("县农业农村局", "县教育局", "县卫生健康局", "镇人民政府", "县供电公司"),
    "隶属关系": ("省直", "市直", "县直", "乡镇"),
    "单位地址": ("县城人民路1号", "县城建设路18号", "镇政府大院"),
    "政治面貌": ("群众", "中共党员"),
    "性别": ("男", "女"),
    "组号": ("1", "2", "3", "4", "5"),
    "自然村名称": ("东庄", "西庄", "南沟", "北岭", "前屯"),
    "市名称": ("太原市", "大同市", "长治市"),
    "申请开通功能模块": ("2018年初动态管理",),
    "盖章单位": ("市脱贫攻坚领导小组办公室",),
}

TRANSFER_PARTS = ("A29a", "A29b", "A29c", "A29d", "A29e", "A29f")
PROPERTY_PARTS = ("A31a", "A31b")
# The forms whose households the campaign's poverty line applies to (new_poor_below_line and its 2017 twin).
LINE_FORMS = {form for rule in RULES if "poverty_line_yuan" in rule.params for form in rule.forms}


@dataclass(frozen=True)
class Defect:
    unit: str
    household: str  # the head's ID number as entered
    person: str | None  # the member's ID number as entered, for a person-level defect
    fields: tuple[str, ...]  # field codes
    rule: str
    file: str
    sheet: str


@dataclass
class Household:
    key: str
    row: dict[str, object]
    members: list[dict[str, object]] = field(default_factory=list)
    helpers: list[dict[str, object]] = field(default_factory=list)
    policy: list[dict[str, object]] = field(default_factory=list)  # 2023's added sheet: 附件2's criteria, all 否
    touched: bool = False  # has a defect, or lends a person to another household's defect


def default_form(calendar: Calendar) -> FormSpec:
    """The campaign's household form with a members sheet (2020-1, 2017-2, 2023-1)."""
    for form_id in calendar.forms:
        form = get_form(form_id)
        if form.household_key and any(s.id == "members" for s in form.sheets):
            return form
    raise ValueError(f"{calendar.name}没有含家庭成员的户表")


def unit_prefixes(calendar: Calendar, unit: str) -> list[str]:
    """Six-digit region codes whose residents may belong to the unit (counties of a city; the office's own)."""
    found = [node.code for node in calendar.tree.children(unit) if node.level == "county"]
    if found:
        return found
    node = calendar.tree.get(unit)
    return [unit] if node is not None and node.level in ("city", "county") else [calendar.office.code]


def make_id(rng: random.Random, prefix: str, birth: dt.date, male: bool) -> str:
    sequence = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    body = f"{prefix}{birth:%Y%m%d}{sequence:03d}"
    return body + check_digit(body)


def check_digit(body: str) -> str:
    """The GB 11643 check character of 17 digits (python-stdnum's function takes the whole number)."""
    return ric.calc_check_digit(body + "0")


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def _birth(rng: random.Random, year: int, age: int) -> dt.date:
    return dt.date(year - age, 1, 1) + dt.timedelta(days=rng.randrange(0, 365))


class Synth:
    def __init__(self, calendar: Calendar, form: FormSpec, seed: int, defect_rate: float) -> None:
        self.calendar = calendar
        self.form = form
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.defect_rate = defect_rate
        self.year = calendar.year
        self.village: str | None = None  # the village whose households are made, where a roster names it
        self.seen_ids: set[str] = set()
        self.defects: list[Defect] = []
        self.key = form.household_key or ""
        # A household form lists whole households; a form of changes (附件4, 附件5) one row per member added or gone.
        self.whole = any(sheet.id == "households" for sheet in form.sheets)
        # Nobody is born after the instant the data describe (seed 003: 状态类指标取值时间节点为9月30日24时).
        end = (
            calendar.status_date.at
            if calendar.status_date
            else calendar.income_period.ends
            if calendar.income_period
            else None
        )
        self.latest_birth = (
            (pendulum.instance(end).in_timezone(TIMEZONE) - dt.timedelta(seconds=1)).date()
            if end is not None
            else dt.date(self.year, 9, 30)
        )

    def _unique_id(self, prefix: str, birth: dt.date, male: bool) -> str:
        while True:
            number = make_id(self.rng, prefix, birth, male)
            if number not in self.seen_ids:
                self.seen_ids.add(number)
                return number

    def household(self, prefix: str) -> Household:
        rng = self.rng
        size = rng.choices((1, 2, 3, 4, 5, 6), weights=(10, 22, 22, 24, 14, 8))[0]
        head_age = rng.randint(28, 78)
        head_male = rng.random() < 0.8
        people = [("户主", head_age, head_male)]
        if size >= 2:
            people.append(("配偶", max(20, head_age + rng.randint(-5, 5)), not head_male))
        for _ in range(size - len(people)):
            child_age = head_age - rng.randint(20, 35)
            if child_age >= 0:
                people.append(("子女", child_age, rng.random() < 0.5))
            else:
                people.append(("父母", min(head_age + rng.randint(20, 30), 99), rng.random() < 0.5))
        members = []
        for relation, age, male in people:
            birth = min(_birth(rng, self.year, age), self.latest_birth)
            members.append(self._member(relation, age, male, self._unique_id(prefix, birth, male)))
        key = str(members[0]["_id"])
        household = Household(
            key=key, row=self._household_row(key, len(members), prefix, self._generated(members)), members=members
        )
        if any(s.id == "helpers" for s in self.form.sheets):
            household.helpers.append(self._values("helpers", {}))
        if any(s.id == "policy" for s in self.form.sheets):  # none of 附件2's criteria or exceptions found
            household.policy.append({f.key: "否" for f in self.form.fields_of("policy") if f.key != self.key})
        return household

    def changed(self, household: Household, prefix: str) -> Household:
        """The household as a form of changes lists it (附件4, 附件5: "以户为单位填报", the head named in the header,
        one row per member added or gone): a newborn with its birth month (附件4), or one member who left with
        its reason and month (附件5), never the whole household."""
        rng, head = self.rng, household.members[0]
        fields = {f.key for f in self.form.fields_of("members")}
        # In the campaign's year: a change of last October–December is a warning of its own (seed 004's re-dating)
        starts = dt.date(self.year, 1, 1)
        when = starts + dt.timedelta(days=rng.randrange(0, max(1, (self.latest_birth - starts).days)))
        if "increase_reason" in fields:
            male = rng.random() < 0.5
            row = self._member("子女", 0, male, self._unique_id(prefix, when, male))
            row.update({"increase_reason": "1", "change_month": when.replace(day=1)})  # 新生儿, its birth month
        else:
            gone = household.members[-1]
            row = self._values("members", {"name": gone.get("member_name"), "id": gone.get("member_id")})
            row.update({"member_name": gone.get("member_name"), "member_id": gone.get("member_id"), "_id": gone["_id"]})
            row.update({"decrease_reason": str(rng.randint(1, 8)), "change_month": when.replace(day=1)})
        head_name = next((value for key, value in head.items() if key in ("A1", "member_name", "head_name")), None)
        row["head_name"] = head.get("head_name") or head_name
        return Household(key=household.key, row={}, members=[row])

    # -- values ---------------------------------------------------------------------------------

    def _member(self, relation: str, age: int, male: bool, number: str) -> dict[str, object]:
        rng = self.rng
        school = age if 6 <= age <= 15 else None
        semantic = {
            "name": _name(rng),
            "sex": "男" if male else "女",
            "id": number,
            "relation": relation,
            "doc": "居民身份证",
            "nation": rng.choices(("汉族", "回族", "满族"), weights=(95, 3, 2))[0],
            "politics": rng.choices(("群众", "中共党员", "共青团员"), weights=(85, 8, 7))[0],
            "education": "学龄前儿童"
            if age < 6
            else ("在校生" if school else rng.choice(("小学", "初中", "高中", "文盲或半文盲"))),
            "school": "义务教育" if school else ("学龄前儿童" if age < 6 else "非在校生"),
            "health": rng.choices(("健康", "长期慢性病", "患有大病", "残疾"), weights=(80, 12, 4, 4))[0],
            "labour": "无劳动力" if age < 16 or age > 70 else rng.choice(("普通劳动力", "技能劳动力", "丧失劳动力")),
            "work_area": "" if age < 16 or age > 70 else rng.choice(("乡镇内", "县内", "省内县外", "省外", "")),
            "work_months": 0 if age < 16 or age > 70 else rng.randint(0, 12),
        }
        row = self._values("members", semantic)
        row["_id"] = number
        row["_age"] = age
        return row

    def _generated(self, members: list[dict[str, object]]) -> dict[str, object]:
        """The household's fields the form generates from its members: A26 "（A17 指标生成）", 是 when a member is
        not in the basic medical insurance."""
        if "A26" not in {f.key for f in self.form.fields_of("households")} or not any("A17" in m for m in members):
            return {}
        return {"A26": "是" if any(m.get("A17") == "否" for m in members) else "否"}

    def _household_row(
        self, key: str, size: int, prefix: str, derived: dict[str, object] | None = None
    ) -> dict[str, object]:
        return self._values("households", {"size": size, **self._address(prefix)}, key=key, derived=derived)

    def _address(self, prefix: str) -> dict[str, object]:
        """Province, city and county from GB/T 2260 for the ID's region; town, village and group invented."""
        year = self.year
        province = region(prefix[:2] + "0000", year)
        city = region(prefix[:4] + "00", year)
        county = region(prefix, year)
        town = self.rng.choice(PLACE) + self.rng.choice(("镇", "乡", "街道"))
        village = self.rng.choice(PLACE) + self.rng.choice(PLACE) + "村"
        village = self.village or village  # drawn all the same: a roster changes no other value
        return {
            "province": province.name if province else "",
            "city": city.name if city else (province.name if province else ""),
            "county": county.name if county else "",
            "town": town,
            "village": village,
            "group": f"{self.rng.randint(1, 9)}组",
            "village_code": prefix + f"{self.rng.randint(1, 30):03d}{self.rng.randint(1, 30):03d}",
        }

    def _county_income(self, household: Household) -> float | None:
        """The calendar's 县农民人均可支配收入 of the household's county, where the office has entered one."""
        figures = self.calendar.county_figures.get("rural_income_yuan")
        figure = figures.counties.get(str(household.row.get("address_county"))) if figures else None
        return figure.value if figure else None

    def _income(self, row: dict[str, object], fields: dict[str, FieldSpec]) -> None:
        """Income items whose sub-items add up (2020: A29 = A29a…f, A31 = A31a+b; 2023: A33, A37); 2023's A53, A54."""
        rng = self.rng

        def amount(high: int) -> float:
            return float(rng.randrange(0, high // 10) * 10)

        parts = {key: amount(3000) for key in TRANSFER_PARTS if key in fields}
        if parts:
            row.update(parts)
            row["A29"] = sum(parts.values())
        prop = {key: amount(2000) for key in PROPERTY_PARTS if key in fields}
        if prop:
            row.update(prop)
            row["A31"] = sum(prop.values())
        if "A33" in fields and fields["A33"].type == "money":  # 2023: net income is A28+A29+A30+A31−A32
            _net_2023(row)
        if "A53" in fields:  # risk marked eliminated only with 两不愁三保障 and safe water resolved, with its date
            if "是" in (row.get(key) for key in ("A23", "A24", "A25", "A26")) or row.get("A53") is None:
                row["A53"] = row["A54"] = None
            elif row.get("A54") is None:
                row["A54"] = dt.date(self.year, rng.randint(1, 9), rng.randint(1, 28))

    def _below_line(self, row: dict[str, object], size: int) -> None:
        """A poor household's income below the campaign's line (seed 001: 4000 yuan; seed 002: 3200), if it has one.

        The income items are scaled down together, so that sub-items still add up.
        """
        line = self.calendar.thresholds.get("poverty_line_yuan")
        if line is None or self.form.id not in LINE_FORMS:
            return
        positive = [key for key in (*INCOME_ITEMS_2017, "A28", "A30", *TRANSFER_PARTS, *PROPERTY_PARTS) if key in row]
        total = sum(float(row[key] or 0) for key in positive)
        budget = line.value * size * self.rng.uniform(0.3, 0.9)
        if total <= budget:
            return
        for key in positive:
            if row[key] is not None:
                row[key] = float(int(float(row[key]) * budget / total / 10) * 10)
        if "A29" in row and any(key in row for key in TRANSFER_PARTS):
            row["A29"] = sum(float(row[key] or 0) for key in TRANSFER_PARTS if key in row)
        if "A31" in row and any(key in row for key in PROPERTY_PARTS):
            row["A31"] = sum(float(row[key] or 0) for key in PROPERTY_PARTS if key in row)

    def _values(
        self, sheet: str, semantic: dict[str, object], key: str | None = None, derived: dict[str, object] | None = None
    ) -> dict[str, object]:
        rng = self.rng
        fields = {f.key: f for f in self.form.fields_of(sheet)}
        row: dict[str, object] = {}
        for f in fields.values():
            if f.bulk or f.key == self.key:
                continue
            value = self._semantic(f, semantic)
            if value is None and (f.required or rng.random() < 0.6) and not f.generated:
                value = self._by_type(f)
            row[f.key] = value
        if self.key in fields and key is not None:
            row[self.key] = key
        row.update(derived or {})  # generated fields, from the members
        if sheet == "households":
            self._income(row, fields)
            self._below_line(row, int(semantic.get("size") or 1))
            if "A34" in fields and fields["A34"].generated:
                _per_capita_2023(row, int(semantic.get("size") or 1))
        return row

    def _semantic(self, f: FieldSpec, semantic: dict[str, object]) -> object:
        label = f.label
        table: list[tuple[Callable[[], bool], str]] = [
            (lambda: f.type == "name" and "帮扶" not in label, "name"),
            (lambda: f.type == "id_number", "id"),
            (lambda: label.startswith("性别"), "sex"),
            (lambda: label.startswith("证件类型"), "doc"),
            (lambda: label.startswith("与户主关系"), "relation"),
            (lambda: label.startswith("民族"), "nation"),
            (lambda: label.startswith("政治面貌"), "politics"),
            (lambda: label.startswith("文化程度"), "education"),
            (lambda: label.startswith("在校生状况"), "school"),
            (lambda: label.startswith("健康状况"), "health"),
            (lambda: label.startswith("劳动技能"), "labour"),
            (lambda: label.startswith("务工区域") or label.startswith("务工情况"), "work_area"),
            (lambda: label.startswith("务工时间"), "work_months"),
            (lambda: label.startswith("省（"), "province"),
            (lambda: label.startswith("市（"), "city"),
            (lambda: label.startswith("县（"), "county"),
            (lambda: label.startswith(("乡（", "镇（")), "town"),
            (lambda: label in ("村", "行政村名称", "隶属行政村") or label.startswith("村（"), "village"),
            (lambda: label.startswith("自然村"), "group"),
            (lambda: label == "行政区划代码", "village_code"),
        ]
        for test, name in table:
            if name in semantic and test():
                return semantic[name]
        return None

    def _by_type(self, f: FieldSpec) -> object:
        rng = self.rng
        kind = f.type
        if kind in ("single", "yes_no"):
            choice = rng.choice(f.options or f.choices)  # printed options; added ones are rare
            return str(f.choices.index(choice) + 1) if f.option_codes else choice
        if kind == "multiple":
            count = rng.randint(1, min(f.max_choices or 2, len(f.choices)))
            return "、".join(rng.sample(list(f.choices), count))
        if kind == "money":
            return float(rng.randrange(0, 2000) * 10)
        if kind == "area":
            return round(rng.uniform(0, 8), 1)
        if kind == "number":
            return round(rng.uniform(0, 10), 1)
        if kind == "integer":
            return rng.randint(0, 50)
        if kind == "date":
            return dt.date(self.year, rng.randint(1, 9), rng.randint(1, 28))
        if kind == "month":
            return f"{self.year}-{rng.randint(1, 9):02d}"
        if kind == "phone":
            return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))
        if kind == "account":
            return "6228" + "".join(rng.choice("0123456789") for _ in range(15))
        if kind == "name":
            return _name(rng)
        for start, values in TEXT_VALUES.items():
            if f.label.startswith(start):
                return rng.choice(values)
        return f"{f.label[:6]}{rng.randint(1, 9)}"

    # -- defects --------------------------------------------------------------------------------

    def inject(self, unit: str, household: Household, file: str, others: list[Household]) -> None:
        rng = self.rng
        if household.touched or rng.random() >= self.defect_rate:
            return
        codes = {f.key: f.code or f.key for f in self.form.fields}
        members = household.members
        id_key = next(
            f.key for f in self.form.fields_of("members") if f.type == "id_number" and not f.bulk and f.key != self.key
        )  # the member's own: 附件4's rows also carry the head's 证件号码, the household's key
        sex_key = next((f.key for f in self.form.fields_of("members") if f.label.startswith("性别")), None)
        relation_key = next((f.key for f in self.form.fields_of("members") if f.label.startswith("与户主关系")), None)
        kinds = ["id_check_digit", "id_birth_date", "sex_matches_id"]
        if self.whole:  # one_head: household forms only
            kinds.append("one_head")
        elif not any(f.label.startswith("性别") for f in self.form.fields_of("members")):
            kinds.remove("sex_matches_id")  # 附件5 asks no sex
        if len(members) >= 2:
            kinds.append("person_in_one_household")
        if "A29a" in household.row:
            kinds.append("transfer_sum")
        net_income = next((f for f in self.form.fields if f.key == "A33"), None)
        if len(members) >= 2:
            kinds.append("id_region_prefix")
        if "A31a" in household.row:
            kinds.append("property_sum")
        if net_income is not None and net_income.type == "money" and household.row.get("A33") is not None:
            kinds += ["net_income_formula", "reference_income_formula"]
            if household.row.get("A34") is not None:
                kinds.append("per_capita_formula")
        if "A53" in codes:
            kinds.append("risk_eliminated_with_basic_needs_unresolved")
        if household.row.get("A26") is not None:
            kinds.append("a26_from_a17")
        county_income = self._county_income(household)
        if household.policy and county_income is not None:
            kinds.append("not_enjoying_policy_income")
        kind = rng.choice(kinds)
        household.touched = True
        person = members[-1] if len(members) >= 2 else members[0]

        def record(person_id: str | None, keys: tuple[str, ...], sheet: str) -> None:
            self.defects.append(
                Defect(unit, household.key, person_id, tuple(codes.get(k, k) for k in keys), kind, file, sheet)
            )

        if kind in ("id_check_digit", "id_birth_date") and (len(members) >= 2 or not self.whole):
            number = str(person[id_key])
            if kind == "id_check_digit":
                wrong = next(c for c in "0123456789X" if c != number[17])
                number = number[:17] + wrong
            else:
                number = number[:10] + "1332" + number[14:17]
                number += check_digit(number)
            person[id_key] = number
            record(number, (id_key,), "members")
        elif kind in ("id_check_digit", "id_birth_date") or kind == "sex_matches_id":
            if sex_key is None:
                return
            person[sex_key] = "女" if person[sex_key] == "男" else "男"
            kind = "sex_matches_id"
            record(str(person[id_key]), (sex_key, id_key), "members")
        elif kind == "one_head" and relation_key:
            if len(members) >= 2:
                members[1][relation_key] = "户主"
            else:
                members[0][relation_key] = "本人"
            record(None, (relation_key,), "members")
        elif kind == "person_in_one_household":
            candidates = [h for h in others if h is not household and not h.touched]
            if not candidates:
                return
            lender = rng.choice(candidates)
            lender.touched = True
            other = lender.members[-1]
            # The same person, entered again in this household: everything but the relation to its head.
            person.update({key: value for key, value in other.items() if key not in (relation_key, self.key)})
            record(str(person[id_key]), (id_key,), "members")
            self.defects.append(Defect(unit, lender.key, str(other[id_key]), (codes[id_key],), kind, file, "members"))
            generated = self._generated(members)  # the person's A17 came along: A26 again, and no risk left marked
            household.row.update(generated)
            if generated.get("A26") == "是" and household.row.get("A53") is not None:
                household.row["A53"] = household.row["A54"] = None
        elif kind == "transfer_sum":
            household.row["A29"] = float(household.row["A29"]) + 500.0
            record(None, ("A29", "A29a", "A29b", "A29c", "A29d", "A29e", "A29f"), "households")
        elif kind == "net_income_formula":
            household.row["A33"] = float(household.row["A33"]) + 1000.0
            record(None, ("A33", "A28", "A29", "A30", "A31", "A32"), "households")
        elif kind == "id_region_prefix":
            number = str(person[id_key])
            existed = set(codes_until(self.year))
            prefix = next(c for c in (number[:4] + f"{n:02d}" for n in range(99, 0, -1)) if c not in existed)
            number = prefix + number[6:17]
            person[id_key] = number + check_digit(number)
            record(person[id_key], (id_key,), "members")
        elif kind == "property_sum":
            household.row["A31"] = float(household.row["A31"]) + 300.0
            record(None, ("A31", "A31a", "A31b"), "households")
        elif kind == "reference_income_formula":
            household.row["A37"] = float(household.row["A37"]) + 200.0
            record(None, ("A37", "A35", "A36"), "households")
        elif kind == "per_capita_formula":
            household.row["A34"] = float(household.row["A34"]) + 100.0
            record(None, ("A34", "A38"), "households")
        elif kind == "risk_eliminated_with_basic_needs_unresolved":
            household.row.update({"A25": "是", "A53": "帮扶消除", "A54": dt.date(self.year, 6, 30)})
            record(None, ("A53", "A23", "A24", "A25", "A26"), "households")
        elif kind == "a26_from_a17":  # entered against what the members' A17 give
            household.row["A26"] = "否" if household.row["A26"] == "是" else "是"
            record(None, ("A26", "A17"), "households")
        elif kind == "not_enjoying_policy_income" and county_income is not None:
            # A 脱贫户 with one of 附件2's criteria and none of its exceptions (no member on 低保)
            household.row["A4"] = "是"
            for member in members:
                member["A20"] = "否"
            risks = [risk for risk in str(household.row.get("A27") or "").split("、") if risk]
            kept = [risk for risk in risks if risk not in ("因自然灾害", "因意外事故")]  # no 因灾因意外 (exception 4)
            if kept != risks:
                household.row["A27"], household.row["A27a"] = "、".join(kept) or "因病", None
            criterion = rng.randint(1, 8)
            if criterion == 1:  # its income raised to the county's figure or above, every total kept consistent
                row, size = household.row, len(members)
                raise_by = max(0.0, county_income * size - float(row["A33"])) + 10.0 * rng.randint(0, 300)
                row["A28"] = float(row["A28"]) + float(-(-raise_by // 10) * 10)
                _net_2023(row)
                _per_capita_2023(row, size)
            else:
                household.policy[0][f"c{criterion}"] = "是"
            record(None, ("A4", "A34", "A20", "A13"), "households")


def _net_2023(row: dict[str, object]) -> None:
    """Seed 003's 表注: "A33=A28+A29+A30+A31-A32", "A37=A33+A35-A36"."""
    row["A33"] = round(sum(float(row[k]) for k in ("A28", "A29", "A30", "A31")) - float(row["A32"]), 2)
    row["A37"] = round(float(row["A33"]) + float(row.get("A35") or 0) - float(row.get("A36") or 0), 2)


def _per_capita_2023(row: dict[str, object], size: int) -> None:
    """A34 and A38: A33 and A37 per member."""
    row["A34"] = round(float(row["A33"]) / size, 2)
    row["A38"] = round(float(row["A37"]) / size, 2)


def _rows(form: FormSpec, sheet_id: str, rows: list[dict[str, object]]) -> list[list[object]]:
    keys = [f.key for f in form.fields_of(sheet_id)]
    return [[row.get(key) for key in keys] for row in rows]


def synthesize(
    calendar: Calendar,
    out: Path,
    *,
    households: int,
    defect_rate: float,
    seed: int,
    form: FormSpec | None = None,
    units: list[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Write one workbook per unit and ``ground_truth.json`` under ``out``; return the summary."""
    form = form or default_form(calendar)
    codes = units or calendar.unit_codes
    synth = Synth(calendar, form, seed, defect_rate)
    out.mkdir(parents=True, exist_ok=True)
    per_unit = [households // len(codes) + (1 if i < households % len(codes) else 0) for i in range(len(codes))]
    files = []
    for unit, count in zip(codes, per_unit, strict=True):
        prefixes = unit_prefixes(calendar, unit)
        named = next((item for item in calendar.unit_list if item.code == unit), None)
        village = calendar.units.level == "village" and named is not None and not named.placeholder
        synth.village = named.name if village and named else None
        made = [synth.household(synth.rng.choice(prefixes)) for _ in range(count)]
        if not synth.whole:
            made = [synth.changed(household, synth.rng.choice(prefixes)) for household in made]
        file = f"{calendar.id}-{form.id}-{unit}.xlsx"
        for household in made:
            synth.inject(unit, household, file, made)
        workbook = build_template(form, campaign_id=calendar.id, campaign_name=calendar.name)
        sheets = {s.id: workbook[s.name] for s in form.sheets}
        for household in made:
            household.row[synth.key] = household.key
            for member in household.members:
                member[synth.key] = household.key
            for helper in (*household.helpers, *household.policy):
                helper[synth.key] = household.key
        content = {
            "households": [h.row for h in made],
            "members": [m for h in made for m in h.members],
            "helpers": [p for h in made for p in h.helpers],
            "policy": [p for h in made for p in h.policy],
        }
        for sheet_id, ws in sheets.items():
            for row in _rows(form, sheet_id, content.get(sheet_id, [])):
                ws.append(row)
        path = out / file
        workbook.save(path)
        members = len(content["members"])
        files.append({"unit": unit, "file": file, "households": count, "members": members})
        progress(f"{unit}：{count} 户 {members} 人 → {path}")
    truth = {
        "campaign": calendar.id,
        "form": form.id,
        "seed": seed,
        "defect_rate": defect_rate,
        "files": files,
        "defects": [asdict(d) for d in synth.defects],
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth
