"""The audit log: every accepted, late, refused and on-behalf submission, approval and window change.

Entries are only ever added; the ORM refuses to update or delete one.
"""

from __future__ import annotations

import datetime as dt

import pendulum
from sqlalchemy import event
from sqlalchemy.orm import Session

from include.masking import redact
from include.store.models import AuditEntry


class AuditLogIsAppendOnly(Exception):
    """Raised on any attempt to change or remove an audit entry."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_change(*_: object) -> None:
    raise AuditLogIsAppendOnly("审计日志只能追加，不能修改或删除")


def audit(
    session: Session,
    *,
    at: dt.datetime,
    action: str,
    actor: str,
    detail: str,
    campaign_id: str | None = None,
    unit: str | None = None,
    milestone: str | None = None,
    on_behalf: bool = False,
) -> None:
    """Add an entry. The detail is redacted (no ID, phone or account number in clear: the log can never be
    cleaned) and every field is cut to its column, so that no value a request carried can make the write fail."""
    session.add(
        AuditEntry(
            at=at,
            recorded_at=pendulum.now("UTC"),
            campaign_id=_fit(campaign_id, 64),
            unit=_fit(unit, 32),
            milestone=_fit(milestone, 64),
            action=action,
            actor=_fit(actor, 120),
            on_behalf=on_behalf,
            detail=_fit(redact(detail), 1000),
        )
    )


def _fit(value: str | None, length: int) -> str | None:
    return value if value is None or len(value) <= length else value[: length - 1] + "…"
