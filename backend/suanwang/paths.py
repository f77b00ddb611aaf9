"""Where the repository, its build output and the shared data sets live."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """The read-only data sets (`../shared/data` beside the repository unless SUANWANG_SHARED_DATA says)."""
    override = os.environ.get("SUANWANG_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"
