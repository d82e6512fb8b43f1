"""bench/run's interleaved A/B arithmetic and how its Targets section reads it.

bench/run is a script (no .py suffix), loaded here as a module; nothing is measured:
the per-cycle figures are made up so that each assertion has one right answer."""
import argparse
import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "bench" / "run"


@pytest.fixture(scope="module")
def bench():
    loader = importlib.machinery.SourceFileLoader("bench_run", str(RUN))
    spec = importlib.util.spec_from_loader("bench_run", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_paired_ratios_pair_slices_of_the_same_cycle_and_skip_missing_ones(bench):
    assert bench.paired_ratios([100, 90, None, 80], [50, 45, 40, 0]) == [2.0, 2.0]
    assert bench.paired_ratios([], [1, 2]) == []


def test_ratio_is_the_median_of_per_cycle_ratios_not_the_ratio_of_medians(bench):
    # The machine slows down by half over the run; gh is 2x go in every cycle.
    gh = [200, 180, 160, 140, 120, 100]
    go = [100, 90, 80, 70, 60, 50]
    other = [10, 400, 10, 400, 10, 400]  # noisy: its ratio's min and max show it
    s = bench.ab_summary({"gh": gh, "go": go, "x": other},
                         {"gh": [9.0, 8.0, 10.0, 9.0, 9.0, 9.0], "go": [19.0] * 6, "x": [1.0] * 6})
    assert s["go"]["ratio"] == (2.0, 2.0, 2.0)
    assert s["gh"]["rate"] == (150, 100, 200)
    assert s["gh"]["cpu_us"] == (9.0, 8.0, 10.0)
    assert "ratio" not in s["gh"]
    assert s["x"]["ratio"] == (pytest.approx(6.225), 0.25, 20.0)


def test_a_server_missing_a_cycle_is_compared_on_the_others(bench):
    s = bench.ab_summary({"gh": [100, 100, 100], "go": [50, None, 25]}, {})
    assert s["go"]["ratio"] == (3.0, 2.0, 4.0)
    assert s["go"]["rate"] == (37.5, 25, 50)
    assert s["go"]["cpu_us"] is None


def test_order_reverses_every_other_cycle(bench):
    keys = ["gh", "ghm0", "go", "ceiling"]
    assert bench.ab_order(keys, 0) == keys
    assert bench.ab_order(keys, 1) == ["ceiling", "go", "ghm0", "gh"]
    assert bench.ab_order(keys, 2) == keys


def test_d_is_the_median_of_adjacent_with_over_solo(bench):
    pairs = [(100, 95), (80, 60), (120, 114), (50, 46)]
    res = {"rates": {"gh": [1.0]}, "cpu_us": {"gh": [1.0]},
           "d": [{"solo": a, "with": b, "logins": 9.0, "login_503": 0, "errors": 0}
                 for a, b in pairs]}
    fig = bench.ab_figures(res)
    assert fig["d_pct"][0] == pytest.approx(93.5)
    assert fig["d_pct"][1:] == (pytest.approx(75.0), pytest.approx(95.0))


def report_text(bench, ab, rounds):
    servers = [bench.Server(k, label, kind, []) for k, label, kind in
               (("gh", "gatehouse", "gh"), ("ghm0", "gh-no-metrics", "gh"),
                ("go", "go-peer", "peer"), ("ceiling", "ceiling", "ceiling"))]
    args = argparse.Namespace(connections=64, ab_cycles=4, ab_slice=2, login_connections=64,
                              overload_connections=400, users=0)
    return bench.report(servers, rounds, ["header"], args, [], ab)


ROUNDS = {"gh": [{"a_rps": 100000.0, "d_pct": 95.0}], "ghm0": [{"a_rps": 120000.0}],
          "go": [{"a_rps": 45000.0}], "ceiling": [{"a_rps": 120000.0}]}


def ab_result(gh, ghm0, go, ceiling, d_pairs):
    keys = ["gh", "ghm0", "go", "ceiling"]
    rates = dict(zip(keys, (gh, ghm0, go, ceiling)))
    return {"keys": keys, "labels": dict(zip(keys, ("gatehouse", "gh-no-metrics", "go-peer",
                                                     "ceiling"))),
            "rates": rates, "cpu_us": {k: [10.0] * len(v) for k, v in rates.items()},
            "foreign": [0.1], "secs": 60.0, "drain_s": 0.5,
            "d": [{"solo": a, "with": b, "logins": 9.0, "login_503": 0, "errors": 0}
                  for a, b in d_pairs], "notes": []}


def line(text, start):
    found = [l for l in text.splitlines() if l.strip().startswith(start)]
    assert len(found) == 1, (start, text)
    return found[0]


def test_targets_judge_ratios_on_the_interleaved_figure_and_show_the_rounds_beside(bench):
    ab = ab_result([100, 110, 100, 120], [99, 110, 101, 118], [48, 52, 50, 60],
                   [125, 130, 125, 150], [(100, 88), (100, 86), (100, 89), (100, 90)])
    text = report_text(bench, ab, ROUNDS)
    assert "Interleaved A/B (ab)" in text
    # Metrics: the rounds alone (83.3 %) would fail; the paired figure passes and the
    # rounds' figure is still printed, marked.
    m = line(text, "[PASS] a with metrics keeps >= 95% of metrics off (interleaved, 4 x 2 s)")
    assert "rounds: 83.3% (FAIL on its own)" in m
    # Go: the paired ratio (median 2.04x) passes, as does the rounds' 2.22x.
    g = line(text, "[PASS] a >= 2x the Go peer (interleaved, 4 x 2 s)")
    assert "2.04x" in g and "rounds: 2.22x" in g and "FAIL" not in g
    # The ceiling: the paired ratio (0.80) passes, the rounds' 83.3 % too.
    line(text, "[PASS] a >= 75% of ceiling (interleaved, 4 x 2 s)")
    # d: the rounds said 95 %, the pairs say 88.5 %: the FAIL is printed.
    d = line(text, "[FAIL] d /users/me/ keeps >= 90% of solo rate (issue 12) (interleaved")
    assert "88.5%" in d and "rounds: 95.0%" in d
    line(text, "[PASS] d /users/me/ keeps >= 80% of solo rate (interleaved")


def test_an_interleaved_fail_is_a_fail_even_when_the_rounds_pass(bench):
    ab = ab_result([100, 100, 100], [110, 108, 112], [40, 40, 40], [200, 200, 200], [])
    text = report_text(bench, ab, ROUNDS)
    f = line(text, "[FAIL] a >= 75% of ceiling (interleaved, 4 x 2 s)")
    assert "50.0%" in f and "rounds: 83.3%" in f
    # No pairs for d: d is judged on the rounds as before, without the tag.
    line(text, "[PASS] d /users/me/ keeps >= 90% of solo rate (issue 12): 95.0%")


def test_without_the_ab_phase_the_targets_read_as_before(bench):
    text = report_text(bench, None, ROUNDS)
    assert "interleaved" not in text
    line(text, "[FAIL] a with metrics keeps >= 95% of metrics off: 83.3%")
    line(text, "[PASS] a >= 2x the Go peer: 2.22x")
