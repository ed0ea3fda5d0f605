"""Where the project reads its config and writes its run-time files.

Every file written at run time goes under the campaign home: ``$CAMPAIGN_HOME``, by default
``.campaign/`` in the checkout.
"""

from __future__ import annotations

import os
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
