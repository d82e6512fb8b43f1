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


def test_sequence_puts_gatehouse_before_and_after_every_other_slice(bench):
    seq = bench.ab_sequence(["gh", "ghm0", "go", "ceiling"], 2)
    assert seq == ["gh", "ghm0", "gh", "go", "gh", "ceiling",
                   "gh", "ceiling", "gh", "go", "gh", "ghm0", "gh"]
    assert bench.ab_sequence(["go", "ceiling"], 2) == ["go", "ceiling", "ceiling", "go"]
    assert bench.ab_sequence(["gh"], 3) == ["gh", "gh", "gh"]


def test_a_linear_drift_cancels_out_of_the_bracketed_ratio(bench):
    # The machine slows down steadily, by 5 % of the first rate per slice; gatehouse is
    # 2x go and 0.8x the ceiling at every instant.
    keys = bench.ab_sequence(["gh", "go", "ceiling"], 3)
    speed = [1 - 0.05 * i for i in range(len(keys))]
    base = {"gh": 100.0, "go": 50.0, "ceiling": 125.0}
    slices = [(k, base[k] * v, 9.0 if k == "gh" else 1.0) for k, v in zip(keys, speed)]
    s = bench.ab_summary(slices)
    for got, want in ((s["go"]["ratio"], 2.0), (s["ceiling"]["ratio"], 0.8)):
        assert [pytest.approx(x) for x in got] == [want] * 3
    assert "ratio" not in s["gh"]
    assert s["gh"]["cpu_us"] == (9.0, 9.0, 9.0)
    # The ratio of the medians is off: the drift is not the same at go's and gh's slices.
    assert s["gh"]["rate"][0] / s["go"]["rate"][0] != pytest.approx(2.0)


def test_bracket_ratio_uses_the_nearest_measured_base_slice_on_each_side(bench):
    seq = [("gh", 100.0), ("go", 50.0), ("gh", None), ("go", 40.0), ("gh", 120.0),
           ("go", 0.0), ("go", None)]
    # go 50: gh 100 before, the next measured gh is 120; go 40: 100 and 120.
    assert bench.bracket_ratios(seq, "go") == [pytest.approx(2.2), pytest.approx(2.75)]
    assert bench.bracket_ratios([("go", 50.0), ("gh", 100.0)], "go") == [2.0]
    assert bench.bracket_ratios([("go", 50.0)], "go") == []


def test_spread_ignores_missing_values(bench):
    assert bench.spread([3, None, 1, 2]) == (2, 1, 3)
    assert bench.spread([None]) is None


def test_d_is_each_with_slice_over_the_mean_of_the_solo_slices_around_it(bench):
    parts = [("solo", 100), ("with", 90), ("solo", 80), ("with", 60), ("solo", 80),
             ("with", 76), ("solo", 72)]
    d = [{"part": p, "rate": r, "logins": 9.0, "login_503": 0, "errors": 0} for p, r in parts]
    fig = bench.ab_figures({"slices": [("gh", 1.0, 1.0)], "d": d})
    # 90 / 90 = 100 %, 60 / 80 = 75 %, 76 / 76 = 100 %.
    assert [pytest.approx(x) for x in fig["d_pct"]] == [100.0, 75.0, 100.0]
    assert fig["d_solo"] == 80
    assert fig["d_with"] == 76


def test_d_without_a_solo_rate_has_no_figure(bench):
    # A server that stopped answering: its solo slices measured 0 req/s.
    d = [{"part": p, "rate": r, "logins": 0.0, "login_503": 0, "errors": 9}
         for p, r in (("solo", 0.0), ("with", 10.0), ("solo", 0.0))]
    assert bench.ab_figures({"slices": [("gh", 1.0, 1.0)], "d": d})["d_pct"] is None


def report_text(bench, ab, rounds):
    servers = [bench.Server(k, label, kind, []) for k, label, kind in
               (("gh", "gatehouse", "gh"), ("ghm0", "gh-no-metrics", "gh"),
                ("go", "go-peer", "peer"), ("ceiling", "ceiling", "ceiling"))]
    args = argparse.Namespace(connections=64, ab_cycles=2, ab_slice=2, login_connections=64,
                              overload_connections=400, users=0)
    return bench.report(servers, rounds, ["header"], args, [], ab)


