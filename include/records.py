"""The records store: the household data of every unit, as Parquet files that rules scan set-based.

Layout under ``$CAMPAIGN_HOME/records``::

    <campaign>/<form>/<unit>/CURRENT            the version in force (one line)
    <campaign>/<form>/<unit>/<version>/<sheet>.parquet
    <campaign>/<form>/<unit>/<version>/ingest.json

A version is written whole into a temporary folder, renamed into place, and only then made current
by replacing ``CURRENT`` (an atomic rename): readers see the old data or the new, never a mix, and
a crash mid-way leaves the old data in force. The same file twice is the same version: nothing changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from include import paths

CURRENT = "CURRENT"
META = "ingest.json"


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
    with _locked(folder):
        if version_in(folder) == version and (folder / version / META).is_file():
            return Stored(version=version, changed=False)
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
            target = folder / version
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
            pointer = folder / f".{CURRENT}.{uuid.uuid4().hex}"
            pointer.write_text(version + "\n", encoding="utf-8")
            os.replace(pointer, folder / CURRENT)
            _fsync_dir(folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        for old in folder.iterdir():
            if old.is_dir() and old.name != version:
                shutil.rmtree(old, ignore_errors=True)
    return Stored(version=version, changed=True)


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


def current_meta(campaign: str, form: str, unit: str) -> dict | None:
    return meta_in(unit_dir(campaign, form, unit))


def meta_in(folder: Path) -> dict | None:
    version = version_in(folder)
    if version is None:
        return None
    return json.loads((folder / version / META).read_text(encoding="utf-8"))


def sheet_files(campaign: str, form: str, sheet: str, units: list[str] | None = None) -> list[Path]:
    """The Parquet files in force for one sheet of a form, one per unit (all units by default)."""
    base = records_root() / campaign / form
    if not base.is_dir():
        return []
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        if units is not None and folder.name not in units:
            continue
        version = current_version(campaign, form, folder.name)
        if version and (folder / version / f"{sheet}.parquet").is_file():
            found.append(folder / version / f"{sheet}.parquet")
    return found


def scan(campaign: str, form: str, sheet: str, units: list[str] | None = None) -> pl.LazyFrame | None:
    """A lazy frame over the sheet's rows in force, with a ``unit`` column; None when nothing is stored."""
    files = sheet_files(campaign, form, sheet, units)
    if not files:
        return None
    return pl.concat([pl.scan_parquet(f).with_columns(pl.lit(f.parent.parent.name).alias("unit")) for f in files])
