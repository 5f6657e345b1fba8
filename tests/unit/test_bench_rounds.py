"""bench/netfilter_bench.py: how rounds are ordered and how far its verdict's ratio can be trusted.

Pure logic only; the runs themselves are proven by tests/integration/test_bench_smoke.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "netfilter_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("netfilter_bench_under_test", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases(rounds):
    """{case: {"runs": [...]}} from (module, floor, nft) seconds per round, both phases alike."""
    out = {"module": {"runs": []}, "floor": {"runs": []}, "nft": {"runs": []}}
    for values in rounds:
        for case, seconds in zip(("module", "floor", "nft"), values):
            out[case]["runs"].append({"first": seconds, "rerun": seconds})
    return out


def test_every_other_round_runs_the_cases_in_reverse(bench, monkeypatch, tmp_path):
    order = []

    def fake_run(case, n, workdir):
        order.append(case)
        return {"first": 1.0, "rerun": 1.0, "first_cpu": 1.0, "rerun_cpu": 1.0}

    monkeypatch.setattr(bench, "run_case", fake_run)
    monkeypatch.setattr(bench, "result_sizes", lambda n, workdir: {"first": 1, "rerun": 1})
    bench.measure_size(1000, 3, str(tmp_path), lambda text: None, ["module", "nft", "floor"])
    assert order == ["module", "nft", "floor", "floor", "nft", "module", "module", "nft", "floor"]


def test_the_interval_is_the_ratio_itself_when_every_round_agrees(bench):
    cases = _cases([(1.1 * (1.4 + 0.1), 1.4, 0.1)] * 7)
    low, high = bench.interval(cases, "first")
    assert low == pytest.approx(1.1) and high == pytest.approx(1.1)


def test_the_interval_widens_with_the_rounds_spread_and_holds_the_ratio(bench):
    noisy = [(1.6, 1.5, 0.1), (1.9, 1.4, 0.1), (1.5, 1.6, 0.1), (2.0, 1.5, 0.1), (1.7, 1.5, 0.1), (1.6, 1.7, 0.1), (1.8, 1.4, 0.1)]
    cases = _cases(noisy)
    low, high = bench.interval(cases, "rerun")
    ratio = 1.7 / (1.5 + 0.1)  # the medians of the three columns
    assert low < ratio < high
    assert high - low > 0.05


def test_too_few_rounds_give_no_interval(bench):
    assert bench.interval(_cases([(1.6, 1.5, 0.1)] * 4), "first") is None


def test_callgrind_totals_are_summed_over_every_process(bench, tmp_path):
    # callgrind writes one file per process; the totals line (or summary, in older valgrind)
    # carries the instructions of the whole process.
    (tmp_path / "cg.101").write_text("version: 1\ncmd: ansible-playbook\nevents: Ir\nfl=a\n1 5\ntotals: 4000000000\n")
    (tmp_path / "cg.102").write_text("version: 1\ncmd: nft\nevents: Ir\nsummary: 250000000\n")
    assert bench.callgrind_total(tmp_path) == 4250000000


def test_a_process_cut_off_under_callgrind_is_an_error_not_a_smaller_count(bench, tmp_path):
    (tmp_path / "cg.101").write_text("version: 1\ncmd: ansible-playbook\ntotals: 4000000000\n")
    (tmp_path / "cg.102").write_text("version: 1\ncmd: nft\nevents: Ir\nfl=a\n1 5\n")
    with pytest.raises(RuntimeError, match="cg.102: no totals line"):
        bench.callgrind_total(tmp_path)
    with pytest.raises(RuntimeError, match="no callgrind output"):
        bench.callgrind_total(tmp_path / "empty")


def test_the_instruction_ratio_is_module_over_floor_plus_nft(bench):
    counts = {1000: {"module": {"first": 5.686e9, "rerun": 5.811e9}, "floor": {"first": 5.349e9, "rerun": 5.397e9},
                     "nft": {"first": 0.271e9, "rerun": 0.270e9}}}
    rows = bench.instruction_ratios(counts)
    assert [(row["phase"], round(row["value"], 3)) for row in rows] == [("first", 1.012), ("rerun", 1.025)]
    assert "instructions module / (floor + nft)" in bench.instruction_table(counts)


def _callgrind_file(path, command, total):
    path.write_text("version: 1\ncmd: %s\nevents: Ir\nfl=a\n1 5\ntotals: %d\n" % (command, total))


def test_callgrind_counts_are_told_apart_by_program(bench, tmp_path):
    # A module run under Ansible: the main process and its forked worker (same command line),
    # the shell that starts the module (it names the AnsiballZ file too), the module, nft, ip.
    playbook = "/v/bin/python /v/bin/ansible-playbook -i inventory.yml play.yml"
    module = "/v/bin/python /root/.ansible/tmp/ansible-tmp-1/AnsiballZ_port_forward.py"
    for pid, command, total in ((1, playbook, 5000), (2, playbook, 1800), (3, "/bin/sh -c '%s && sleep 0'" % module, 3),
                                (4, module, 3100), (5, "/usr/sbin/nft -j list ruleset", 600),
                                (6, "ip -j -4 route show table all", 2), (7, "ansible-playbook play.yml", 7)):
        _callgrind_file(tmp_path / ("cg.%d" % pid), command, total)
    assert bench.callgrind_by_program(tmp_path) == {"ansible-playbook": 6807, "module": 3100, "nft": 600, "other": 5}
    assert bench.callgrind_total(tmp_path) == 10512


def test_the_instruction_table_shows_each_program_of_each_case(bench):
    split = {"ansible-playbook": 7.634e9, "module": 3.113e9, "nft": 0.617e9, "other": 0.01e9}
    counts = {1000: {case: {"first": 1e9, "rerun": 1e9, "by_program": {"first": split, "rerun": split}}
                     for case in ("module", "floor", "nft")}}
    table = bench.instruction_table(counts)
    assert any(line.split()[-4:] == ["ansible-playbook", "module", "nft", "other"] for line in table.splitlines())
    row = next(line for line in table.splitlines() if line.split()[:3] == ["1000", "rerun", "module"])
    assert row.split()[3:] == ["7.634", "3.113", "0.617", "0.010"]


def test_forked_children_are_counted_from_zero_and_every_process_gets_its_own_file(bench, monkeypatch):
    # Under callgrind a forked child inherits its parent's counts: Ansible's worker would count
    # ansible-playbook's start-up a second time. And a `%%p` in the file name is a literal `%p`
    # to valgrind, which made every process overwrite one file (session 9's one-off counts).
    seen = {}

    def fake_sh(argv, env=None, timeout=None):
        seen["argv"] = argv
        pattern = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--callgrind-out-file="))
        seen["pattern"] = pattern
        for pid, command, total in ((101, "ansible-playbook play.yml", 7), (102, "nft -f rules.nft", 5)):
            Path(pattern.replace("%p", str(pid))).write_text("cmd: %s\nsummary: %d\n" % (command, total))
        return "done"

    monkeypatch.setattr(bench, "_sh", fake_sh)
    record = []
    total, cpu, proc = bench.counted(["ansible-playbook", "play.yml"], record=record)
    assert (total, cpu, proc) == (12, None, "done")
    assert record == [{"ansible-playbook": 7, "module": 0, "nft": 5, "other": 0}]
    assert "--zero-before=PyOS_AfterFork_Child" in seen["argv"] and "--trace-children=yes" in seen["argv"]
    assert seen["argv"][-2:] == ["ansible-playbook", "play.yml"]
    assert seen["pattern"].endswith("/cg.%p")  # valgrind puts the process id where %p stands


def test_a_verdict_from_too_few_rounds_says_it_has_no_interval(bench):
    few = _cases([(1.6, 1.5, 0.1)] * 3)
    many = _cases([(1.6, 1.5, 0.1)] * 5)
    for cases, warned in ((few, True), (many, False)):
        for case in cases.values():
            for run in case["runs"]:
                run.update(first_cpu=run["first"], rerun_cpu=run["rerun"])
            case.update({key: case["runs"][0][key] for key in ("first", "rerun", "first_cpu", "rerun_cpu")})
        text = bench.table({1000: cases}, bench.ratios({1000: cases}), 3)
        assert ("fewer than 5 rounds, so no interval" in text) is warned
