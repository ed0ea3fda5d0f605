"""Masking of personal data (DESIGN.md): ID, phone and account numbers and names, everywhere but the
unit's own problem list."""

from __future__ import annotations

import re


def mask_id(value: str) -> str:
    """370102198001011234 → 370102********1234 (region and last four kept)."""
    if len(value) <= 8:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:] if len(value) > 10 else value[:2] + "*" * (len(value) - 2)


def mask_phone(value: str) -> str:
    """13812345678 → 138****5678."""
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_account(value: str) -> str:
    return "*" * max(len(value) - 4, 0) + value[-4:]


def mask_name(value: str) -> str:
    """张三丰 → 张**."""
    return value[:1] + "*" * (len(value) - 1) if value else value


MASKS = {"id_number": mask_id, "phone": mask_phone, "account": mask_account, "name": mask_name}


def mask_value(field_type: str, value: object) -> object:
    """A value as it may be shown outside the unit's own list."""
    mask = MASKS.get(field_type)
    if mask is None or value is None:
        return value
    return mask(str(value))


# A number inside free text, however it was typed: digits of any script (full-width and Arabic-Indic too), in
# groups joined by one or two separators of the kinds clerks and their tools put in (370102-198001-011234,
# 138 1234 5678, 370102.198001.011234, 370102x198001x011234), an ID's final X included.
_SEPARATORS = "-_ .·/\u00a0\t\u3000\u2013\u2014\uff0d\uff3f\uff0e\uff0f"  # not a list's , or 、
_NUMBER_RUN = re.compile(rf"\d+(?:(?:[{_SEPARATORS}]{{1,2}}|[A-Za-z])\d+)*[XxＸｘ]?")
_DIGITS = re.compile(r"\d+")


_CODE = re.compile(r"[A-Za-z0-9_*-]{1,32}")  # a unit or milestone code, shown whole once redacted


def _personal(digits: str) -> bool:
    """The lengths of what is masked: a mobile phone (11), a landline with its area code (12, from 0), an ID
    number (15, 18), a bank account (16 to 19), a disability card (20). A date, a count, a unit code (6, 9, 12
    digits from 1 to 6) or a sum of money is none of these."""
    n = len(digits)
    return n == 11 or (n == 12 and digits[0] in "0０٠") or 15 <= n <= 20


def _mask_digits(digits: str) -> str:
    if len(digits) >= 15:
        return mask_id(digits)
    return mask_phone(digits)


def _mask_run(match: re.Match[str]) -> str:
    """Within one run of digit groups, each shortest stretch of consecutive groups that makes a personal number
    (groups of three digits or more, or one group alone) is masked; the rest stays as typed."""
    run = match.group(0)
    groups = [(group.start(), group.end()) for group in _DIGITS.finditer(run)]
    if run[-1] in "XxＸｘ":
        last = groups[-1]
        groups[-1] = (last[0], last[1] + 1)
    out, kept_to, i = [], 0, 0
    while i < len(groups):
        found = None
        for j in range(i, len(groups)):
            stretch = groups[i : j + 1]
            if j > i and min(b - a for a, b in stretch) < 3:
                break
            number = "".join(run[a:b] for a, b in stretch)
            if _personal(number):  # the shortest stretch: two phones in a row are two numbers
                found = (j, number)
                break
        if found is None:
            i += 1
            continue
        j, number = found
        out += [run[kept_to : groups[i][0]], _mask_digits(number)]
        kept_to, i = groups[j][1], j + 1
    return "".join([*out, run[kept_to:]])


def redact(text: str) -> str:
    """Free text (a message, an audit detail, a log line) with every number that could be an ID, phone or
    account number masked. The one choke point for text that may echo a cell or a header: replies, the
    CLI's messages, audit rows and logs all pass through it."""
    return _NUMBER_RUN.sub(_mask_run, text)


def short_masked(value: object, keep: int = 4) -> str:
    """A value from a request or a cell as an error message may echo it: masked, and at most a short prefix
    (half of a short value, so that a name is never shown whole)."""
    text = redact("".join(ch if ch.isprintable() else "?" for ch in str(value)[:200]))
    if _CODE.fullmatch(text):  # a code (a unit, a milestone): no personal data, shown whole
        return text
    shown = min(keep, len(text) // 2)
    return text if len(text) <= 1 else text[:shown] + "…"
