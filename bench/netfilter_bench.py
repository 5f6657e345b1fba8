#!/usr/bin/env python
"""Port forwards: hypervisor.network.port_forward against the common alternatives, timed.

Cases, each a whole run timed by the wall clock (time.monotonic around the subprocess):

  module   one hypervisor.network.port_forward task with N forwards (nftables backend,
           persisted into a temporary directory, never /etc)
  loop     ansible.builtin.iptables looped: per forward a DNAT task in nat PREROUTING and an
           ACCEPT task in filter FORWARD (N = 10 and 100 only; 0.4 to 1.3 s per forward)
  nft      a raw `nft -f` of the very script the module loads (taken from state=rendered)
  noop     a one-task playbook that does nothing (ansible.builtin.debug), loading the same vars:
           Ansible's fixed cost (the baseline of the target)
  ping     for information: a one-task playbook running ansible.builtin.ping in the namespace,
           the fixed cost plus that of shipping and starting any module (AnsiballZ)
  floor    for information: port_forward with its work cut out: the same module file, argument
           spec and AnsiballZ payload, given the same N forwards, validating them and returning
           at once. What any module with this interface costs before it does anything.

Each case runs twice: "first" (into a network namespace made fresh for that case, so that the
first apply really is first) and "re-run" (the same thing again, nothing to change). Every
Ansible case runs through the collection's netns connection plugin against a namespace
`bench-<random>` that this script creates and deletes (also on failure and Ctrl-C). No
traffic is sent; the destinations are 10.x addresses inside the namespace.

    .venv/bin/python bench/netfilter_bench.py            # N = 10, 100, 1000, 10000
    .venv/bin/python bench/netfilter_bench.py --sizes 1000 --repeat 7 --cases module nft noop floor
    .venv/bin/python bench/netfilter_bench.py --quick    # N = 10 only, a smoke run

Besides the times, the size of the module's result (the JSON a host sends back, what Ansible
carries and scrubs per host) is measured for the first apply and the re-run, untimed.

Needs root (ip netns), nft and iptables. Raw results go to bench/results/<UTC date>.json.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook" if (VENV_BIN / "ansible-playbook").exists() else Path(shutil.which("ansible-playbook") or "ansible-playbook")
COLLECTIONS = REPO / "build" / "collections"
RESULTS = Path(__file__).resolve().parent / "results"

CASES = ("module", "loop", "nft", "noop", "ping", "floor")
LOOP_MAX_N = 100  # the loop costs 0.4 to 1.3 s per forward: 80 to 130 s per run at N = 100
TARGET_LOOP_OVER_MODULE = 40.0  # at N = 100, first apply and re-run
# At N = 1000, first apply and re-run: module / (floor + nft), the part of the time this
# collection's code controls (module / (noop + nft) is printed for information).
TARGET_MODULE_OVER_FLOOR = 1.10
TARGET_N = 1000


# ---------------------------------------------------------------------------------------------
# Namespaces: every one this run made is deleted at the end, whatever happens.

_namespaces = []
NS_PREFIX = ["bench"]


def _sh(argv, check=True, input=None, timeout=600, env=None):
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed rc=%s\nstdout: %s\nstderr: %s" % (" ".join(map(str, argv)), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def new_namespace():
    name = "%s-%s" % (NS_PREFIX[0], uuid.uuid4().hex[:8])
    _sh(["ip", "netns", "add", name])
    _namespaces.append(name)
    _sh(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
    return name


def delete_namespace(name):
    _sh(["ip", "netns", "del", name], check=False)
    if name in _namespaces:
        _namespaces.remove(name)


def delete_all_namespaces():
    for name in list(_namespaces):
        delete_namespace(name)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


# ---------------------------------------------------------------------------------------------
# The workload: N forwards, host ports unique, destinations 10.x


def forwards(n):
    return [
        {"host_port": str(20000 + i), "destination": "10.%d.%d.%d" % (20 + i // 62500, (i // 250) % 250, 2 + i % 250), "destination_port": "80"}
        for i in range(n)
    ]


def yaml_list(name, items):
    """``items`` as YAML (JSON is YAML; one line per forward keeps the file small and plain)."""
    return "%s:\n%s" % (name, "".join("  - %s\n" % json.dumps(item, sort_keys=True) for item in items))


PLAY_HEAD = """- name: Benchmark
  hosts: all
  gather_facts: false
  vars_files:
    - forwards.yml
  tasks:
