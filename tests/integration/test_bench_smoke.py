"""`bench/netfilter_bench.py --quick` runs to the end and prints its table with every case.

Only that it works is asserted: a test never asserts a wall-clock time or a ratio of times.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "netfilter_bench.py"


def _namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_quick_benchmark_prints_every_case():
    prefix = "bsmoke%s" % uuid.uuid4().hex[:6]
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--no-save", "--ns-prefix", prefix], capture_output=True, text=True,
                          timeout=1200, cwd=str(REPO), check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    out = proc.stdout
    number = r"\d+\.\d{3}"
    for case in ("module", "loop", "nft", "noop", "ping", "floor"):  # wall and CPU, first and re-run
        assert re.search(r"^\s+10\s+%s(\s+%s){4}$" % (case, number), out, re.M), "no row for %s:\n%s" % (case, out)
    assert re.search(r"^\s+10\s+noop \+ nft(\s+%s){2}$" % number, out, re.M), "no row for noop + nft:\n%s" % out
    for ratio in ("loop / module", "module / \\(noop \\+ nft\\)", "module / \\(ping \\+ nft\\)",
                  "floor / \\(noop \\+ nft\\)", "module / \\(floor \\+ nft\\)", "CPU module / \\(floor \\+ nft\\)"):
        for phase in ("first", "rerun"):
            assert re.search(r"^\s+10\s+%s\s+%s\s+\d+\.\d\d\s" % (phase, ratio), out, re.M), "no %s %s ratio:\n%s" % (phase, ratio, out)
    leftover = {name for name in _namespaces() if name.startswith(prefix)}
    assert not leftover, "the benchmark left namespaces behind: %s" % leftover
