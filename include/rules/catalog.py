"""The rule catalog: one declaration per rule, run set-based by include/rules/engine.py.

A rule is a SQL query (DuckDB) over the views ``households`` and ``members`` of one form's records
(every unit, each row with its ``unit``). It selects ``unit``, ``household``, ``person`` (NULL for a
household-level problem) and ``message``; the engine adds the rule's id, fields and severity.

Column names in the SQL are roles, filled in per form from its spec: ``{id}`` the member's ID
number, ``{sex}``, ``{relation}``, ``{household}`` the household key (the head's ID as entered).
Parameters from the campaign calendar are bound by name (``$status_date``), never written into the SQL.

Work in progress (issue 5): identity, income arithmetic, eligibility lines and the dropout reason so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    params: tuple[str, ...] = ()  # calendar thresholds bound as $name; a campaign without them skips the rule
    forms: tuple[str, ...] = ()  # the forms it applies to (codes mean different things in 2017, 2020, 2023); () = any


PER_CAPITA = """
    SELECT h.unit, h.{household} AS household, (A28 + A29 + A30 + A31 - A32) / n.members AS per_capita, n.members
    FROM households h
    JOIN (SELECT unit, {household}, count(*) AS members FROM members GROUP BY unit, {household}) n
      ON n.unit = h.unit AND n.{household} = h.{household}
"""
INCOME_ITEMS = ("A28", "A29", "A30", "A31", "A32")


def per_capita_rule(*, id: str, title: str, quote: str, line: str, form: str, message: str) -> Rule:
    """Per-capita net income (A28+A29+A30+A31-A32 over the members) at or above the calendar's ``line``.

    ``message`` is a printf template of the per-capita income, the members and the line.
    """
    return Rule(
        id=id,
        title=title,
        family="eligibility",
        roles=INCOME_ITEMS,
        fields=INCOME_ITEMS,
        severity="error",
        source="001_75f64364fef16825.txt",
        quote=quote,
        params=(line,),
        forms=(form,),
        sql=f"""
            SELECT unit, household, NULL AS person,
                   printf('{message}', per_capita, members, ${line}) AS message
            FROM ({PER_CAPITA})
            WHERE per_capita >= ${line}
        """,
    )


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
              AND (try_strptime(substr({{id}}, 7, 8), '%Y%m%d') IS NULL
                   OR try_strptime(substr({{id}}, 7, 8), '%Y%m%d') > $status_date)
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
    per_capita_rule(
        id="new_poor_below_line",
        title="新识别贫困户人均纯收入不低于识别标准",
        quote="今年贫困户识别和退出收入标准为年人均纯收入4000元。",
        line="poverty_line_yuan",
        form="2020-1",
        message="人均纯收入%.2f元（%d人），不低于识别标准%.0f元，不应识别为贫困户",
    ),
    per_capita_rule(
        id="edge_below_line",
        title="边缘易致贫户人均可支配收入不低于6000元",
        quote="边缘易致贫户以“非建档立卡农户中家庭年人均可支配收入低于6000元，且有致贫风险”为标准。",
        line="unstable_edge_line_yuan",
        form="2020-2",
        message="人均收入%.2f元（%d人），不低于%.0f元，不符合边缘易致贫户标准",
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
            FROM (SELECT *, date_diff('year', try_strptime(substr({{id}}, 7, 8), '%Y%m%d'), $status_date)
                            - CASE WHEN strftime(try_strptime(substr({{id}}, 7, 8), '%Y%m%d'), '%m%d')
                                        > strftime($status_date, '%m%d') THEN 1 ELSE 0 END AS age
                  FROM members WHERE {WELL_FORMED_ID})
            WHERE age BETWEEN 6 AND 15
              AND ({{school}} IS NULL OR {{school}} IN ('非在校生', '失学', '辍学', '失学辍学'))
              AND {{dropout}} IS NULL
        """,
    ),
)
