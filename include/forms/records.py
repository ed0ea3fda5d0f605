"""The records store: the household data of every unit, as Parquet files that rules scan set-based.

Layout under ``$CAMPAIGN_HOME/records``::

    <campaign>/<form>/<unit>/CURRENT                        the version in force (one line)
    <campaign>/<form>/<unit>/<version>/<sheet>.parquet
    <campaign>/<form>/<unit>/<version>/ingest.json
    <campaign>/<form>/<unit>/<version>/.superseded          when it stopped being in force (epoch seconds)

A version is written whole into a staging folder (``stage``), then, under the unit's lock, renamed
into place and made current by replacing ``CURRENT`` (an atomic rename; ``publishing``): readers see
the old data or the new, never a mix, and a crash mid-way leaves the old data in force. Until the
publication's block ends the swap can be undone (``Publication.revert``), so that a caller can make
the new data live inside a database transaction and put the old back if the commit fails. The same
file twice is the same version: nothing changes.

Earlier versions can be listed (``history``) and one of them put back in force (``restore``: the same
atomic pointer swap under the unit's lock), e.g. after a re-upload that left out households by mistake.

Readers pin the versions in force once (``pin``) and read those (``sheet_files``/``scan`` with
``pinned``), so that every sheet of one run reads the same version of each unit. Old versions stay
for them: the newest ``CAMPAIGN_RECORDS_KEEP_VERSIONS`` (3) of a unit are kept, and an older one is
removed only once it has been superseded for longer than ``CAMPAIGN_RECORDS_GRACE_SECONDS`` (an
hour), as are staging folders of crashed writers; a run must finish within that time.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from include import paths

CURRENT = "CURRENT"
META = "ingest.json"
SUPERSEDED = ".superseded"
KEEP_VERSIONS_ENV = "CAMPAIGN_RECORDS_KEEP_VERSIONS"
GRACE_ENV = "CAMPAIGN_RECORDS_GRACE_SECONDS"
DEFAULT_KEEP_VERSIONS = 3
DEFAULT_GRACE_SECONDS = 3600.0


def records_root() -> Path:
    return paths.campaign_home() / "records"


def unit_dir(campaign: str, form: str, unit: str) -> Path:
    return records_root() / campaign / form / unit


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_version(campaign: str, form: str, unit: str) -> str | None:
    return version_in(unit_dir(campaign, form, unit))


def version_in(folder: Path) -> str | None:
    """The version in force in a folder written by ``replace_folder``."""
    try:
        return (folder / CURRENT).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class Stored:
    version: str
    changed: bool  # False when the same file was already in force


def replace(campaign: str, form: str, unit: str, version: str, tables: dict[str, pl.DataFrame], meta: dict) -> Stored:
    """Make ``tables`` the unit's data for the form, atomically; a no-op if ``version`` is in force."""
    return replace_folder(unit_dir(campaign, form, unit), version, tables, meta)


def replace_folder(folder: Path, version: str, tables: dict[str, pl.DataFrame], meta: dict) -> Stored:
    """Write ``tables`` (Parquet) and ``meta`` as ``version`` in ``folder`` and make it current atomically."""
    with publishing(stage_folder(folder, version, tables, meta)) as publication:
        publication.publish()
    return Stored(version=version, changed=publication.changed)


# -- staging and publishing ------------------------------------------------------------------------


@dataclass
class Staged:
    """A version written beside the unit's data, not yet in force (``staging`` None: not written yet)."""

    folder: Path
    version: str
    tables: dict[str, pl.DataFrame]
    meta: dict
    staging: Path | None = None


def stage(campaign: str, form: str, unit: str, version: str, tables: dict[str, pl.DataFrame], meta: dict) -> Staged:
    """Write ``version`` of the unit's data for the form, without making it current (see ``publishing``)."""
    return stage_folder(unit_dir(campaign, form, unit), version, tables, meta)


def stage_folder(folder: Path, version: str, tables: dict[str, pl.DataFrame], meta: dict) -> Staged:
    staged = Staged(folder=folder, version=version, tables=tables, meta=meta)
    if not _in_force(folder, version):  # the same file again needs no writing (checked again under the lock)
        staged.staging = _write(folder, tables, meta)
    return staged


def _in_force(folder: Path, version: str) -> bool:
    return version_in(folder) == version and (folder / version / META).is_file()


