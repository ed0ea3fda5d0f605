"""Where the project reads its config and writes its run-time files.

Every file written at run time goes under the campaign home: ``$CAMPAIGN_HOME``, by default
``.campaign/`` in the checkout.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_CAMPAIGNS = PROJECT_ROOT / "config" / "campaigns"


def is_local_run() -> bool:
    """A local run (``CAMPAIGN_LOCAL_RUN=1``, set by scripts/env.sh, the local runners and the tests): tokens may use
    the development key, the API shows its docs, and the SQLite store is created on first use."""
    return os.environ.get("CAMPAIGN_LOCAL_RUN") == "1"


def campaign_home() -> Path:
    """The campaign home directory (not created here)."""
    return Path(os.environ.get("CAMPAIGN_HOME") or PROJECT_ROOT / ".campaign").resolve()


def home_campaigns() -> Path:
    """Calendars made at run time (compressed demo copies) live here, beside the shipped ones."""
    return campaign_home() / "campaigns"


def calendar_dirs() -> list[Path]:
    return [CONFIG_CAMPAIGNS, home_campaigns()]


def calendar_files() -> list[Path]:
    """All calendar files, shipped first, in name order."""
    return [file for folder in calendar_dirs() if folder.is_dir() for file in sorted(folder.glob("*.yaml"))]


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``, this call's own, for the block to write; when the block ends without
    an error it is synced and renamed over ``target``, so readers see the old file or the new one, never a part
    (and two writers never share a temporary name). On an error it is removed and ``target`` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        with tmp.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, target)
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(target: Path, text: str) -> Path:
    """Write a text file (UTF-8) through ``atomic_path``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
