"""Typed SQLAlchemy 2 models of the campaign state.

Instants are stored in UTC (timezone-aware on PostgreSQL, naive-UTC text on SQLite) and always
come back timezone-aware. Later work adds reports, windows, approvals, reminders and the audit log.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, ForeignKey, MetaData, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime stored as UTC; a naive value is refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("不接受不带时区的时间")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Campaign(Base):
    """A calendar known to the store, with the hash of the file it was registered from."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    calendar_sha256: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    events: Mapped[list[CalendarEvent]] = relationship(back_populates="campaign", cascade="all, delete-orphan")


class CalendarEvent(Base):
    """An instant of the calendar that the campaign DAG has passed (a phase opened, a window closed).

    One row per campaign, field and instant: recording the same instant again changes nothing, and a
    calendar moved to new dates (a demo made anew) records its new instants beside the old ones.
    """

    __tablename__ = "calendar_events"
    __table_args__ = (UniqueConstraint("campaign_id", "key", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    run_id: Mapped[str | None] = mapped_column(String(250))

    campaign: Mapped[Campaign] = relationship(back_populates="events")


class Report(Base):
    """One version of a unit's report for a milestone. The same file twice is one version."""

    __tablename__ = "reports"
    __table_args__ = (UniqueConstraint("campaign_id", "unit", "milestone", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32))
    milestone: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    late: Mapped[bool]
    submitted_by: Mapped[str] = mapped_column(String(120))
    on_behalf: Mapped[bool]
    file_name: Mapped[str | None] = mapped_column(String(255))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    file_path: Mapped[str | None] = mapped_column(String(500))


class Token(Base):
    """An access token of a unit (or of the province, ``unit = "province"``), stored as a keyed hash.

    Its ``kind`` says what it may do (include/door/tokens.py): ``read`` progress and status only (the progress
    link), ``submit`` a unit's reports and workbooks, ``office`` the province's: every unit, on behalf.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    unit: Mapped[str] = mapped_column(String(32), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16), default="submit", server_default="submit")  # read | submit | office
    campaign_id: Mapped[str | None] = mapped_column(String(64))  # None: every campaign
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class WindowState(Base):
    """A unit's entry window: when it opened (or will, at the window's opening) and when it closed."""

    __tablename__ = "window_states"
    __table_args__ = (UniqueConstraint("campaign_id", "window", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    window: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class Approval(Base):
    """A province officer's decision on a unit's application to open an entry window."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("campaign_id", "window", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    window: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    approved: Mapped[bool]  # outcome == "approved": what opens the window
    outcome: Mapped[str] = mapped_column(String(16))  # approved | rejected | timed_out (include/door/windows.py)
    reason: Mapped[str | None] = mapped_column(Text())  # the officer's reason for a rejection, told to the unit
    decided_by: Mapped[str | None] = mapped_column(
        String(120)
    )  # who: "airflow:<user id>", "cli:<name>"; none on a timeout
    decided_by_name: Mapped[str | None] = mapped_column(String(120))  # the officer's name as the auth manager knows it
    decided_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())  # the decision, or the timeout


class AuditEntry(Base):
    """An append-only record of what was accepted, refused, approved or changed, by whom and when.

    ``at`` is the instant the action took effect (the ``--at`` of a command); ``recorded_at`` the real
    time of writing. Rows are never updated or deleted (see include/store/audit.py).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    campaign_id: Mapped[str | None] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(32))
    milestone: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(120))
    on_behalf: Mapped[bool] = mapped_column(default=False)
    detail: Mapped[str] = mapped_column(String(1000))


class OutboxMessage(Base):
    """A reminder written before it is sent (include/reminders/outbox.py): one row per dedupe key, sent at most once.

    ``state`` is ``pending`` (to send), ``sending`` (claimed: a crash here is resolved by looking for the key
    at the destination before sending again), ``sent`` or ``failed`` (attempts exhausted; ``last_error`` says why).
    A ``sending`` row belongs to the deliverer ``claimed_by`` until ``lease_until``: no other deliverer touches
    it before then (a lapsed or empty lease: its deliverer died or let go).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    milestone: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(80))
    day: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(2000))
    state: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(80))  # the deliverer holding the claim
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())  # its claim holds until then
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    receipt: Mapped[str | None] = mapped_column(String(120))  # Slack's message ts, or the sink's line


class WorkloadHousehold(Base):
    """One household on a unit's list of this year's work (工作台账: the households to visit and update), as the
    office loaded it (include/door/workload.py). The key is the forms' household key (户主证件号码, 户编号)."""

    __tablename__ = "workload"
    __table_args__ = (UniqueConstraint("campaign_id", "unit", "household"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32))
    household: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class DailyEntry(Base):
    """A unit's entered households at the end of one day (seed 004: "每天统计…数量变化情况"): the households of its
    accepted uploads, and how many of them are on its workload (None where it has none). Written on each upload
    and each workload load, the day's last figure kept: the unit's trajectory."""

    __tablename__ = "daily_entries"
    __table_args__ = (UniqueConstraint("campaign_id", "unit", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32))
    day: Mapped[dt.date] = mapped_column(Date())
    households: Mapped[int]
    on_list: Mapped[int | None]
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ProblemResult(Base):
    """A unit's 核查结果 for one problem of its list (seed 000: "组织县、乡扶贫部门开展实地核查，对查实的问题进行
    整改"), as uploaded back in the list (include/rules/results.py). Rows are added, never replaced: the latest of a
    problem counts, the earlier ones are its history. The office's review of a 不属实 is kept on the row it
    reviews (accepted or rejected, with the reason, by whom and when; audited)."""

    __tablename__ = "problem_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str] = mapped_column(String(32))  # whose list (a city's list holds its counties' problems)
    problem: Mapped[str] = mapped_column(String(32))  # the problem's id in the list (include/rules/problems.py)
    stage: Mapped[str] = mapped_column(String(16))  # the stage of the list the result was written in
    rule: Mapped[str] = mapped_column(String(64))
    household: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))  # fixed, pending, not_a_problem, unverifiable
    note: Mapped[str | None] = mapped_column(Text())
    submitted_by: Mapped[str] = mapped_column(String(120))
    on_behalf: Mapped[bool] = mapped_column(default=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    review: Mapped[str | None] = mapped_column(String(16))  # accepted, rejected (a 不属实, by the office)
    review_reason: Mapped[str | None] = mapped_column(Text())
    reviewed_by: Mapped[str | None] = mapped_column(String(120))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