def _write(folder: Path, tables: dict[str, pl.DataFrame], meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        with ThreadPoolExecutor(max_workers=max(1, len(tables))) as pool:  # Polars writes outside the GIL
            writes = [
                pool.submit(table.write_parquet, staging / f"{sheet}.parquet", statistics=True)
                for sheet, table in tables.items()
            ]
            for write in writes:
                write.result()
        (staging / META).write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        _fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


class Publication:
    """A staged version about to be made current, under the unit's lock (see ``publishing``)."""

    def __init__(self, staged: Staged) -> None:
        self.staged = staged
        self.previous = version_in(staged.folder)
        self.changed = not _in_force(staged.folder, staged.version)
        self.published = False

    def publish(self) -> None:
        """Make the staged version current (atomically); nothing when it already is."""
        staged, folder = self.staged, self.staged.folder
        if not self.changed or self.published:
            return
        if staged.staging is None:  # it was in force when staged, and replaced since
            staged.staging = _write(folder, staged.tables, staged.meta)
        target = folder / staged.version
        if target.exists():  # an earlier upload of this version: moved aside, kept for its readers a while
            retired = folder / f".retired-{uuid.uuid4().hex}"
            target.rename(retired)
            _mark_superseded(retired)
        staged.staging.rename(target)
        staged.staging = None
        if self.previous and self.previous != staged.version:
            _mark_superseded(folder / self.previous)
        _point(folder, staged.version)
        self.published = True

    def revert(self) -> None:
        """Put the version in force before ``publish`` back (the new one stays, superseded, for its readers)."""
        if not self.published:
            return
        folder = self.staged.folder
        _mark_superseded(folder / self.staged.version)
        if self.previous is None:
            (folder / CURRENT).unlink(missing_ok=True)
            _fsync_dir(folder)
        else:
            _point(folder, self.previous)
            (folder / self.previous / SUPERSEDED).unlink(missing_ok=True)  # in force again
        self.published = False

    def discard(self) -> None:
        if self.staged.staging is not None:
            shutil.rmtree(self.staged.staging, ignore_errors=True)
            self.staged.staging = None


@contextmanager
def publishing(staged: Staged) -> Iterator[Publication]:
    """Hold the unit's lock for the block; ``publish()`` in it makes the staged version current.

    If the block raises after ``publish()``, the version in force before is put back before the error
    propagates. Versions no reader can hold any more are removed when the block succeeds.
    """
    with _locked(staged.folder):
        publication = Publication(staged)
        try:
            yield publication
        except BaseException:
            publication.revert()
            raise
        finally:
            publication.discard()
        prune(staged.folder)


def _point(folder: Path, version: str) -> None:
    paths.write_atomically(folder / CURRENT, version + "\n")


# -- old versions ----------------------------------------------------------------------------------


def _now() -> float:
    return time.time()


def keep_versions() -> int:
    """How many versions of a unit are kept whatever their age (the one in force included); at least 1."""
    return max(1, int(os.environ.get(KEEP_VERSIONS_ENV) or DEFAULT_KEEP_VERSIONS))


def grace_seconds() -> float:
    """How long a superseded version is kept for the readers that pinned it."""
    return max(0.0, float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_SECONDS))


def _mark_superseded(version_folder: Path) -> None:
    if version_folder.is_dir():
        (version_folder / SUPERSEDED).write_text(f"{_now():.3f}\n", encoding="utf-8")


