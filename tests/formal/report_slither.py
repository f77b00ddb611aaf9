"""slither over the contracts (as `make test-contracts` runs it), its findings counted by impact and detector
and recorded in bench/results/reliability.json (section "slither"). Exits non-zero on any high or medium
finding. docs/security.md says why each remaining low and informational finding is acceptable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.support.report import record  # noqa: E402

FILTER = "node_modules|tests/|contracts/test/"  # the Makefile's test-contracts filter: mocks and tests aside
BLOCKING = ("High", "Medium")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "slither.json"
        subprocess.run([str(ROOT / ".venv" / "bin" / "slither"), ".", "--compile-force-framework", "foundry",
                        "--filter-paths", FILTER, "--json", str(report)], cwd=ROOT, text=True, capture_output=True)
        if not report.exists():
            raise SystemExit("slither wrote no report")
        data = json.loads(report.read_text())
    if not data.get("success"):
        raise SystemExit(f"slither failed: {data.get('error')}")
    findings = data["results"].get("detectors", [])
    by_impact = Counter(f["impact"] for f in findings)
    by_detector = Counter(f"{f['impact']}: {f['check']}" for f in findings)
    for line, count in sorted(by_detector.items()):
        print(f"{count:4}  {line}")
    record("reliability", "slither", {
        "command": "make reliability-contracts",
        "version": _slither_version(),
        "filter_paths": FILTER,
        "by_impact": {impact: by_impact.get(impact, 0)
                      for impact in ("High", "Medium", "Low", "Informational", "Optimization")},
        "by_detector": dict(sorted(by_detector.items())),
    })
    blocking = sum(by_impact.get(impact, 0) for impact in BLOCKING)
    print(f"slither: {len(findings)} findings, {blocking} high or medium")
    return 1 if blocking else 0


def _slither_version() -> str:
    from importlib.metadata import version

    return version("slither-analyzer")


if __name__ == "__main__":
    sys.exit(main())