"""

PLAYBOOKS = {
    "module": PLAY_HEAD + """    - name: All forwards in one task
      hypervisor.network.port_forward:
        backend: nftables
        config: "{{ forwards }}"
        persist_dir: "{{ bench_tmp }}/persist"
        nftables_conf: "{{ bench_tmp }}/nftables.conf"
        systemd_unit_dir: "{{ bench_tmp }}/units"
        lock_file: "{{ bench_tmp }}/lock"
""",
    "loop": PLAY_HEAD + """    - name: DNAT per forward
      ansible.builtin.iptables:
        table: nat
        chain: PREROUTING
        protocol: tcp
        destination_port: "{{ item.host_port }}"
        jump: DNAT
        to_destination: "{{ item.destination }}:{{ item.destination_port }}"
      loop: "{{ forwards }}"
    - name: FORWARD accept per forward
      ansible.builtin.iptables:
        chain: FORWARD
        protocol: tcp
        destination: "{{ item.destination }}"
        destination_port: "{{ item.destination_port }}"
        ctstate: [DNAT]
        jump: ACCEPT
      loop: "{{ forwards }}"
""",
    "noop": PLAY_HEAD + """    - name: Nothing at all
      ansible.builtin.debug:
        msg: noop
""",
    "ping": PLAY_HEAD + """    - name: A module that does nothing, run in the namespace
      ansible.builtin.ping:
""",
}
# The floor case runs port_forward's own file with the call that does the work replaced.
PLAYBOOKS["floor"] = PLAYBOOKS["module"].replace("hypervisor.network.port_forward:", "port_forward_floor:")
MODULE_SOURCE = REPO / "plugins" / "modules" / "port_forward.py"
MODULE_WORK = re.compile(r"run_module_main\(module, .*\)\n")


def floor_module_source():
    """port_forward.py whose main() validates its arguments and returns without doing anything."""
    source, count = MODULE_WORK.subn("module.exit_json(changed=False, invocation={})\n", MODULE_SOURCE.read_text())
    if count != 1:
        raise RuntimeError("%s: expected one run_module_main(module, ...) call in main(), found %d" % (MODULE_SOURCE, count))
    return source


def ansible_env():
    path = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    env = dict(os.environ, PATH=path, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_LOCALHOST_WARNING="0")
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    return env


def ensure_collection_link():
    link = COLLECTIONS / "ansible_collections" / "hypervisor" / "network"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(REPO, target_is_directory=True)


# ---------------------------------------------------------------------------------------------
# Runs


def timed(argv, env=None, timeout=3600):
    """(wall seconds, CPU seconds, the finished process). The CPU seconds are user and system
    time of the command and every process under it that was waited for (Ansible's workers, the
    module, nft): the work done, which other tenants' load on a shared machine moves far less
    than the wall clock. The bench runs one command at a time, so the children's usage before
    and after is this command's alone."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = _sh(argv, env=env, timeout=timeout)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def recap_changed(output, host):
    match = re.findall(r"^%s\s*:.*?changed=(\d+)" % re.escape(host), output, re.M)
    if not match:
        raise RuntimeError("no play recap in ansible-playbook output:\n%s" % output[-4000:])
    return int(match[-1])


