"""Merge one section of figures into bench/results/<name>.json.

Several commands contribute to one results file (issue 9's reliability.json gathers the access-control
table, the fuzz campaign, the API attacks and the fault campaign, each run by its own command), so each
writes only its own section, under a file lock, leaving the others as the last run left them.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / "results"


def record(name: str, section: str, figures: dict[str, Any]) -> Path:
    """Replace `section` of bench/results/<name>.json with `figures` (plus when it was measured)."""
    return _replace(name, section, {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def record_list(name: str, section: str, items: list[dict[str, Any]]) -> Path:
    """Replace `section` of bench/results/<name>.json with the list `items` (each says when it was measured)."""
    return _replace(name, section, items)


def _replace(name: str, section: str, value: Any) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    with open(RESULTS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[section] = value
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
        os.replace(tmp, path)
    return path
