"""Two rules of the code's shape, checked by `make lint`:

- no module of backend/suanwang is longer than 600 lines, so no file grows into one that does everything;
- no code outside `suanwang.chain` calls a contract function through web3 (`.functions.`): the typed seam
  in chain/contracts.py is the one place that knows the contracts' ABI.

A module still breaking a rule is listed with the reason; the lists only shrink."""

from __future__ import annotations

import sys
from pathlib import Path

LIMIT = 600
ROOT = Path(__file__).resolve().parent.parent
ALLOWED: dict[str, tuple[int, str]] = {}
# Modules outside suanwang.chain still allowed to call contracts through web3: none since issue 15.
RAW_CALLS_ALLOWED: tuple[str, ...] = ()


def main() -> int:
    failures = []
    for path in sorted((ROOT / "backend" / "suanwang").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        name = str(path.relative_to(ROOT))
        limit, _why = ALLOWED.get(name, (LIMIT, ""))
        if lines > limit:
            failures.append(f"{name}: {lines} lines, more than {limit}: split it by idea")
        inside = name.startswith("backend/suanwang/chain/") or name.startswith(RAW_CALLS_ALLOWED)
        if not inside and ".functions." in path.read_text(encoding="utf-8"):
            failures.append(f"{name}: calls a contract through web3; add a typed method to suanwang/chain/contracts.py")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
