#!/usr/bin/env python
"""A fleet: converge time of playbooks/site.yml against 1, 2, 4, 8 and 16 sandbox hypervisors.

For each fleet size H the sandbox lab of `make demo` is built with H KVM hypervisors (libvirtd in a
private mount namespace each, guests as namespaces; no QEMU guest, whose boot is not converge
time), then site.yml is run twice as a user runs it against a fleet (one inventory, all hosts in
parallel): the first converge and the no-change re-run, each timed as a whole by the wall clock.
A callback (bench/callback_plugins/host_timing.py) records every host's seconds per task, so the
report says where the time goes per host. The lab is torn down after each size, also on failure.

    .venv/bin/python bench/fleet_bench.py                       # H = 1 2 4 8 16, forks = H, linear
    .venv/bin/python bench/fleet_bench.py --hosts 1 16 --strategy free --forks 8

Goal: 16 hypervisors in at most 3 times the converge time of one, on this 2-CPU machine.
Needs root. The lab is named `fleet` (HN_SANDBOX_LAB), apart from `make demo`'s lab; no
traffic leaves its namespaces. Raw results go to bench/results/fleet-<UTC date>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
SANDBOX = REPO / "playbooks" / "sandbox"
INVENTORY = REPO / "playbooks" / "inventory" / "sandbox"
RESULTS = Path(__file__).resolve().parent / "results"
LAB = "fleet"  # the sandbox takes 1 to 6 letters or digits
GOAL = 3.0  # converge(16) / converge(1)


def env(**extra):
    values = dict(os.environ, HN_SANDBOX_LAB=LAB, PATH="%s:%s" % (BIN, os.environ.get("PATH", "")),
                  ANSIBLE_COLLECTIONS_PATH=str(REPO / "build" / "collections"), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
                  ANSIBLE_NOCOLOR="1", ANSIBLE_PIPELINING="1", ANSIBLE_LOCALHOST_WARNING="0",
                  ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    values.update(extra)
    return values


def playbook(path, log, *args, **extra):
    started = time.monotonic()
    with open(log, "w") as handle:
        rc = subprocess.call([str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(path)] + list(args),
                             stdout=handle, stderr=subprocess.STDOUT, env=env(**extra), cwd=str(REPO))
    return rc, time.monotonic() - started


def destroy(logs):
    playbook(SANDBOX / "destroy.yml", logs / "destroy.log")


def converge(hosts, forks, strategy, logs):
    """Build a lab of ``hosts`` hypervisors, converge twice, tear it down: the figures."""
    destroy(logs)
    try:
        rc, built = playbook(SANDBOX / "create.yml", logs / ("create-%d.log" % hosts), HN_SANDBOX_KVM_HOSTS=str(hosts),
                             HN_SANDBOX_BRIDGE_HOSTS="0", HN_SANDBOX_QEMU_GUESTS="0")
        if rc:
            raise RuntimeError("building the lab of %d failed: %s" % (hosts, logs / ("create-%d.log" % hosts)))
        timing = {}
        seconds = {}
        for phase in ("first", "rerun"):
            out = logs / ("timing-%d-%s.json" % (hosts, phase))
            rc, seconds[phase] = playbook(
                REPO / "playbooks" / "site.yml", logs / ("converge-%d-%s.log" % (hosts, phase)), "--forks", str(forks),
                ANSIBLE_STRATEGY=strategy, ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback_plugins"),
                ANSIBLE_CALLBACKS_ENABLED="host_timing", HN_TIMING_OUT=str(out))
            if rc:
                raise RuntimeError("site.yml on %d hosts failed: %s" % (hosts, logs / ("converge-%d-%s.log" % (hosts, phase))))
            timing[phase] = json.loads(out.read_text())
        return {"hosts": hosts, "forks": forks, "strategy": strategy, "build": built, "seconds": seconds, "per_host": timing}
    finally:
        destroy(logs)


def where_time_goes(run, phase, top=8):
    """Tasks by their mean seconds per host (hypervisors only), the largest first."""
    per_host = {host: tasks for host, tasks in run["per_host"][phase].items() if host != "localhost"}
    names = sorted({name for tasks in per_host.values() for name in tasks})
    rows = [(statistics.mean(tasks.get(name, 0.0) for tasks in per_host.values()), name) for name in names]
    total = statistics.mean(sum(tasks.values()) for tasks in per_host.values()) if per_host else 0.0
    return total, sorted(rows, reverse=True)[:top]


def report(runs):
    base = next((r["seconds"] for r in runs if r["hosts"] == 1), None)
    lines = ["%5s %6s %-9s %10s %10s %12s" % ("hosts", "forks", "strategy", "first s", "re-run s", "first / H=1"), "-" * 58]
    for run in runs:
        ratio = "%.2f" % (run["seconds"]["first"] / base["first"]) if base else "-"
        lines.append("%5d %6d %-9s %10.1f %10.1f %12s" % (
            run["hosts"], run["forks"], run["strategy"], run["seconds"]["first"], run["seconds"]["rerun"], ratio))
    for run in (runs[0], runs[-1]) if len(runs) > 1 else runs:
        for phase in ("first", "rerun"):
            total, rows = where_time_goes(run, phase)
            lines += ["", "H=%d %s: mean task seconds per hypervisor (sum %.1f s), largest first" % (run["hosts"], phase, total)]
            lines += ["  %7.2f  %s" % (seconds, name) for seconds, name in rows]
    biggest = runs[-1]
    if base and biggest["hosts"] == 16:
        ratio = biggest["seconds"]["first"] / base["first"]
        lines += ["", "goal: converge(16) <= %.0f x converge(1): %.2f -> %s" % (GOAL, ratio, "PASS" if ratio <= GOAL else "FAIL")]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="fleet sizes (default 1 2 4 8 16)")
    parser.add_argument("--forks", type=int, help="ansible forks (default: the fleet size, all hosts at once)")
    parser.add_argument("--strategy", default="linear", choices=["linear", "free"], help="play strategy (default linear)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("needs root (the sandbox lab is network namespaces)")
    logs = Path(tempfile.mkdtemp(prefix="hnet-fleet-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    for hosts in sorted(args.hosts):
        forks = args.forks or max(hosts, 1)
        print("H=%-3d forks %-3d %s ..." % (hosts, forks, args.strategy), end="", flush=True)
        run = converge(hosts, forks, args.strategy, logs)
        print(" first %.1f s, re-run %.1f s" % (run["seconds"]["first"], run["seconds"]["rerun"]))
        runs.append(run)
    print()
    print(report(runs))
    print("load average (1, 5, 15 min) at the end: %.2f %.2f %.2f on %d CPUs; logs in %s" % (os.getloadavg() + (os.cpu_count(), logs)))
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / ("fleet-%s.json" % started.strftime("%Y%m%dT%H%M%SZ"))
        path.write_text(json.dumps({"date": started.isoformat(), "runs": runs, "cpus": os.cpu_count()}, indent=1))
        print("raw results: %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
