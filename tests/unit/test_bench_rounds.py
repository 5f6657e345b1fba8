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
