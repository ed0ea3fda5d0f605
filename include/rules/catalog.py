"""The rule catalog: one declaration per rule, run set-based by include/rules/engine.py.

A rule is a SQL query (DuckDB) over one form's records: a view per sheet (``households``, ``members``,
``villages``, ``counties`` …; every unit, each row with its ``unit``), and for a rule that counts across
forms, ``"<form>/<sheet>"`` (``"2020-2/households"``). It selects ``unit``, ``household`` (the head's ID
as entered; a village or county for an aggregate), ``person`` (NULL for a household-level problem) and
``message``; the engine adds the rule's id, fields and severity.

Column names in the SQL are roles, filled in per form from its spec: ``{id}`` the member's ID number,
``{sex}``, ``{relation}``, ``{household}`` the household key, items by their printed code (``A29``) or,
on 2017's forms that print none, by key. Values from the campaign calendar are bound by name, never
written into the SQL: its thresholds (``$poverty_line_yuan``), ``$status_date``, ``$income_starts`` and
``$income_ends``, and for seed 004's re-dating ``$prior_q4_starts``, ``$prior_q4_ends``,
``$prior_september``. The table ``regions`` holds the GB/T 2260 codes that existed up to the year.

A rule over many fields (the options of every coded field) also selects ``field``, the key of the field
concerned; its SQL is built from the form's spec (``option_checks``) and given to the rule as the role
``{options}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from include.forms.spec import FieldSpec, FormSpec

Severity = Literal["error", "warning"]

# GB 11643: weights of the first 17 digits and the check character of (sum mod 11).
ID_WEIGHTS = "[7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]"
ID_CHECK_CHARS = "10X98765432"
EXPECTED_CHECK = (
    "substr('" + ID_CHECK_CHARS + "', CAST(list_sum(list_transform(range(1, 18), lambda i: "
    "try_cast(substr({id}, i, 1) AS INTEGER) * " + ID_WEIGHTS + "[i])) % 11 + 1 AS BIGINT), 1)"
)
IDENTITY_QUOTE = (
    "此次动态管理后，再因信息不准确（尤其是贫困对象姓名、证件号码、电话号码、家庭成员增减变化等基础信息）"
    "造成贫困对象不能享受政策"
)
WELL_FORMED_ID = "regexp_full_match({id}, '\\d{{17}}[\\dX](\\d{{2}})?')"
BIRTH_DATE = "try_strptime(substr({id}, 7, 8), '%Y%m%d')"  # the ID's digits 7–14; NULL when no such day


@dataclass(frozen=True)
class Rule:
    id: str
    title: str  # Chinese, for the problem list's summary
    family: str  # identity, enumerations, income, eligibility, education, changes, aggregates
    roles: tuple[str, ...]  # the roles the SQL needs; a form without them does not run the rule
    fields: tuple[str, ...]  # roles or field keys, reported as the form's codes
    severity: Severity
    source: str  # the seed file
    quote: str  # the seed sentence the rule comes from
    sql: str
    params: tuple[str, ...] = ()  # calendar thresholds bound as $name; without them the rule is reported not run
    forms: tuple[str, ...] = ()  # the forms it applies to (codes mean different things in 2017, 2020, 2023); () = any
    period: bool = False  # a rule of the campaign's income period: quoted from the calendar's seed (rule_quote)
    needs: tuple[str, ...] = ()  # data beyond the forms: "workload" (the households of the year's 工作台账)
    # The calendar's county figures it compares with (``county_figures``), bound as the table county_<name>
    # (county, value); without any the rule is reported not run.
    figures: tuple[str, ...] = ()
    figures_for: str = "true"  # the households the figures are compared for (SQL on households): a run says which
    # of their counties lack one


# Seed 003 附件2's criteria 2–8 in a few words each, for the message (the added sheet's columns quote them whole).
NOT_ENJOYING_WORDS = (
    (2, "致贫原因消失"),
    (3, "拥有并经常使用高档乘用车辆"),
    (4, "在城镇购买商品房"),
    (5, "注册公司、企业并雇佣他人"),
    (6, "有财政供养人员或国有大中型企业中层及以上领导干部"),
    (7, "分户子女注册公司、企业且收益较高"),
    (8, "分户子女赡养能力强"),
)
HOUSEHOLD_FORMS = ("2017-2", "2020-1", "2020-2", "2023-1")  # a household sheet and every member of it
INCOME_ITEMS = ("A28", "A29", "A30", "A31", "A32")
NET_INCOME = "A28 + A29 + A30 + A31 - A32"  # seed 003: "A33=A28+A29+A30+A31-A32"; the 2020 forms' items alike
# 2017 (seed 002, 附件2) prints no codes and no expense: wage, business, property and the transfers listed.
INCOME_ITEMS_2017 = (
    "wage_income", "business_income", "property_income", "wubao_income", "pension_income", "eco_compensation",
    "other_transfer_income",
)  # fmt: skip
NET_INCOME_2017 = " + ".join(f"coalesce({item}, 0)" for item in INCOME_ITEMS_2017)
# Seed 004: "家庭人口数按截至2019年9月30日时点统计": the members in the records as of the status date: not one
# born after it (by the ID's birth date), not one whose 减少 (附件5, 2020-5) is dated before it.
MEMBERS_AT_STATUS = """
    SELECT unit, {household}, count(*) AS members FROM members m
    WHERE coalesce(try_strptime(substr({id}, 7, 8), '%Y%m%d') <= $status_date, true)
      AND NOT EXISTS (SELECT 1 FROM "2020-5/members" d
                      WHERE d.unit = m.unit AND d.member_id = m.{id} AND d.change_month < $status_date)
    GROUP BY unit, {household}