def superseded_at(version_folder: Path) -> float:
    """When the version stopped being in force; without a mark (a crash mid-way), when it was written."""
    try:
        return float((version_folder / SUPERSEDED).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return version_folder.stat().st_mtime


def prune(folder: Path, *, keep: int | None = None, grace: float | None = None) -> list[str]:
    """Remove the unit's versions no reader can hold any more; the names removed.

    The version in force and the newest ``keep`` (counting it) stay; an older one goes once it has been
    superseded for longer than ``grace`` seconds, as do crashed writers' staging folders that old.
    Callers hold the unit's lock.
    """
    keep = keep_versions() if keep is None else keep
    grace = grace_seconds() if grace is None else grace
    now, current = _now(), version_in(folder)
    removed, superseded = [], []
    for item in folder.iterdir():
        try:
            if not item.is_dir():
                if item.name.startswith(f".{CURRENT}.") and now - item.stat().st_mtime > grace:
                    item.unlink(missing_ok=True)  # a crashed writer's pointer
                continue
            if item.name.startswith(".staging-"):
                old = now - item.stat().st_mtime > grace
            elif item.name.startswith(".retired-"):
                old = now - superseded_at(item) > grace
            elif item.name.startswith(".") or item.name == current:
                continue
            else:
                superseded.append((superseded_at(item), item))
                continue
        except FileNotFoundError:
            continue
        if old:
            shutil.rmtree(item, ignore_errors=True)
            removed.append(item.name)
    superseded.sort(key=lambda pair: pair[0], reverse=True)  # the most recently superseded first
    for at, item in superseded[max(0, keep - 1) :]:
        if now - at > grace:
            shutil.rmtree(item, ignore_errors=True)
            removed.append(item.name)
    return removed


def _fsync_dir(folder: Path) -> None:
    for item in folder.iterdir():
        if item.is_file():
            with item.open("rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Version:
    """One stored version of a unit's data for a form, as ``history`` lists it."""

    version: str
    meta: dict
    in_force: bool
    superseded_at: float | None  # epoch seconds; None for the version in force

    def as_json(self) -> dict[str, object]:
        return {
            "version": self.version,
            "in_force": self.in_force,
            "file": self.meta.get("file"),
            "at": self.meta.get("at"),
            "actor": self.meta.get("actor"),
            "households": self.meta.get("households"),
            "accepted_by_sheet": self.meta.get("accepted_by_sheet"),
            "rejected": self.meta.get("rejected"),
        }


def history(campaign: str, form: str, unit: str) -> list[Version]:
    """The unit's stored versions for the form, the one in force first, then the most recently superseded.

    Only versions still on disk are listed: the newest ``CAMPAIGN_RECORDS_KEEP_VERSIONS`` always are."""
    folder = unit_dir(campaign, form, unit)
    if not folder.is_dir():
        return []
    current = version_in(folder)
    found = []
    for item in folder.iterdir():
        meta_file = item / META
        if item.name.startswith(".") or not item.is_dir() or not meta_file.is_file():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        in_force = item.name == current
        found.append(Version(item.name, meta, in_force, None if in_force else superseded_at(item)))
    return sorted(found, key=lambda v: (not v.in_force, -(v.superseded_at or 0.0)))


class NoSuchVersion(LookupError):
    """The version asked for is not among the unit's stored versions."""


def restore(campaign: str, form: str, unit: str, version: str) -> str | None:
    """Put a stored ``version`` of the unit's data back in force, atomically; returns the version it replaced
    (which stays stored, superseded, and can be restored in turn). ``NoSuchVersion`` if it is not stored."""
    folder = unit_dir(campaign, form, unit)
    with _locked(folder):
        if not (folder / version / META).is_file() or version.startswith("."):
            raise NoSuchVersion(version)
        previous = version_in(folder)
        if previous == version:
            return previous
        if previous:
            _mark_superseded(folder / previous)
        (folder / version / SUPERSEDED).unlink(missing_ok=True)
        _point(folder, version)
        return previous


def current_meta(campaign: str, form: str, unit: str) -> dict | None:
    return meta_in(unit_dir(campaign, form, unit))


def meta_in(folder: Path) -> dict | None:
    version = version_in(folder)
    if version is None:
        return None
    return json.loads((folder / version / META).read_text(encoding="utf-8"))


def entered_at(campaign: str, form: str, pinned: Mapping[str, str]) -> dict[str, dt.datetime]:
    """When each unit's pinned version was uploaded (its ``at``), for the units whose meta records it."""
    base = records_root() / campaign / form
    found = {}
    for unit, version in pinned.items():
        meta = base / unit / version / META
        if meta.is_file():
            at = json.loads(meta.read_text(encoding="utf-8")).get("at")
            if at:
                found[unit] = dt.datetime.fromisoformat(at)
    return found


def pin(campaign: str, form: str, units: list[str] | None = None) -> dict[str, str]:
    """The version in force of each unit's data for the form (all units by default), read once.

    A run that reads every sheet through one pin reads one version of each unit, whatever is uploaded
    meanwhile; the versions stay on disk for the grace period after they are superseded.
    """
    base = records_root() / campaign / form
    if not base.is_dir():
        return {}
    wanted = None if units is None else set(units)
    pinned = {}
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if wanted is not None and folder.name not in wanted:
            continue
        version = version_in(folder)
        if version:
            pinned[folder.name] = version
    return pinned


def sheet_files(
    campaign: str, form: str, sheet: str, units: list[str] | None = None, pinned: Mapping[str, str] | None = None
) -> list[Path]:
    """The Parquet files of one sheet of a form, one per unit (all units by default): of the versions
    ``pinned`` (see ``pin``), or of those in force now."""
    if pinned is None:
        pinned = pin(campaign, form, units)
    wanted = None if units is None else set(units)
    base = records_root() / campaign / form
    found = []
    for unit in sorted(pinned):
        if wanted is not None and unit not in wanted:
            continue
        file = base / unit / pinned[unit] / f"{sheet}.parquet"
        if file.is_file():
            found.append(file)
    return found


def scan(
    campaign: str, form: str, sheet: str, units: list[str] | None = None, pinned: Mapping[str, str] | None = None
) -> pl.LazyFrame | None:
    """A lazy frame over the sheet's rows (of the versions ``pinned``, or in force now), with a ``unit``
    column; None when nothing is stored."""
    files = sheet_files(campaign, form, sheet, units, pinned)
    if not files:
        return None
    return pl.concat([pl.scan_parquet(f).with_columns(pl.lit(f.parent.parent.name).alias("unit")) for f in files])
