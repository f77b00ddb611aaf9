"""The economic attacks of issue 14, as the tests that perform them report them.

Each attack test calls `defeated(attack, how)` once it has shown the attack fail: `how` is the custom error
the attack reverts with, or the outcome that leaves the attacker nothing. With
`SUANWANG_RECORD_RELIABILITY=1` (set by `make reliability-contracts`) the list is written to
bench/results/reliability.json, section `economic_attacks`, by whichever attack module finishes last (the
list is shared by every module of the run).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.support.report import record_list

DEFEATED: dict[str, str] = {}


def defeated(attack: str, how: str) -> None:
    """Records that `attack` failed, and how; called after the test's assertions have passed."""
    DEFEATED[attack] = how


def record_if_asked() -> None:
    if os.environ.get("SUANWANG_RECORD_RELIABILITY") == "1" and DEFEATED:
        measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record_list("reliability", "economic_attacks", [
            {"attack": name, "defeated": True, "how": how, "measured_at": measured_at}
            for name, how in sorted(DEFEATED.items())
        ])