"""
PER_CAPITA = (
    """
    SELECT h.unit, h.{{household}} AS household, ({income}) / n.members AS per_capita, n.members
    FROM households h
    JOIN ("""
    + MEMBERS_AT_STATUS.replace("{", "{{").replace("}", "}}")
    + """) n
      ON n.unit = h.unit AND n.{{household}} = h.{{household}}
"""
)


def per_capita_rule(
    *,
    id: str,
    title: str,
    quote: str,
    line: str,
    form: str,
    message: str,
    source: str = "001_75f64364fef16825.txt",
    income: str = NET_INCOME,
    items: tuple[str, ...] = INCOME_ITEMS,
    exceeds: bool = False,
) -> Rule:
    """Per-capita net income (``income`` over the household's members) at or above the calendar's ``line``
    (the seeds' "低于": not below it), or above it where the seed says "超过" (``exceeds``).

    ``message`` is a printf template of the per-capita income, the members and the line.
    """
    return Rule(
        id=id,
        title=title,
        family="eligibility",
        roles=("id", *items),
        fields=items,
        severity="error",
        source=source,
        quote=quote,
        params=(line,),
        forms=(form,),
        sql=f"""
            SELECT unit, household, NULL AS person,
                   printf('{message}', per_capita, members, ${line}) AS message
            FROM ({PER_CAPITA.format(income=income)})
            WHERE per_capita {">" if exceeds else ">="} ${line}
        """,
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _allowed(field: FieldSpec) -> tuple[list[str], str]:
    """The values stored for the field's options, and how the message lists them."""
    if field.option_codes:
        return [str(i) for i in range(1, len(field.choices) + 1)], "、".join(field.dropdown)
    return list(field.choices), "、".join(field.choices)


def option_checks(form: FormSpec, columns: dict[str, str]) -> str | None:
    """One query over every coded field of the form: a value that is not one of its printed options.

    Yes/no fields take 是 or 否; a field whose form asks for the option's number takes 1…n; a multiple
    choice takes options only, and no more than it allows.
    """
    parts = []
    for sheet in form.sheets:
        household = columns.get("household", "NULL")
        if household == "NULL" and form.household_key is None:  # a village's sheet: its names
            keys = [f.key for f in form.fields_of(sheet.id)[:2]]
            household = " || ' ' || ".join(f"coalesce(CAST({key} AS VARCHAR), '')" for key in keys)
        person = columns["id"] if sheet.id == "members" and "id" in columns else "NULL"
        for field in form.fields_of(sheet.id):
            if field.type not in ("single", "multiple", "yes_no") or field.key == form.household_key:
                continue
            allowed, listed = _allowed(field)
            values = "[" + ", ".join(_literal(v) for v in allowed) + "]"
            label = _literal(f"{field.code} {field.label}" if field.code else field.label)
            select = f"SELECT unit, {household} AS household, {person} AS person, {_literal(field.key)} AS field"
            if field.type == "multiple":
                value = f"CAST({field.key} AS VARCHAR[])"
                wrong = f"list_filter({value}, lambda x: NOT list_contains({values}, x))"
                most = field.max_choices or len(allowed)
                parts.append(
                    f"""{select},
                           {label} || '填“' || array_to_string({value}, '、') || '”，' ||
                           CASE WHEN len({wrong}) > 0
                                THEN '其中“' || array_to_string({wrong}, '、') || '”不是表上的选项（可选：'
                                     || {_literal(listed)} || '）'
                                ELSE '最多只能选{most}项' END AS message
                    FROM {sheet.id}
                    WHERE {field.key} IS NOT NULL AND (len({wrong}) > 0 OR len({value}) > {most})"""
                )
            else:
                value = f"CAST({field.key} AS VARCHAR)"
                parts.append(
                    f"""{select},
                           {label} || '填“' || {value} || '”，不是表上的选项（可选：'
                           || {_literal(listed)} || '）' AS message
                    FROM {sheet.id}
                    WHERE {field.key} IS NOT NULL AND NOT list_contains({values}, {value})"""
                )
    return "\nUNION ALL\n".join(parts) if parts else None


# Seed 004's monitoring scale, by county over the whole campaign (every unit: a county spread over a town plan's
# villages is one county), in persons: the members of the edge and unstable households (2020-2, 2023-1's all);
# a household with no member rows (2020-3 has none) counts as its county's average registered household
# (registered_population / registered_households), and the message says how many were estimated so. Each
# unit with monitoring objects in the county gets the county's figure.
MONITORING_SCALE = """
    WITH objects AS (
        SELECT h.unit, h.address_county AS county, n.persons
        FROM "2020-2/households" h
        LEFT JOIN (SELECT unit, household_id, count(*) AS persons FROM "2020-2/members" GROUP BY unit, household_id) n
          ON n.unit = h.unit AND n.household_id = h.household_id
        UNION ALL
        SELECT unit, address_county, NULL FROM "2020-3/households"
        UNION ALL
        SELECT h.unit, h.address_county, n.persons
        FROM "2023-1/households" h
        LEFT JOIN (SELECT unit, household_id, count(*) AS persons FROM "2023-1/members" GROUP BY unit, household_id) n
          ON n.unit = h.unit AND n.household_id = h.household_id
    ),
    registry AS (
        SELECT county, any_value(registered_households) AS registered_households,
               any_value(registered_population) AS registered_population, any_value(deep_poverty) = '是' AS deep
        FROM counties GROUP BY county
    ),
    counted AS (
        SELECT o.county, sum(coalesce(o.persons, 0)) AS persons, count(*) FILTER (WHERE o.persons IS NULL) AS estimated,
               r.registered_population, r.deep,
               r.registered_population::DOUBLE / nullif(r.registered_households, 0) AS average
        FROM objects o JOIN registry r ON r.county = o.county
        WHERE r.registered_population > 0
        GROUP BY o.county, r.registered_population, r.deep, r.registered_households
    ),
    scale AS (
        SELECT DISTINCT o.unit, c.county, c.registered_population, c.deep,
               (c.persons + c.estimated * coalesce(c.average, 0)) / c.registered_population AS share,
               CASE WHEN c.estimated = 0 THEN printf('%d人', c.persons)
                    ELSE printf('约%.0f人（其中%d户无家庭成员表，按该县户均%.1f人估算）',
                                c.persons + c.estimated * coalesce(c.average, 0), c.estimated, coalesce(c.average, 0))
               END AS counted
        FROM counted c JOIN objects o ON o.county = c.county
    )
"""


# A26 "是否有家庭成员未参加城乡居民（职工）基本医疗保险（A17 指标生成）": per household, its member rows and those whose
# A17 (是否参加…基本医疗保险) is 否.
UNINSURED = """
    WITH uninsured AS (
        SELECT unit, {household} AS household, count(*) AS members, count(*) FILTER (WHERE A17 = '否') AS uninsured
        FROM members GROUP BY unit, {household}
    )
"""


RULES: tuple[Rule, ...] = (
    Rule(
        id="id_check_digit",
        title="身份证号码校验位错误",
        family="identity",
        roles=("id",),
        fields=("id",),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('居民身份证号码的校验位应为“%s”，填的是“%s”，请核对证件后改正',
                          expected, substr({{id}}, 18, 1)) AS message
            FROM (SELECT *, {EXPECTED_CHECK} AS expected FROM members WHERE {WELL_FORMED_ID})
            WHERE substr({{id}}, 18, 1) <> expected
        """,
    ),
    Rule(
        id="id_birth_date",
        title="身份证号码中的出生日期不存在",
        family="identity",
        roles=("id",),
        fields=("id",),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('身份证号码中的出生日期“%s”不存在或晚于统计时点，请核对证件', substr({{id}}, 7, 8)) AS message
            FROM members
            WHERE {WELL_FORMED_ID}
              AND substr({{id}}, 18, 1) = {EXPECTED_CHECK}
              AND ({BIRTH_DATE} IS NULL
                   OR {BIRTH_DATE} > $status_date)
        """,
    ),
    Rule(
        id="sex_matches_id",
        title="性别与身份证号码不符",
        family="identity",
        roles=("id", "sex"),
        fields=("sex", "id"),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('性别填“%s”，身份证号码第17位表明是“%s”', {{sex}}, id_sex) AS message
            FROM (SELECT *, CASE WHEN try_cast(substr({{id}}, 17, 1) AS INTEGER) % 2 = 1 THEN '男' ELSE '女' END
                            AS id_sex
                  FROM members WHERE {WELL_FORMED_ID} AND substr({{id}}, 18, 1) = {EXPECTED_CHECK})
            WHERE {{sex}} IN ('男', '女') AND {{sex}} <> id_sex
        """,
    ),
    Rule(
        id="one_head",
        title="户主人数不是一人",
        family="identity",
        roles=("relation",),
        fields=("relation",),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        # Household forms only: 附件4 and 附件5 list the members added or gone, under a head named in the header
        # ("户主姓名、证件号码"), so a 附件4 of a newborn has no 户主 row and needs none.
        forms=HOUSEHOLD_FORMS,
        sql="""
            SELECT unit, {household} AS household, NULL AS person,
                   printf('这一户“与户主关系”填“户主”的有%d人，应当正好一人', heads) AS message
            FROM (SELECT unit, {household}, count(*) FILTER (WHERE {relation} = '户主') AS heads
                  FROM members GROUP BY unit, {household})
            WHERE heads <> 1
        """,
    ),
    Rule(
        id="person_in_one_household",
        title="同一人出现在多户中",
        family="identity",
        roles=("id",),
        fields=("id",),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        sql="""
            SELECT m.unit, m.{household} AS household, m.{id} AS person,
                   printf('此人同时登记在%d户中（本次工作全部单位），一人只能在一户', d.households) AS message
            FROM members m
            JOIN (SELECT {id}, count(DISTINCT unit || '/' || {household}) AS households
                  FROM members GROUP BY {id} HAVING households > 1) d USING ({id})
        """,
    ),
    Rule(
        id="transfer_sum",
        title="转移性收入与分项之和不符",
        family="income",
        roles=("A29", "A29a", "A29b", "A29c", "A29d", "A29e", "A29f"),
        fields=("A29", "A29a", "A29b", "A29c", "A29d", "A29e", "A29f"),
        severity="error",
        source="000_a43a35703e24dac8.txt",
        quote="贫困户家庭收入中的各项转移性收入，原则上通过与相关行业部门比对获取。",
        forms=("2020-1", "2020-2"),
        sql="""
            SELECT unit, {household} AS household, NULL AS person,
                   printf('转移性收入填%.2f元，分项（计划生育金、低保金、特困供养金、养老保险金、生态补偿金、其他）之和为%.2f元',
                          A29::DOUBLE, parts::DOUBLE) AS message
            FROM (SELECT *, coalesce(A29a, 0) + coalesce(A29b, 0) + coalesce(A29c, 0) + coalesce(A29d, 0)
                            + coalesce(A29e, 0) + coalesce(A29f, 0) AS parts
                  FROM households)
            WHERE abs(A29 - parts) > 0.005
        """,
    ),
    Rule(
        id="net_income_formula",
        title="家庭纯收入与公式不符（A33=A28+A29+A30+A31-A32）",
        family="income",
        roles=("A28", "A29", "A30", "A31", "A32", "A33"),
        fields=("A33", "A28", "A29", "A30", "A31", "A32"),
        severity="error",
        source="003_9f67e561e8efc1ae.txt",
        quote="A33=A28+A29+A30+A31-A32",
        forms=("2023-1",),
        sql="""
            SELECT unit, {household} AS household, NULL AS person,
                   printf('A33 家庭纯收入填%.2f元，按 A28+A29+A30+A31-A32 应为%.2f元',
                          A33::DOUBLE, net::DOUBLE) AS message
            FROM (SELECT *, A28 + A29 + A30 + A31 - A32 AS net FROM households WHERE A33 IS NOT NULL)
            WHERE abs(A33 - net) > 0.005
        """,
    ),
    Rule(
        id="id_region_prefix",
        title="身份证号码前六位不是行政区划代码",
        family="identity",
        roles=("id",),
        fields=("id",),
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=IDENTITY_QUOTE,
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('身份证号码前六位“%s”不是存在过的县级以上行政区划代码（GB/T 2260），请核对证件',
                          substr({{id}}, 1, 6)) AS message
            FROM members
            WHERE {WELL_FORMED_ID}
              AND substr({{id}}, 18, 1) = {EXPECTED_CHECK}
              AND substr({{id}}, 1, 6) NOT IN (SELECT code FROM regions)
        """,
    ),
    Rule(
        id="option_in_range",
        title="代码项不是表上的选项",
        family="enumerations",
        roles=("options",),
        fields=(),  # each problem names its field
        severity="error",
        source="000_a43a35703e24dac8.txt",
        quote="持续开展数据清洗，加强与行业部门的信息比对，切实提高建档立卡数据的真实性和准确性",
        sql="{options}",
    ),
    Rule(
        id="property_sum",
        title="财产性收入与分项之和不符",
        family="income",
        roles=("A31", "A31a", "A31b"),
        fields=("A31", "A31a", "A31b"),
        severity="error",
        source="000_a43a35703e24dac8.txt",
        quote="A31a资产收益扶贫分红收入（元）",
        forms=("2020-1", "2020-2"),
        sql="""
            SELECT unit, {household} AS household, NULL AS person,
                   printf('A31 财产性收入填%.2f元，分项（资产收益扶贫分红收入、其他财产性收入）之和为%.2f元',
                          A31::DOUBLE, parts::DOUBLE) AS message
            FROM (SELECT *, coalesce(A31a, 0) + coalesce(A31b, 0) AS parts FROM households
                  WHERE A31a IS NOT NULL OR A31b IS NOT NULL)
            WHERE abs(A31 - parts) > 0.005
        """,
    ),
    Rule(
        id="reference_income_formula",
        title="收入参考范围与公式不符（A37=A33+A35-A36）",
        family="income",
        roles=("A28", "A29", "A30", "A31", "A32", "A35", "A36", "A37"),
        fields=("A37", "A35", "A36"),
        severity="error",
        source="003_9f67e561e8efc1ae.txt",
        quote="A37=A33+A35-A36",
        forms=("2023-1",),
        # A33 from its items, not as entered: a wrong A33 is net_income_formula's problem alone.
        sql=f"""
            SELECT unit, {{household}} AS household, NULL AS person,
                   printf('A37 收入参考范围填%.2f元，按 A33+A35-A36 应为%.2f元', A37::DOUBLE, expected::DOUBLE)
                   AS message
            FROM (SELECT *, {NET_INCOME} + coalesce(A35, 0) - coalesce(A36, 0) AS expected FROM households
                  WHERE A37 IS NOT NULL)
            WHERE abs(A37 - expected) > 0.005
        """,
    ),
    Rule(
        id="per_capita_formula",
        title="人均收入与家庭人口数不符（A34=A33/人口，A38=A37/人口）",
        family="income",
        roles=("id", "A28", "A29", "A30", "A31", "A32", "A34", "A35", "A36", "A38"),
        fields=("A34", "A38"),
        severity="error",
        source="004_371bf13e07ef619c.txt",
        quote="2019年贫困户人均纯收入=2019年贫困户年纯收入/家庭人口数。家庭人口数按截至2019年9月30日时点统计。",
        forms=("2023-1",),
        # Against the items (not A33, A37 as entered): a wrong A33 is net_income_formula's problem alone.
        sql=f"""
            SELECT unit, household, NULL AS person,
                   printf('按统计时点的家庭人口%d人：A34 应为%.2f元（填%s），A38 应为%.2f元（填%s）', members,
                          net / members, coalesce(printf('%.2f', A34), '空'),
                          reference / members, coalesce(printf('%.2f', A38), '空')) AS message
            FROM (SELECT h.unit, h.{{household}} AS household, A34, A38, n.members, {NET_INCOME} AS net,
                         {NET_INCOME} + coalesce(A35, 0) - coalesce(A36, 0) AS reference
                  FROM households h
                  JOIN ({MEMBERS_AT_STATUS}) n
                    ON n.unit = h.unit AND n.{{household}} = h.{{household}})
            WHERE (A34 IS NOT NULL AND abs(A34 - net / members) > 0.01)
               OR (A38 IS NOT NULL AND abs(A38 - reference / members) > 0.01)
        """,
    ),
    per_capita_rule(
        id="new_poor_below_line",
        title="新识别贫困户人均纯收入不低于识别标准",
        quote="今年贫困户识别和退出收入标准为年人均纯收入4000元。",
        line="poverty_line_yuan",
        form="2020-1",
        message="人均纯收入%.2f元（%d人），不低于识别标准%.0f元，不应识别为贫困户",
    ),
    # Seed 001 measures 可支配收入; the 2020 form (附件2) asks for none, only the 纯收入 items A28–A32 of the
    # registry: their net sum is the nearest measure the form gives, and the rule says so.
    per_capita_rule(
        id="edge_below_line",
        title="边缘易致贫户人均纯收入不低于6000元（表上无可支配收入，按A28+A29+A30+A31-A32计）",
        quote="边缘易致贫户以“非建档立卡农户中家庭年人均可支配收入低于6000元，且有致贫风险”为标准。",
        line="unstable_edge_line_yuan",
        form="2020-2",
        message="人均纯收入%.2f元（%d人，按A28+A29+A30+A31-A32计：表上无可支配收入项），不低于%.0f元，"
        "不符合边缘易致贫户标准（可支配收入低于6000元），请核实收入",
    ),
    per_capita_rule(
        id="poor_household_below_line_2017",
        title="贫困户家庭人均收入超过扶贫指导线",
        quote="家庭人均收入稳定超过国家现行扶贫标准（2017年省级确定的3200元扶贫指导线）",
        line="poverty_line_yuan",
        form="2017-2",
        source="002_be45378c2c8f6dcb.txt",
        income=NET_INCOME_2017,
        items=INCOME_ITEMS_2017,
        exceeds=True,  # "超过": 3,200 yuan itself does not exceed the line
        message="家庭人均收入%.2f元（%d人），已超过扶贫指导线%.0f元，不应识别为贫困户（可列为拟脱贫对象）",
    ),
    Rule(
        id="risk_eliminated_with_basic_needs_unresolved",
        title="“三保障”和饮水安全问题未解决却标注风险消除",
        family="eligibility",
        roles=("A23", "A24", "A25", "A26", "A17", "A53"),
        fields=("A53", "A23", "A24", "A25", "A26"),
        severity="error",
        source="003_9f67e561e8efc1ae.txt",
        quote="致贫返贫风险消除且不存在“三保障”和饮水安全问题的，及时标注“风险消除”。",
        forms=("2023-1",),
        # A26 is "A17 指标生成": read from the members' A17 (as entered only for a household without member rows).
        sql=f"""
            {UNINSURED}
            SELECT h.unit, h.{{household}} AS household, NULL AS person,
                   printf('A53 风险消除方式填“%s”，但%s，风险不能标注消除', A53,
                          array_to_string(list_filter([
                              CASE WHEN A23 = '是' THEN 'A23 住房出现安全问题' END,
                              CASE WHEN A24 = '是' THEN 'A24 有适龄儿童少年失学辍学' END,
                              CASE WHEN A25 = '是' THEN 'A25 饮水出现安全问题' END,
                              CASE WHEN u.members IS NULL AND A26 = '是'
                                   THEN 'A26 有家庭成员未参加基本医疗保险' END,
                              CASE WHEN u.uninsured > 0
                                   THEN printf('A26 有家庭成员未参加基本医疗保险（按A17，%d人）', u.uninsured) END],
                              lambda x: x IS NOT NULL), '、'))
                   AS message
            FROM households h LEFT JOIN uninsured u ON u.unit = h.unit AND u.household = h.{{household}}
            WHERE A53 IS NOT NULL
              AND ('是' IN (A23, A24, A25) OR (u.members IS NULL AND A26 = '是') OR u.uninsured > 0)
        """,
    ),
    Rule(
        id="a26_from_a17",
        title="A26 与家庭成员的A17不一致（A26由A17指标生成）",
        family="eligibility",
        roles=("A26", "A17"),
        fields=("A26", "A17"),
        severity="error",
        source="003_9f67e561e8efc1ae.txt",
        quote="A26 是否有家庭成员未参加城乡居民（职工）基本医疗保险（A17 指标生成）",
        forms=("2023-1",),
        sql=f"""
            {UNINSURED}
            SELECT h.unit, h.{{household}} AS household, NULL AS person,
                   printf('A26 填“%s”，按家庭成员的A17应为“%s”（%d人未参加基本医疗保险）', A26,
                          CASE WHEN u.uninsured > 0 THEN '是' ELSE '否' END, u.uninsured) AS message
            FROM households h JOIN uninsured u ON u.unit = h.unit AND u.household = h.{{household}}
            WHERE A26 IS NOT NULL AND A26 <> CASE WHEN u.uninsured > 0 THEN '是' ELSE '否' END
        """,
    ),
    Rule(
        id="risk_elimination_date",
        title="风险消除方式与消除时间不一致，或消除时间不在本年度、晚于录入时间",
        family="eligibility",
        roles=("A53", "A54"),
        fields=("A53", "A54"),
        severity="error",
        source="003_9f67e561e8efc1ae.txt",
        quote="致贫返贫风险消除且不存在“三保障”和饮水安全问题的，及时标注“风险消除”。",
        forms=("2023-1",),
        # Seed 003 asks that risks found eliminated in the Nov–Dec 排查 be marked then; "9月30日24时" dates the
        # *state* indicators only. So A54 lies in the campaign's year and not after the upload that entered it.
        sql="""
            SELECT h.unit, h.{household} AS household, NULL AS person,
                   CASE WHEN A54 IS NULL THEN printf('A53 风险消除方式填“%s”，A54 风险消除时间未填', A53)
                        WHEN A53 IS NULL THEN printf('A54 风险消除时间填%s，A53 风险消除方式未填（风险未消除的留空）',
                                                     strftime(A54, '%Y-%m-%d'))
                        WHEN A54 < $year_starts OR A54 >= $year_ends
                        THEN printf('A54 风险消除时间%s不在本年度（%d年）内', strftime(A54, '%Y-%m-%d'),
                                    year($year_starts))
                        ELSE printf('A54 风险消除时间%s晚于录入时间%s', strftime(A54, '%Y-%m-%d'),
                                    strftime(e.entered_at, '%Y-%m-%d %H:%M')) END AS message
            FROM households h LEFT JOIN entered e ON e.unit = h.unit
            WHERE (A53 IS NULL) <> (A54 IS NULL)
               OR A54 < $year_starts OR A54 >= $year_ends
               OR A54 > e.entered_at
        """,
    ),
    Rule(
        id="not_enjoying_policy_income",
        title="脱贫户存在脱贫不享受政策人口认定标准的情形且无例外（附件2，8条情形、4条例外）",
        family="eligibility",
        roles=("A4", "A34", "A20", "A13", "county"),
        fields=("A4", "A34", "A20", "A13"),
        severity="warning",
        source="003_9f67e561e8efc1ae.txt",
        quote="脱贫享受政策人口存在以下情形之一的，原则上认定为脱贫不再享受政策人口：",
        figures=("rural_income_yuan",),
        figures_for="A4 = '是'",
        forms=("2023-1",),
        # 附件2's criterion 1 by A34 (家庭人均纯收入, the form's per-capita income) against the county's figure; 2–8
        # and exceptions 2–4 from the sheet the project adds (policy); exception 1 (低保) by the members' A20.
        # Exception 2 is "患大病，且…自付费用支出较大" and 3 "重度残疾人": the sheet's 是 counts only with a member
        # whose A13 shows 大病 or 残疾; exception 4 ("因灾因意外等造成家庭生活困难") also where the form's own risk type
        # A27 is 因自然灾害 or 因意外事故. A household of a county without its figure is checked on 2–8 (the run says
        # so).
        sql=f"""
            WITH flags AS (
                SELECT h.unit, h.{{household}} AS household, h.A34, h.{{county}} AS county, f.value AS line,
                       coalesce(h.A34 >= f.value, false) AS c1,
                       {", ".join(f"coalesce(p.c{n} = '是', false) AS c{n}" for n in range(2, 9))},
                       EXISTS (SELECT 1 FROM members m WHERE m.unit = h.unit AND m.{{household}} = h.{{household}}
                                                         AND m.A20 = '是') AS e1,
                       coalesce(p.e2 = '是', false)
                           AND EXISTS (SELECT 1 FROM members m WHERE m.unit = h.unit
                                         AND m.{{household}} = h.{{household}} AND m.A13 LIKE '%大病%') AS e2,
                       coalesce(p.e3 = '是', false)
                           AND EXISTS (SELECT 1 FROM members m WHERE m.unit = h.unit
                                         AND m.{{household}} = h.{{household}} AND m.A13 LIKE '%残疾%') AS e3,
                       coalesce(p.e4 = '是', false)
                           OR list_has_any(coalesce(CAST(h.A27 AS VARCHAR[]), []), ['因自然灾害', '因意外事故']) AS e4
                FROM households h
                LEFT JOIN policy p ON p.unit = h.unit AND p.{{household}} = h.{{household}}
                LEFT JOIN county_rural_income_yuan f ON f.county = h.{{county}}
                WHERE h.A4 = '是'
            )
            SELECT unit, household, NULL AS person,
                   '脱贫户存在脱贫不享受政策人口认定标准的情形：'
                   || concat_ws('、',
                        CASE WHEN c1 THEN printf('第1条（家庭人均纯收入%.2f元，达到%s农民人均可支配收入%.0f元）',
                                                 A34, county, line) END,
                        {", ".join(f"CASE WHEN c{n} THEN '第{n}条（{word}）' END" for n, word in NOT_ENJOYING_WORDS)})
                   || '；且无仍按脱贫享受政策人口管理的情形'
                   || '（低保、大病且自付费用支出较大、重度残疾、因灾因意外生活困难）：'
                   || '请核实，符合的按“民主评议—乡镇审核—村级公示”的程序认定为脱贫不再享受政策人口' AS message
            FROM flags
            WHERE (c1 OR {" OR ".join(f"c{n}" for n in range(2, 9))}) AND NOT (e1 OR e2 OR e3 OR e4)
        """,
    ),
    Rule(
        id="change_month_prior_q4",
        title="变更月份在上年10月至12月，应统一调整为上年9月",
        family="changes",
        roles=("id", "change_month"),
        fields=("change_month",),
        severity="warning",
        source="004_371bf13e07ef619c.txt",
        quote="对于去年底动态管理工作中变更月份为“2019年10月至12月”的自然变更人员，其变更月份统一调整为2019年9月。",
        forms=("2020-4", "2020-5"),
        # The national office re-dated *last year's* October–December changes to September: one entered now with
        # such a month may be one of them again (a warning, not an error). "我们对新生儿的身份证号进行分析，发现有一部分
        # 生日为2019年10月至12月，这部分人群不做调整。": a newborn's change in its own birth month is right.
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('变更月份填%s：上年10月至12月的自然变更已统一调整至%s，可能与上年度已调整至9月的变更重复，请核实',
                          strftime({{change_month}}, '%Y-%m'), strftime($prior_september, '%Y年%-m月')) AS message
            FROM members
            WHERE {{change_month}} >= $prior_q4_starts AND {{change_month}} < $prior_q4_ends
              AND coalesce(strftime({BIRTH_DATE}, '%Y-%m') <> strftime({{change_month}}, '%Y-%m'), true)
        """,
    ),
    Rule(
        id="dropout_reason",
        title="义务教育阶段适龄儿童不在校但未填失学或辍学原因",
        family="education",
        roles=("id", "school", "dropout"),
        fields=("school", "dropout"),
        severity="error",
        source="000_a43a35703e24dac8.txt",
        quote="增加了“失学或辍学原因”、“是否会讲普通话”等23个指标",
        forms=("2020-1", "2020-2", "2020-4"),
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('%d岁（义务教育年龄），在校生状况填“%s”，请填写失学或辍学原因', age, {{school}}) AS message
            FROM (SELECT *, date_diff('year', {BIRTH_DATE}, $status_date)
                            - CASE WHEN strftime({BIRTH_DATE}, '%m%d')
                                        > strftime($status_date, '%m%d') THEN 1 ELSE 0 END AS age
                  FROM members WHERE {WELL_FORMED_ID})
            WHERE age BETWEEN 6 AND 15
              AND ({{school}} IS NULL OR {{school}} IN ('非在校生', '失学', '辍学', '失学辍学'))
              AND {{dropout}} IS NULL
        """,
    ),
    Rule(
        id="change_month_in_period",
        title="变更月份不在本年度计算周期内",
        family="changes",
        roles=("id", "change_month"),
        fields=("change_month",),
        severity="error",
        source="004_371bf13e07ef619c.txt",
        quote="贫困户和监测户的收入计算周期，以识别月份的上一年作为始点，以识别月份的上月作为终点。",
        forms=("2020-4", "2020-5"),
        period=True,  # the campaign's own period, quoted from its calendar (seed 004's rule where the plan gives none)
        sql="""
            SELECT unit, {household} AS household, {id} AS person,
                   printf('变更月份填%s，不在本年度计算周期（%s至%s）内', strftime({change_month}, '%Y-%m'),
                          strftime($income_starts, '%Y年%-m月%-d日'),
                          strftime($income_ends - INTERVAL 1 DAY, '%Y年%-m月%-d日')) AS message
            FROM members
            WHERE {change_month} >= $income_ends OR {change_month} < $income_starts
        """,
    ),
    Rule(
        id="newborn_birth_month",
        title="新生儿的变更月份与出生月份不一致",
        family="changes",
        roles=("id", "increase_reason", "change_month"),
        fields=("change_month", "increase_reason", "id"),
        severity="error",
        source="004_371bf13e07ef619c.txt",
        quote="我们对新生儿的身份证号进行分析，发现有一部分生日为2019年10月至12月，这部分人群不做调整。",
        forms=("2020-4",),
        sql=f"""
            SELECT unit, {{household}} AS household, {{id}} AS person,
                   printf('增加原因为新生儿，身份证号码表明出生于%s，变更月份填%s，应为出生当月',
                          strftime(birth, '%Y-%m'), strftime({{change_month}}, '%Y-%m')) AS message
            FROM (SELECT *, {BIRTH_DATE} AS birth FROM members
                  WHERE {WELL_FORMED_ID} AND substr({{id}}, 18, 1) = {EXPECTED_CHECK})
            WHERE {{increase_reason}} = '1' AND {{change_month}} IS NOT NULL AND birth IS NOT NULL
              AND strftime(birth, '%Y-%m') <> strftime({{change_month}}, '%Y-%m')
        """,
    ),
    Rule(
        id="village_exit_incidence",
        title="贫困发生率不低于2%，贫困村不能退出",
        family="aggregates",
        roles=("admin_village", "population_total", "poor_population"),
        fields=("poor_population", "population_total"),
        severity="warning",
        source="002_be45378c2c8f6dcb.txt",
        quote="对脱贫核查和动态调整工作后，贫困发生率高于2%的2015、2016已退出贫困村要进行“回头看”",
        params=("village_exit_incidence_max",),
        forms=("2017-3",),
        sql="""
            SELECT unit, {admin_village} AS household, NULL AS person,
                   printf('行政村贫困发生率%.2f%%（贫困人口%d人／总人口%d人，%d个自然村合计），不低于%.0f%%：'
                          || '不能退出；已退出的要“回头看”', 100.0 * poor / total, poor, total, villages,
                          100 * $village_exit_incidence_max) AS message
            FROM (SELECT unit, {admin_village}, sum({poor_population}) AS poor, sum({population_total}) AS total,
                         count(*) AS villages
                  FROM villages WHERE {poor_population} IS NOT NULL GROUP BY unit, {admin_village})
            WHERE total > 0 AND poor / total >= $village_exit_incidence_max
        """,
    ),
    Rule(
        id="monitoring_scale",
        title="县监测对象规模不在建档立卡贫困人口的5%左右",
        family="aggregates",
        roles=(),
        fields=("registered_population", "deep_poverty"),
        severity="warning",
        source="004_371bf13e07ef619c.txt",
        quote=(
            "以县为单位，包括去年底识别的在内的脱贫监测户（人口）和边缘户（人口）在内的监测对象规模，"
            "一般为建档立卡贫困人口 5% 左右"
        ),
        params=(
            "monitoring_scale_share",
            "monitoring_scale_low",
            "monitoring_scale_high",
            "monitoring_scale_max_share",
        ),
        forms=("registry",),
        # "左右" is a band, not a cap (the calendar's low and high); a deep-poverty county may reach 10 %
        # (monitoring_scale_deep_poverty), any other beyond the band is asked about.
        sql=f"""
            {MONITORING_SCALE}
            SELECT unit, county AS household, NULL AS person,
                   printf('%s监测对象%s，占建档立卡贫困人口%d人的%.1f%%，', county, counted, registered_population,
                          100 * share)
                   || CASE WHEN share < $monitoring_scale_low THEN '低于'
                           ELSE '高于' END
                   || printf('一般规模（%.0f%%左右，按%.1f%%至%.1f%%）', 100 * $monitoring_scale_share,
                             100 * $monitoring_scale_low, 100 * $monitoring_scale_high)
                   || CASE WHEN share > $monitoring_scale_max_share
                           THEN printf('，且超过%.0f%%', 100 * $monitoring_scale_max_share) ELSE '' END
                   || '，请核实是否应纳尽纳或有误纳' AS message
            FROM scale
            WHERE share < $monitoring_scale_low OR (NOT deep AND share > $monitoring_scale_high)
        """,
    ),
    Rule(
        id="monitoring_scale_deep_poverty",
        title="深度贫困县监测对象规模超过建档立卡贫困人口的10%",
        family="aggregates",
        roles=(),
        fields=("registered_population", "deep_poverty"),
        severity="error",
        source="004_371bf13e07ef619c.txt",
        quote="深度贫困地区原则上不超过 10%。",
        params=("monitoring_scale_max_share",),
        forms=("registry",),
        sql=f"""
            {MONITORING_SCALE}
            SELECT unit, county AS household, NULL AS person,
                   printf('%s（深度贫困地区）监测对象%s，占建档立卡贫困人口%d人的%.1f%%，原则上不超过%.0f%%',
                          county, counted, registered_population, 100 * share, 100 * $monitoring_scale_max_share)
                   AS message
            FROM scale
            WHERE deep AND share > $monitoring_scale_max_share
        """,
    ),
    Rule(
        id="change_head_known",
        title="增减成员的户不在本工作的户表或工作台账中",
        family="changes",
        roles=("household",),
        fields=("household",),
        severity="warning",
        source="000_a43a35703e24dac8.txt",
        quote="村委会或驻村工作队针对有家庭成员增加的贫困户，以户为单位填报此表",
        forms=("2020-4", "2020-5"),
        needs=("workload",),
        # The household a change belongs to is one the campaign knows: on a household form of any unit, or on
        # the year's 工作台账 (the registry's households to visit; `campaign workload load`). Without a
        # workload the rule is reported as not run: the registry's households are not in the forms.
        sql="""
            SELECT unit, household, NULL AS person,
                   '户主证件号码不在本工作的户表（附件1至3）和工作台账中：请核对证件号码，或确认该户在册' AS message
            FROM (SELECT DISTINCT unit, {household} AS household FROM members)
            WHERE household NOT IN (SELECT household FROM known_households)
        """,
    ),
)
