"""Access tokens: issued per unit (or the province's), shown once, stored as a keyed hash, scoped, expiring.

Kinds (what a token may do):
- ``read``: a unit's (or with ``--unit province`` every unit's) status and progress pages; the token of a
  progress link, which is forwarded, bookmarked and kept in browser histories, so it can submit nothing;
- ``submit``: a unit's reports and workbooks, and reading its own status;
- ``office``: the province's office: every unit, reports on behalf, every status.

A token may be scoped to one campaign (``campaign_id``) and always has an expiry. The key (pepper) is
``CAMPAIGN_TOKEN_PEPPER``; ``CAMPAIGN_TOKEN_PEPPER_PREVIOUS`` is still accepted while the key is rotated (a
token verified with it is re-hashed with the new key). Outside a local run (``CAMPAIGN_LOCAL_RUN=1``, set by
scripts/env.sh and the local runners) a missing pepper is an error: tokens are never hashed with a public key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select

from include.door.keys import peppers
from include.store.audit import audit
from include.store.db import session_scope
from include.store.models import Token

PROVINCE = "province"
KINDS = ("read", "submit", "office")
DEFAULT_LIFETIME = dt.timedelta(days=365)
SESSION_LIFETIME = dt.timedelta(hours=12)
TOKEN_PREFIX = "cmp_"  # noqa: S105 - a prefix, not a secret: every token we issue starts so


def ours(authorization: str | None) -> str:
    """The bearer of an ``Authorization`` value if it is one of our tokens, else "". Airflow's api-server adds its
    own JWT to every request in a local run (SimpleAllAdminMiddleware): it must not hide a page's session."""
    given = (authorization or "").removeprefix("Bearer ").strip()
    return given if given.startswith(TOKEN_PREFIX) else ""


def _hash(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Credential:
    """Who a valid token speaks for and what it may do."""

    token_id: int
    unit: str
    kind: str = "submit"
    campaign_id: str | None = None
    expires_at: dt.datetime | None = None

    @property
    def is_province(self) -> bool:
        """Sees every unit (the office's token, or a read-only link of the province)."""
        return self.unit == PROVINCE

    @property
    def acting(self) -> str | None:
        """The unit the credential reads and acts for, with the units below it; None for the province's."""
        return None if self.is_province else self.unit

    @property
    def can_submit(self) -> bool:
        return self.kind in ("submit", "office")

    def covers(self, campaign_id: str) -> bool:
        return self.campaign_id is None or self.campaign_id == campaign_id

    @property
    def actor(self) -> str:
        return f"token#{self.token_id}:{self.unit}"


def issue_token(
    engine: Engine,
    unit: str,
    at: dt.datetime,
    label: str = "",
    *,
    kind: str | None = None,
    campaign_id: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[int, str]:
    """A new token for the unit; the plain token is returned once and never stored.

    ``kind`` defaults to ``office`` for the province and ``submit`` for a unit; ``expires_at`` to a year on.
    """
    kind = kind or ("office" if unit == PROVINCE else "submit")
    if kind not in KINDS:
        raise ValueError(f"令牌类型只能是 {'、'.join(KINDS)}")
    if (kind == "office") != (unit == PROVINCE) and kind != "read":
        raise ValueError("省级办公室（--unit province）的令牌为 office 或 read 类，单位的令牌为 submit 或 read 类")
    expires_at = expires_at or at + DEFAULT_LIFETIME
    if expires_at <= at:
        raise ValueError("有效期必须晚于签发时间")
    plain = f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    with session_scope(engine) as session:
        row = Token(
            unit=unit,
            token_hash=_hash(plain, peppers()[0]),
            label=label or unit,
            issued_at=at,
            kind=kind,
            campaign_id=campaign_id,
            expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        scope = f"战役 {campaign_id}" if campaign_id else "全部战役"
        audit(
            session,
            at=at,
            action="token_issued",
            actor="cli",
            unit=unit,
            campaign_id=campaign_id,
            detail=f"签发令牌 #{row.id}（{row.label}，{kind}，{scope}，有效至 {expires_at.isoformat()}）",
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


def _credential(row: Token) -> Credential:
    return Credential(row.id, row.unit, row.kind, row.campaign_id, row.expires_at)


def _active(row: Token | None, at: dt.datetime) -> bool:
    return row is not None and row.revoked_at is None and (row.expires_at is None or at < row.expires_at)


def verify_token(engine: Engine, plain: str, at: dt.datetime | None = None) -> Credential | None:
    """The credential of an active token at ``at`` (now by default), or None for an unknown, revoked or
    expired one. A token still hashed with the previous key is re-hashed with the current one."""
    if not plain or len(plain) > 200:
        return None
    at = at or dt.datetime.now(dt.UTC)
    keys = peppers()
    with session_scope(engine) as session:
        for n, pepper in enumerate(keys):
            row = session.scalar(select(Token).where(Token.token_hash == _hash(plain, pepper)))
            if row is None:
                continue
            if not _active(row, at):
                return None
            if n > 0:
                row.token_hash = _hash(plain, keys[0])
            return _credential(row)
    return None


def _session_key() -> bytes:
    return hmac.new(peppers()[0].encode(), b"campaign-page-session", hashlib.sha256).digest()


def session_value(credential: Credential, at: dt.datetime) -> tuple[str, int]:
    """A page session for the credential (its cookie value and lifetime in seconds): the token id and an
    expiry, signed; the token itself never goes into the cookie."""
    ends = at + SESSION_LIFETIME
    if credential.expires_at is not None:
        ends = min(ends, credential.expires_at)
    payload = f"{credential.token_id}.{int(ends.timestamp())}"
    signature = hmac.new(_session_key(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}", max(int((ends - at).total_seconds()), 0)


def verify_session(engine: Engine, value: str, at: dt.datetime) -> Credential | None:
    """The credential of a page session that is signed, not past its end, and whose token is still active."""
    parts = (value or "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(value) > 200:
        return None
    expected = hmac.new(_session_key(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), parts[2].encode()) or at.timestamp() >= int(parts[1]):
        return None
    with session_scope(engine) as session:
        row = session.get(Token, int(parts[0]))
        return _credential(row) if row is not None and _active(row, at) else None
