"""Three rules of the code's shape, checked by `make lint`:

- no module of backend/suanwang is longer than 600 lines, so no file grows into one that does everything;
- no code outside `suanwang.chain` calls a contract function through web3 (`.functions.`): the typed seam
  in chain/contracts.py is the one place that knows the contracts' ABI;
- no route, service, lifecycle step or agent writes a database query (`select(`, `session.get(`,
  `session.execute(`, `session.scalar(s)(`): it asks storage/ by name (repositories.py, read_models.py),
  so a change of schema or index touches storage/ alone.

A module still breaking a rule is listed with the reason; the lists only shrink."""

from __future__ import annotations

import re
import sys
from pathlib import Path

LIMIT = 600
ROOT = Path(__file__).resolve().parent.parent
ALLOWED: dict[str, tuple[int, str]] = {}
# Modules outside suanwang.chain still allowed to call contracts through web3: none since issue 15.
RAW_CALLS_ALLOWED: tuple[str, ...] = ()
QUERY_FREE = (
    "backend/suanwang/api/",
    "backend/suanwang/lifecycle/",
    "backend/suanwang/agents/",
    "backend/suanwang/replay/",
)
RAW_QUERY = re.compile(r"\bselect\(|\bsession\.(?:get|execute|scalars?)\(")
# Modules of QUERY_FREE still allowed to write queries, with the reason.
QUERIES_ALLOWED: dict[str, str] = {
    "backend/suanwang/api/idempotency.py": "the idempotency middleware's own table; not yet asked through storage/",
}


def raw_queries() -> list[str]:
    """Where a module of QUERY_FREE writes a query instead of asking storage/ by name."""
    failures = []
    for prefix in QUERY_FREE:
        for path in sorted((ROOT / prefix).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name in QUERIES_ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if found := RAW_QUERY.search(line):
                    failures.append(
                        f"{name}:{number}: writes a query ({found.group()}); add a named one to "
                        "suanwang/storage/repositories.py or read_models.py"
                    )
    return failures


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
    failures.extend(raw_queries())
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
