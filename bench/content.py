"""Content bench: what storing a job's output as a UnixFS DAG costs (issue 16).

For 5 MiB and 64 MiB of random bytes, measures through the local content store (a temporary directory on
this machine's disk):
- put: build the DAG (hash every 256 KiB leaf and every dag-pb node), write one file per block, each
  fsynced and renamed into place;
- get: read every block, re-hash it against its CID, reassemble the file;
- CID computation alone (``compute_cid``, what the Kubo adapter does before each add and after each cat);
each as throughput (MiB/s) and as a ratio to the baseline measured in the same run: one plain
``hashlib.sha256`` over the same bytes, the least any content-addressed store must do. Each figure is the
median of ``--repeats`` runs. Writes the ``local_store`` section of bench/results/content.json.

Run: .venv/bin/python bench/content.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from support.report import record  # bench/ is on sys.path when run as a script

from suanwang.content import LocalContentStore, compute_cid
from suanwang.content.unixfs import file_blocks

SIZES_MIB = (5, 64)
MIB = 1024 * 1024


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(size_mib: int, repeats: int) -> dict[str, float]:
    content = random.Random(size_mib).randbytes(size_mib * MIB)
    baseline = median_seconds(lambda: hashlib.sha256(content).digest(), repeats)
    cid = median_seconds(lambda: compute_cid(content), repeats)
    puts, gets = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="suanwang-bench-content-") as tmp:
            store = LocalContentStore(Path(tmp))
            started = time.perf_counter()
            name = store.put(content)
            puts.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert store.get(name) == content
            gets.append(time.perf_counter() - started)
    put, get = statistics.median(puts), statistics.median(gets)
    return {
        "bytes": len(content),
        "blocks": sum(1 for _ in file_blocks(content)),
        "sha256_baseline_mib_s": round(size_mib / baseline, 1),
        "compute_cid_mib_s": round(size_mib / cid, 1),
        "put_mib_s": round(size_mib / put, 1),
        "get_mib_s": round(size_mib / get, 1),
        "compute_cid_time_ratio_to_sha256": round(cid / baseline, 2),
        "put_time_ratio_to_sha256": round(put / baseline, 2),
        "get_time_ratio_to_sha256": round(get / baseline, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = {f"{size}_mib": measure(size, args.repeats) for size in SIZES_MIB}
    section = {
        "repeats": args.repeats,
        "cores": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sizes": results,
    }
    path = record("content", "local_store", section)
    for size, figures in results.items():
        print(
            f"{size}: sha256 {figures['sha256_baseline_mib_s']} MiB/s (baseline); compute_cid "
            f"{figures['compute_cid_mib_s']} MiB/s ({figures['compute_cid_time_ratio_to_sha256']}x the baseline's "
            f"time); put {figures['put_mib_s']} MiB/s ({figures['put_time_ratio_to_sha256']}x); get "
            f"{figures['get_mib_s']} MiB/s ({figures['get_time_ratio_to_sha256']}x)"
        )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