def count_rules(ns, case):
    """Rules the run left in ``ns``: a check that the timed run really did the work."""
    if case == "loop":
        out = _sh(["ip", "netns", "exec", ns, "iptables-save"]).stdout
        return sum(1 for line in out.splitlines() if line.startswith("-A ") and "10." in line)
    out = _sh(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"]).stdout
    return sum(1 for item in json.loads(out).get("nftables", []) if "rule" in item)


def counted(argv, env=None, timeout=3600, record=None):
    """(instructions, None, the finished process): the user-space instructions of the command and
    every process under it (``ansible-playbook``, its workers, the module, ``nft``), counted by
    valgrind's callgrind. Slow (about 40 times the wall clock) but nearly the same from run to
    run, whatever else the machine is doing (only ansible-playbook's polling, every millisecond
    while it waits, grows with a slower run): the second opinion on a ratio the wall clock cannot
    settle on a shared host. System time is not in it.

    A process that forks hands its counts so far to the child under callgrind, so Ansible's
    workers (forked from ``ansible-playbook``) would count the parent's start-up again:
    ``--zero-before=PyOS_AfterFork_Child`` zeroes a forked Python child's counts where CPython
    starts it, so that every file holds its own process's work. An exec'd program starts from
    zero anyway.

    ``record``, a list, gets the run's instructions by program appended (``callgrind_by_program``):
    where the module's extra work is, not only how much."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as out:
        proc = _sh(["valgrind", "--tool=callgrind", "--trace-children=yes", "--zero-before=PyOS_AfterFork_Child",
                    "--callgrind-out-file=%s/cg.%%p" % out] + list(argv), env=env, timeout=timeout)
        by_program = callgrind_by_program(out)
        if record is not None:
            record.append(by_program)
        return sum(by_program.values()), None, proc


# The programs a run's processes are told apart as, by the command line callgrind records.
PROGRAMS = ("ansible-playbook", "module", "nft", "other")


def program_of(command):
    """Which of PROGRAMS a process with this command line is: the module runs as Python on an
    AnsiballZ file (the shell that starts it names the file too, and is "other"); Ansible's
    forked workers keep ansible-playbook's command line."""
    words = command.split()
    if not words:
        return "other"
    if Path(words[0]).name.startswith("python") and "AnsiballZ" in command:
        return "module"
    if any(Path(word).name == "ansible-playbook" for word in words[:2]):
        return "ansible-playbook"
    if Path(words[0]).name == "nft":
        return "nft"
    return "other"


def callgrind_by_program(directory):
    """The instructions of every callgrind output file in ``directory`` (one per process), summed
    per program (PROGRAMS, every one present)."""
    totals = dict.fromkeys(PROGRAMS, 0)
    for path in sorted(Path(directory).glob("cg.*")):
        command, count = "", None
        with path.open(errors="replace") as handle:
            for line in handle:
                if line.startswith("cmd:"):
                    command = line[4:].strip()
                elif line.startswith(("totals:", "summary:")):
                    count = int(line.split()[1])
                    break
        if count is None:
            raise RuntimeError("%s: no totals line (did the process under callgrind end early?)" % path)
        totals[program_of(command)] += count
    if not any(totals.values()):
        raise RuntimeError("%s: no callgrind output" % directory)
    return totals


def callgrind_total(directory):
    """The instructions of every callgrind output file in ``directory`` (one per process), summed."""
    return sum(callgrind_by_program(directory).values())


def run_ansible_case(case, n, workdir, measure=timed):
    """First apply into a fresh namespace, then the no-change re-run; seconds (or instructions,
    with ``measure=counted``) for both."""
    ns = new_namespace()
    tmp = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    try:
        (tmp / "forwards.yml").write_text(yaml_list("forwards", forwards(n)))
        (tmp / "play.yml").write_text(PLAYBOOKS[case])
        if case == "floor":
            # a library/ next to the playbook is on Ansible's module path
            (tmp / "library").mkdir()
            (tmp / "library" / "port_forward_floor.py").write_text(floor_module_source())
        # The host is named after its namespace too, so that connection plugins from before
        # 6317711 (where inventory_hostname beat ansible_netns_name) find it as well.
        (tmp / "inventory.yml").write_text(json.dumps({"all": {"hosts": {ns: {
            "ansible_connection": "hypervisor.network.netns",
            "ansible_netns_name": ns,
            "ansible_python_interpreter": str(PYTHON),
            "bench_tmp": str(tmp),
        }}}}, indent=1))
        argv = [str(ANSIBLE_PLAYBOOK), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml")]
        times, cpu, changed = [], [], []
        for dummy in ("first", "rerun"):
            seconds, cpu_seconds, proc = measure(argv, env=ansible_env())
            times.append(seconds)
            cpu.append(cpu_seconds)
            changed.append(recap_changed(proc.stdout, ns))
        rules = count_rules(ns, case) if case in ("module", "loop") else 0
        expected = {"module": (1, 0), "loop": (2, 0), "noop": (0, 0), "ping": (0, 0), "floor": (0, 0)}[case]
        if tuple(changed) != expected:
            raise RuntimeError("%s N=%d: changed counts %s, expected %s" % (case, n, changed, expected))
        # The loop makes exactly a DNAT and an ACCEPT per forward; the module at least those
        # (it also accepts the guests' replies).
        if (case == "loop" and rules != 2 * n) or (case == "module" and rules < 2 * n):
            raise RuntimeError("%s N=%d: %d rules in the namespace, expected %s%d" % (case, n, rules, "" if case == "loop" else "at least ", 2 * n))
        return {"first": times[0], "rerun": times[1], "first_cpu": cpu[0], "rerun_cpu": cpu[1],
                "changed": changed, "rules": rules}
    finally:
        delete_namespace(ns)
        shutil.rmtree(tmp, ignore_errors=True)


def rendered_script(n, workdir):
    """The nft script the module loads for N forwards, from the module itself (state=rendered),
    run directly with Python (untimed; only the text is wanted)."""
    args = {"ANSIBLE_MODULE_ARGS": {"state": "rendered", "backend": "nftables", "config": forwards(n)}}
    argsfile = Path(workdir) / ("render-%d.json" % n)
    argsfile.write_text(json.dumps(args))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
    proc = _sh([str(PYTHON), "-m", "ansible_collections.hypervisor.network.plugins.modules.port_forward", str(argsfile)], env=env)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise RuntimeError("state=rendered failed: %s" % result.get("msg"))
    return result["rendered"][0]


def run_nft_case(n, workdir, measure=timed):
    ns = new_namespace()
    try:
        script = Path(workdir) / ("rules-%d.nft" % n)
        script.write_text(rendered_script(n, workdir))
        argv = ["ip", "netns", "exec", ns, "nft", "-f", str(script)]
        first, first_cpu, _proc = measure(argv)
        rerun, rerun_cpu, _proc = measure(argv)
        rules = count_rules(ns, "nft")
        if rules < 2 * n:
            raise RuntimeError("nft N=%d: %d rules in the namespace, expected at least %d" % (n, rules, 2 * n))
        return {"first": first, "rerun": rerun, "first_cpu": first_cpu, "rerun_cpu": rerun_cpu, "rules": rules}
    finally:
        delete_namespace(ns)


def result_sizes(n, workdir):
    """Bytes of the module's JSON result for N forwards: the first apply into a fresh namespace and
    the no-change re-run. The module runs directly (python -m, as AnsiballZ would, untimed) with
    the same arguments as the module case; the result is what one host hands back to Ansible."""
    ns = new_namespace()
    tmp = Path(tempfile.mkdtemp(prefix="size-", dir=workdir))
    try:
        args = {"ANSIBLE_MODULE_ARGS": {
            "backend": "nftables", "config": forwards(n), "persist_dir": str(tmp / "persist"),
            "nftables_conf": str(tmp / "nftables.conf"), "systemd_unit_dir": str(tmp / "units"),
            "lock_file": str(tmp / "lock")}}
        (tmp / "args.json").write_text(json.dumps(args))
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
        argv = ["ip", "netns", "exec", ns, str(PYTHON), "-m",
                "ansible_collections.hypervisor.network.plugins.modules.port_forward", str(tmp / "args.json")]
        sizes = {}
        for phase in ("first", "rerun"):
            out = _sh(argv, env=env).stdout
            result = json.loads(out)
            if result.get("failed"):
                raise RuntimeError("result size N=%d: %s" % (n, result.get("msg")))
            sizes[phase] = len(out.encode())
            sizes[phase + "_without_invocation"] = len(json.dumps(dict(result, invocation=None)).encode())
        return sizes
    finally:
        delete_namespace(ns)
        shutil.rmtree(tmp, ignore_errors=True)


def run_case(case, n, workdir, measure=timed):
    return run_nft_case(n, workdir, measure) if case == "nft" else run_ansible_case(case, n, workdir, measure)


INSTRUCTION_CASES = ("module", "floor", "nft")


def count_size(n, workdir, progress):
    """The target's three cases at one N, each once, in instructions (``--instructions``), in all
    and by program."""
    counts = {}
    for case in INSTRUCTION_CASES:
        progress("N=%-5d %-7s under callgrind ..." % (n, case))
        by_program = []
        run = run_case(case, n, workdir, measure=functools.partial(counted, record=by_program))
        progress(" first %.3f G, re-run %.3f G\n" % (run["first"] / 1e9, run["rerun"] / 1e9))
        first, rerun = by_program  # every case measures the first apply, then the re-run
        counts[case] = {"first": run["first"], "rerun": run["rerun"], "by_program": {"first": first, "rerun": rerun}}
    return counts


def instruction_table(counts):
    lines = ["instructions (G) of whole runs under callgrind: every process, user space (for information)", ""]
    head = "%6s  %-12s %10s %10s" % ("N", "case", "first", "re-run")
    lines += [head, "-" * len(head)]
    for n, cases in sorted(counts.items()):
        for case in INSTRUCTION_CASES:
            lines.append("%6d  %-12s %10.3f %10.3f" % (n, case, cases[case]["first"] / 1e9, cases[case]["rerun"] / 1e9))
    lines += ["", "the same by program (ansible-playbook: its main process and its forked workers; module: the",
              "AnsiballZ Python process; other: ip and anything else a run starts)", ""]
    head = "%6s  %-7s %-8s" % ("N", "phase", "case") + "".join(" %16s" % program for program in PROGRAMS)
    lines += [head, "-" * len(head)]
    for n, cases in sorted(counts.items()):
        for phase in ("first", "rerun"):
            for case in INSTRUCTION_CASES:
                split = cases[case].get("by_program", {}).get(phase)
                if split:
                    lines.append("%6d  %-7s %-8s" % (n, phase, case) + "".join(" %16.3f" % (split[p] / 1e9) for p in PROGRAMS))
    lines += [""]
    head = "%6s  %-7s %-40s %7s" % ("N", "phase", "ratio", "value")
    lines += [head, "-" * len(head)]
    for row in instruction_ratios(counts):
        lines.append("%6d  %-7s %-40s %7.3f" % (row["n"], row["phase"], row["name"], row["value"]))
    return "\n".join(lines)


def instruction_ratios(counts):
    return [{"n": n, "phase": phase, "name": "instructions module / (floor + nft)",
             "value": cases["module"][phase] / (cases["floor"][phase] + cases["nft"][phase])}
            for n, cases in sorted(counts.items()) for phase in ("first", "rerun")]


def summarise(runs):
    """Median of the runs (the loop has one). The best run is kept in the JSON too; the median is
    what is compared, so that the loop's single run is not set against the module's luckiest."""
    return {
        "first": statistics.median(r["first"] for r in runs),
        "rerun": statistics.median(r["rerun"] for r in runs),
        "first_cpu": statistics.median(r["first_cpu"] for r in runs),
        "rerun_cpu": statistics.median(r["rerun_cpu"] for r in runs),
        "first_best": min(r["first"] for r in runs),
        "rerun_best": min(r["rerun"] for r in runs),
        "runs": runs,
    }


def measure_size(n, repeat, workdir, progress, cases=CASES):
    """Every case at one N. The cheap cases run ``repeat`` times, interleaved, so that a burst of
    load on the machine hits them alike; the loop runs once (about 80 s a run at N = 100).
    Every other round runs the cases in the reverse order, so that no case always runs first
    (or right after the one whose namespace the kernel is still tearing down)."""
    runs = {case: [] for case in CASES if case in cases and (case != "loop" or n <= LOOP_MAX_N)}
    for round_ in range(repeat):
        for case in (list(runs) if round_ % 2 == 0 else list(reversed(runs))):
            if case == "loop" and round_ > 0:
                continue
            progress("N=%-5d %-7s round %d/%d ..." % (n, case, round_ + 1, 1 if case == "loop" else repeat))
            run = run_case(case, n, workdir)
            progress(" first %.3f s, re-run %.3f s\n" % (run["first"], run["rerun"]))
            runs[case].append(run)
    summary = {case: summarise(case_runs) for case, case_runs in runs.items()}
    if "module" in summary:
        progress("N=%-5d module result size ..." % n)
        summary["module"]["result_bytes"] = result_sizes(n, workdir)
        progress(" first %(first)d B, re-run %(rerun)d B\n" % summary["module"]["result_bytes"])
    return summary


# ---------------------------------------------------------------------------------------------
# Report


def ratios(results):
    """Every ratio the targets speak of, per N where both sides were measured."""
    out = []
    for n, cases in sorted(results.items()):
        for phase in ("first", "rerun"):
            if "loop" in cases and "module" in cases:
                value = cases["loop"][phase] / cases["module"][phase]
                target = ">= %g" % TARGET_LOOP_OVER_MODULE if n == 100 else None
                verdict = None if target is None else ("PASS" if value >= TARGET_LOOP_OVER_MODULE else "FAIL")
                out.append({"n": n, "phase": phase, "name": "loop / module", "value": value, "target": target, "verdict": verdict})
            if all(c in cases for c in ("module", "floor", "nft")):
                value = cases["module"][phase] / (cases["floor"][phase] + cases["nft"][phase])
                target = "<= %.2f" % TARGET_MODULE_OVER_FLOOR if n == TARGET_N else None
                verdict = None if target is None else ("PASS" if value <= TARGET_MODULE_OVER_FLOOR else "FAIL")
                out.append({"n": n, "phase": phase, "name": "module / (floor + nft)", "value": value, "target": target,
                            "verdict": verdict, "per_round": per_round(cases, phase), "interval": interval(cases, phase)})
                cpu = phase + "_cpu"
                value = cases["module"][cpu] / (cases["floor"][cpu] + cases["nft"][cpu])
                out.append({"n": n, "phase": phase, "name": "CPU module / (floor + nft)", "value": value,
                            "target": None, "verdict": None, "per_round": per_round(cases, cpu)})
            for top, base in (("module", "noop"), ("module", "ping"), ("floor", "noop")):
                if all(c in cases for c in (top, base, "nft")):
                    value = cases[top][phase] / (cases[base][phase] + cases["nft"][phase])
                    out.append({"n": n, "phase": phase, "name": "%s / (%s + nft)" % (top, base), "value": value, "target": None, "verdict": None})
    return out


def interval(cases, phase, draws=2000, seed=14):
    """A 90 % interval of the verdict's ratio of medians, by resampling the rounds (a round's
    module, floor and nft runs stay together): how far another run of the same length on this
    machine could land. None with fewer than 5 rounds. For information; the verdict is the
    measured ratio."""
    rounds = _rounds(cases)
    if len(rounds) < 5:
        return None
    rng = random.Random(seed)
    values = []
    for _draw in range(draws):
        sample = [rng.choice(rounds) for _round in rounds]
        module, floor, nft = (statistics.median(run[index][phase] for run in sample) for index in range(3))
        values.append(module / (floor + nft))
    values.sort()
    return [values[int(draws * 0.05)], values[int(draws * 0.95) - 1]]


def per_round(cases, phase):
    """module / (floor + nft) of each round on its own: the three cases of a round ran one after
    the other, so a burst of load that stretched one round's module also stretched its floor.
    Their spread says how far the verdict's ratio of medians can be trusted (for information;
    the verdict stays the ratio of the medians)."""
    return sorted(m[phase] / (f[phase] + n[phase]) for m, f, n in _rounds(cases))


def _rounds(cases):
    """The (module, floor, nft) runs of each round, in round order."""
    return list(zip(*(cases[case]["runs"] for case in ("module", "floor", "nft"))))


def table(results, ratio_rows, repeat):
    lines = ["seconds of whole runs, wall clock and CPU (user + system of the run and every process under it);",
             "loop: one run, the others: median of %d" % repeat, ""]
    head = "%6s  %-12s %10s %10s %10s %10s" % ("N", "case", "first", "re-run", "CPU first", "CPU re-run")
    lines += [head, "-" * len(head)]
    for n, cases in sorted(results.items()):
        for case in CASES:
            if case in cases:
                lines.append("%6d  %-12s %10.3f %10.3f %10.3f %10.3f" % (
                    n, case, cases[case]["first"], cases[case]["rerun"], cases[case]["first_cpu"], cases[case]["rerun_cpu"]))
            else:
                lines.append("%6d  %-12s %10s %10s %10s %10s" % (n, case, "-", "-", "-", "-"))
        if "noop" in cases and "nft" in cases:
            lines.append("%6d  %-12s %10.3f %10.3f" % (n, "noop + nft", *(cases["noop"][p] + cases["nft"][p] for p in ("first", "rerun"))))
    lines += ["", "bytes of the result one host sends back (module case; the other cases return no items)", ""]
    head = "%6s  %-12s %10s %10s" % ("N", "case", "first", "re-run")
    lines += [head, "-" * len(head)]
    for n, cases in sorted(results.items()):
        sizes = cases.get("module", {}).get("result_bytes")
        if sizes:
            lines.append("%6d  %-12s %10d %10d" % (n, "module", sizes["first"], sizes["rerun"]))
    lines.append("")
    head = "%6s  %-7s %-26s %9s  %-8s %s" % ("N", "phase", "ratio", "value", "target", "verdict")
    lines += [head, "-" * len(head)]
    for row in ratio_rows:
        lines.append("%6d  %-7s %-26s %9.2f  %-8s %s" % (row["n"], row["phase"], row["name"], row["value"], row["target"] or "-", row["verdict"] or "-"))
    if any(row["verdict"] and "interval" in row and row["interval"] is None for row in ratio_rows):
        lines += ["", "module / (floor + nft): fewer than 5 rounds, so no interval; on a shared host one Ansible run",
                  "can differ from the next by 10 % or more, and a verdict from so few rounds can land on either side",
                  "of the target by chance (--repeat 21 or more; see bench/README.md, Targets)"]
    paired = [row for row in ratio_rows if len(row.get("per_round") or ()) > 1]
    if paired:
        lines += ["", "module / (floor + nft) round by round (for information: the spread of the ratios above)", ""]
        columns = ("N", "phase", "ratio", "min", "median", "max", "under 1.10", "90 % interval of the ratio above")
        head = "%6s  %-7s %-26s %7s %7s %7s  %-12s %s" % columns
        lines += [head, "-" * len(head)]
        for row in paired:
            values = row["per_round"]
            span = row.get("interval")
            lines.append("%6d  %-7s %-26s %7.2f %7.2f %7.2f  %-12s %s" % (
                row["n"], row["phase"], row["name"], values[0], statistics.median(values), values[-1],
                "%d of %d" % (sum(v <= TARGET_MODULE_OVER_FLOOR for v in values), len(values)),
                "%.2f - %.2f" % tuple(span) if span else "-"))
    return "\n".join(lines)


def _progress(text):
    print(text, end="", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="N = 10 only, every case once: a smoke run")
    parser.add_argument("--sizes", type=int, nargs="+", help="N values (default 10 100 1000 10000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each case but the loop, interleaved; the median is reported (default 3; the loop runs once)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES), help="cases to run (default all)")
    parser.add_argument("--instructions", action="store_true",
                        help="instead of timing: module, floor and nft once each under valgrind's callgrind, instructions of "
                             "every process summed (default N = 1000; about 5 minutes)")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/*.json")
    parser.add_argument("--ns-prefix", default="bench", help="name prefix of the namespaces made (default bench)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", args.ns_prefix):
        parser.error("--ns-prefix: letters, digits, '.', '_' and '-' only")
    NS_PREFIX[0] = args.ns_prefix
    sizes = [10] if args.quick else (args.sizes or ([TARGET_N] if args.instructions else [10, 100, 1000, 10000]))
    repeat = 1 if args.quick else max(1, args.repeat)

    if os.geteuid() != 0:
        parser.error("needs root (ip netns add)")
    for tool in ("ip", "nft", "iptables") + (("valgrind",) if args.instructions else ()):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            parser.error("%s is not installed%s" % (tool, " (apt-get install valgrind)" if tool == "valgrind" else ""))
    ensure_collection_link()
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)

    results = {}
    workdir = tempfile.mkdtemp(prefix="hnet-bench-")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    try:
        for n in sizes:
            if args.instructions:
                results[n] = count_size(n, workdir, _progress)
            else:
                results[n] = measure_size(n, repeat, workdir, _progress, args.cases)
    except KeyboardInterrupt:
        print("\ninterrupted; namespaces removed", file=sys.stderr)
        return 130
    finally:
        delete_all_namespaces()
        shutil.rmtree(workdir, ignore_errors=True)

    if args.instructions:
        print()
        print(instruction_table(results))
        return save(args, started, load_start, sizes, 1, results, instruction_ratios(results), mode="instructions")
    ratio_rows = ratios(results)
    print()
    print(table(results, ratio_rows, repeat))
    print("load average (1, 5, 15 min) at the end: %.2f %.2f %.2f on %d CPUs" % (os.getloadavg() + (os.cpu_count(),)))
    verdicts = [row["verdict"] for row in ratio_rows if row["verdict"]]
    if verdicts:
        print("\ntargets: %s" % ("PASS" if all(v == "PASS" for v in verdicts) else "FAIL"))

    return save(args, started, load_start, sizes, repeat, results, ratio_rows)


def save(args, started, load_start, sizes, repeat, results, ratio_rows, mode="time"):
    """Raw results to bench/results/ (unless --no-save); 0, the exit status."""
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / ("netfilter-%s%s.json" % ("instructions-" if mode == "instructions" else "", started.strftime("%Y%m%dT%H%M%SZ")))
        path.write_text(json.dumps({
            "date": started.isoformat(),
            "host": platform.node(), "python": platform.python_version(), "kernel": platform.release(),
            "ansible": _sh([str(ANSIBLE_PLAYBOOK), "--version"], check=False).stdout.splitlines()[:1],
            "nft": _sh(["nft", "--version"], check=False).stdout.strip(),
            "mode": mode, "sizes": sizes, "repeat": repeat, "quick": args.quick,
            "cases": list(INSTRUCTION_CASES) if mode == "instructions" else args.cases,
            "cpus": os.cpu_count(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "results": {str(n): cases for n, cases in results.items()},
            "ratios": ratio_rows,
        }, indent=1))
        print("raw results: %s" % (path.relative_to(REPO) if path.is_relative_to(REPO) else path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
