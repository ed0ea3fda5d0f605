"""Access tokens: one per unit (or the province's), shown once, stored as a keyed hash, revocable.

The key (pepper) comes from ``CAMPAIGN_TOKEN_PEPPER``; a local run without it uses a fixed
development key, which a production deployment must not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select

from include.audit import audit
from include.store.db import session_scope
from include.store.models import Token

PROVINCE = "province"
_DEV_PEPPER = "campaign-local-development-pepper"


def _hash(token: str) -> str:
    pepper = os.environ.get("CAMPAIGN_TOKEN_PEPPER") or _DEV_PEPPER
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credential:
    """Who a valid token speaks for: one unit, or the province (all units, "on behalf")."""

    token_id: int
    unit: str

    @property
    def is_province(self) -> bool:
        return self.unit == PROVINCE

    @property
    def actor(self) -> str:
        return f"token#{self.token_id}:{self.unit}"


def issue_token(engine: Engine, unit: str, at: dt.datetime, label: str = "") -> tuple[int, str]:
    """A new token for the unit; the plain token is returned once and never stored."""
    plain = f"cmp_{secrets.token_urlsafe(32)}"
    with session_scope(engine) as session:
        row = Token(unit=unit, token_hash=_hash(plain), label=label or unit, issued_at=at)
        session.add(row)
        session.flush()
        audit(
            session, at=at, action="token_issued", actor="cli", unit=unit, detail=f"签发令牌 #{row.id}（{row.label}）"
        )
        return row.id, plain


def revoke_tokens(engine: Engine, at: dt.datetime, *, unit: str | None = None, token_id: int | None = None) -> int:
    """Revoke a token by id, or every active token of a unit; returns how many were revoked."""
    with session_scope(engine) as session:
        query = select(Token).where(Token.revoked_at.is_(None))
        query = query.where(Token.id == token_id) if token_id is not None else query.where(Token.unit == unit)
        rows = list(session.scalars(query))
        for row in rows:
            row.revoked_at = at
            audit(session, at=at, action="token_revoked", actor="cli", unit=row.unit, detail=f"吊销令牌 #{row.id}")
        return len(rows)


def verify_token(engine: Engine, plain: str) -> Credential | None:
    """The credential of an active token, or None for an unknown or revoked one."""
    if not plain:
        return None
    with session_scope(engine) as session:
        row = session.scalar(select(Token).where(Token.token_hash == _hash(plain), Token.revoked_at.is_(None)))
        return Credential(row.id, row.unit) if row else None