ROUNDS = {"gh": [{"a_rps": 100000.0, "d_pct": 95.0}], "ghm0": [{"a_rps": 120000.0}],
          "go": [{"a_rps": 45000.0}], "ceiling": [{"a_rps": 120000.0}]}


def ab_result(bench, gh, ghm0, go, ceiling, d_parts):
    """An ab phase's result: gh's rate before each other slice (and at the end) from
    `gh`, the others' in sequence order from their lists."""
    keys = ["gh", "ghm0", "go", "ceiling"]
    rates = {"gh": list(gh), "ghm0": list(ghm0), "go": list(go), "ceiling": list(ceiling)}
    slices = [(k, rates[k].pop(0), 10.0) for k in bench.ab_sequence(keys, len(ghm0))]
    assert not any(rates.values())
    return {"keys": keys, "labels": dict(zip(keys, ("gatehouse", "gh-no-metrics", "go-peer",
                                                     "ceiling"))),
            "slices": slices, "foreign": [0.1], "secs": 60.0, "drain_s": 0.5,
            "d": [{"part": p, "rate": r, "logins": 9.0, "login_503": 0, "errors": 0}
                  for p, r in d_parts], "notes": []}


def line(text, start):
    found = [l for l in text.splitlines() if l.strip().startswith(start)]
    assert len(found) == 1, (start, text)
    return found[0]


def test_targets_judge_ratios_on_the_interleaved_figure_and_show_the_rounds_beside(bench):
    # 2 cycles: gh ghm0 gh go gh ceiling | gh ceiling gh go gh ghm0 gh (7 gh slices).
    ab = ab_result(bench, [100, 100, 100, 100, 100, 100, 100], [99, 101], [48, 52], [125, 130],
                   [("solo", 100), ("with", 88), ("solo", 100), ("with", 89), ("solo", 100),
                    ("with", 92), ("solo", 100)])
    text = report_text(bench, ab, ROUNDS)
    assert "Interleaved A/B (ab)" in text
    # Metrics: the rounds alone (83.3 %) would fail; the interleaved figure (100.0 %)
    # passes and the rounds' figure is still printed, marked.
    m = line(text, "[PASS] a with metrics keeps >= 95% of metrics off (interleaved, 2 x 2 s)")
    assert "100.0%" in m and "rounds: 83.3% (FAIL on its own)" in m
    # Go: 100/48 and 100/52, median 2.00x; the rounds' 2.22x beside, not marked.
    g = line(text, "[PASS] a >= 2x the Go peer (interleaved, 2 x 2 s)")
    assert "2.00x [1.92x-2.08x per slice]" in g and "rounds: 2.22x" in g and "FAIL" not in g
    # The ceiling: 100/125 and 100/130, median 78.5 %.
    c = line(text, "[PASS] a >= 75% of ceiling (interleaved, 2 x 2 s)")
    assert "78.5%" in c and "rounds: 83.3%" in c
    # d: the rounds said 95 %, the slices 89 %: the FAIL is printed.
    d = line(text, "[FAIL] d /users/me/ keeps >= 90% of solo rate (issue 12) (interleaved")
    assert "89.0% [88.0-92.0% per slice]" in d and "rounds: 95.0%" in d
    line(text, "[PASS] d /users/me/ keeps >= 80% of solo rate (interleaved")


def test_an_interleaved_fail_is_a_fail_even_when_the_rounds_pass(bench):
    ab = ab_result(bench, [100] * 7, [110, 108], [40, 40], [200, 200], [])
    text = report_text(bench, ab, ROUNDS)
    f = line(text, "[FAIL] a >= 75% of ceiling (interleaved, 2 x 2 s)")
    assert "50.0%" in f and "rounds: 83.3%" in f
    # No d slices: d is judged on the rounds as before, without the tag.
    line(text, "[PASS] d /users/me/ keeps >= 90% of solo rate (issue 12): 95.0%")


def test_without_the_ab_phase_the_targets_read_as_before(bench):
    text = report_text(bench, None, ROUNDS)
    assert "interleaved" not in text
    line(text, "[FAIL] a with metrics keeps >= 95% of metrics off: 83.3%")
    line(text, "[PASS] a >= 2x the Go peer: 2.22x")
