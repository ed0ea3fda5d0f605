"""Masking of personal data (DESIGN.md): ID, phone and account numbers and names, everywhere but the
unit's own problem list."""

from __future__ import annotations


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
