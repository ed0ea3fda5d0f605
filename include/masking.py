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


# Digits of any script (full-width and Arabic-Indic too) in groups joined by single separators, an ID's final X
# included: what an ID, phone or account number looks like inside free text, however it was typed
# (370102-198001-011234, 138 1234 5678, a370102_198001_011234). Seven digits or more are masked, except a
# date (2020-11-30, 2020-11-30 24 before ":00"), which is no one's number.
_SEPARATOR = "-_ \u3000\uff0d\uff3f"  # and their full-width forms: －, ＿, the ideographic space
_NUMBER_RUN = re.compile(rf"\d(?:[{_SEPARATOR}]?\d)*[XxＸｘ]?")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}(?: \d{1,2})?")


_CODE = re.compile(r"[A-Za-z0-9_*-]{1,32}")


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = re.sub(f"[{_SEPARATOR}]", "", run)
    if len(digits.rstrip("XxＸｘ")) < 7 or _DATE.fullmatch(run):
        return run
    if len(digits) >= 15:
        return mask_id(digits)
    if len(digits) == 11:
        return mask_phone(digits)
    return "*" * (len(digits) - 2) + digits[-2:]


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
