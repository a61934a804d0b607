"""The statistics on summaries: equal to statsmodels and scipy, additive, coded statuses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from measure import stats
from measure.stats import SampleMean, Settings, WelchTest
from script import ab
from script.ab import compare as cmp
from sim.calibrate import effect as calibration_effect

values = st.lists(st.floats(-1e3, 1e3, allow_subnormal=False), min_size=2, max_size=60)


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_summaries_add_up_and_give_numpys_mean_and_variance(a, b):
    whole, parts = SampleMean.of(a + b), SampleMean.of(a) + SampleMean.of(b)
    assert whole.n == parts.n == len(a) + len(b)
    assert parts.sum == pytest.approx(whole.sum, rel=1e-9, abs=1e-9)
    assert parts.sum_squares == pytest.approx(whole.sum_squares, rel=1e-9, abs=1e-9)
    joined = np.array(a + b)
    assert parts.mean == pytest.approx(joined.mean(), rel=1e-9, abs=1e-9)
    assert parts.variance == pytest.approx(joined.var(ddof=1), rel=1e-6, abs=1e-6)


def test_summary_of_known_values():
    s = SampleMean.of([1.0, 2.0, 3.0, 6.0])
    assert (s.n, s.sum, s.sum_squares, s.mean, s.variance) == (4, 12.0, 50.0, 3.0, 14 / 3)
    assert SampleMean.of([0.1] * 3).variance == 0  # the sums' rounding is not spread
    assert SampleMean.of([5.0]).variance == 0 and SampleMean().mean == 0


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 100, allow_subnormal=False), min_size=2, max_size=50),
    st.lists(st.floats(0, 100, allow_subnormal=False), min_size=2, max_size=50),
    st.sampled_from([0.01, 0.05, 0.1]),
)
def test_welch_equals_statsmodels(control, treatment, alpha):
    c, t = np.array(control), np.array(treatment)
    assume(c.var() + t.var() >= 1e-6)  # (nearly) no spread: `compare` says no_variance instead
    test = WelchTest(SampleMean.of(c), SampleMean.of(t), Settings(alpha=alpha))
    reference = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    lower, upper = reference.tconfint_diff(alpha=alpha, usevar="unequal")
    _, p_value, dof = reference.ttest_ind(usevar="unequal")
    assert test.confidence_interval == pytest.approx((lower, upper), rel=1e-6, abs=1e-9)
    assert test.p_value == pytest.approx(p_value, rel=1e-6, abs=1e-12)
    assert test.dof == pytest.approx(dof, rel=1e-6)


def test_welch_pinned_on_a_tiny_input():
    test = WelchTest(SampleMean.of([1.0, 2.0, 3.0]), SampleMean.of([2.0, 4.0, 6.0, 8.0]))
    assert test.diff == 3.0
    assert test.standard_error == pytest.approx(np.sqrt(1 / 3 + 20 / 3 / 4))
    assert test.dof == pytest.approx(4 / (1 / 9 / 2 + (5 / 3) ** 2 / 3))  # 4.0755
    assert test.confidence_interval == pytest.approx((-0.8979754510831288, 6.897975451083129))
    assert test.p_value == pytest.approx(0.09991286431180087)


def textbook_holm(p_values: list[float], alpha: float) -> tuple[list[float], list[bool]]:
    """Holm (1979) as written: sort, multiply by m - i, running maximum, cap at 1; reject the
    smallest p-values up to the first with p_(i) > alpha / (m - i)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, reject, running, rejecting = [0.0] * m, [False] * m, 0.0, True
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        rejecting = rejecting and p_values[i] <= alpha / (m - rank)
        adjusted[i], reject[i] = running, rejecting
    return adjusted, reject


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(0, 1) | st.sampled_from([0.0, 0.01, 0.05, 1.0]), max_size=25),
    st.sampled_from([0.01, 0.05, 0.2]),
)
def test_holm_is_holm(p_values, alpha):
    adjusted, reject = stats.holm(p_values, alpha)
    expected, expected_reject = textbook_holm(p_values, alpha)
    assert adjusted == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert reject == expected_reject


@pytest.mark.parametrize(
    "p_values", [[0.01, 0.04, 0.03, 0.5], [0.001, 0.001, 0.2, 0.0125, 0.9], [0.3], [0.05, 0.025]]
)
def test_holm_equals_statsmodels(p_values):  # statsmodels takes 0.3 s a call: a few cases only
    adjusted, reject = stats.holm(p_values, 0.05)
    expected_reject, expected, _, _ = multipletests(p_values, 0.05, method="holm")
    assert adjusted == pytest.approx(expected.tolist(), rel=1e-12)
    assert reject == expected_reject.tolist()


def test_holm_pinned():
    adjusted, reject = stats.holm([0.01, 0.04, 0.03, 0.5], 0.05)
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert reject == [True, False, False, False]


def test_sample_ratio_test():
    result = stats.SampleRatioTest({"C": 520, "T1": 480}).result()
    chi2, p_value = scipy_stats.chisquare([520, 480])
    assert (result.chi2, result.p_value) == pytest.approx((chi2, p_value))
    assert result.chi2 == pytest.approx(1.6) and not result.mismatch
    skewed = stats.SampleRatioTest({"C": 600, "T1": 400}, Settings(srm_threshold=0.01))
    assert skewed.result().mismatch and skewed.p_value < 1e-9
    assert stats.SampleRatioTest({"C": 3}).result().p_value == 1.0


@pytest.mark.parametrize("bad", [0, 1, -0.1, 2.0])
def test_settings_are_checked(bad):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Settings(alpha=bad)
    with pytest.raises(ValueError, match="srm_threshold"):
        Settings(srm_threshold=bad)


def test_a_bad_metric_is_a_coded_message_not_a_crash():
    ok = SampleMean.of([1.0, 2.0, 3.0])
    cases = {
        cmp.TOO_FEW_USERS: (ok, SampleMean.of([1.0])),
        cmp.NOT_FINITE: (ok, SampleMean.of([1.0, float("nan")])),
        cmp.NO_VARIANCE: (SampleMean.of([2.0, 2.0]), SampleMean.of([3.0, 3.0])),
        cmp.ZERO_CONTROL_MEAN: (SampleMean.of([-1.0, 1.0]), ok),
        cmp.MISSING_METRIC: (ok, None),
    }
    for status, (control, treatment) in cases.items():
        effect = cmp.compare("m", "T1", control, treatment)
        assert effect.status == status and effect.message, status
        assert effect.effect_pct is None, status
    assert cmp.compare("m", "T1", *cases[cmp.ZERO_CONTROL_MEAN]).p_value is not None
    assert cmp.compare("m", "T1", *cases[cmp.NO_VARIANCE]).diff == 1.0


def test_effects_from_summaries_of_user_chunks_equal_the_whole():
    """The point of summaries: split users into chunks, summarize each, add, same result."""
    rng = np.random.default_rng(5)
    metrics = pd.DataFrame(
        {
            "user": np.arange(600),
            "arm": rng.choice(["C", "T1", "T2"], 600),
            **{m: rng.gamma(2.0, 1.5, 600) for m in ab.METRICS},
        }
    )
    whole = ab.compare_all(metrics, "C", 0.05)
    chunks = [ab.summarize(metrics.iloc[i : i + 90]) for i in range(0, len(metrics), 90)]
    merged = {
        arm: {m: sum((c[arm][m] for c in chunks if arm in c), SampleMean()) for m in ab.METRICS}
        for arm in ("C", "T1", "T2")
    }
    pieced = cmp.compare_arms(merged, "C", ab.METRICS, Settings(alpha=0.05))
    for a, b in zip(whole, pieced, strict=True):
        assert (a.arm, a.metric, a.status) == (b.arm, b.metric, b.status)
        for name in ("effect_pct", "lower_pct", "upper_pct", "p_value", "p_holm"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9), name


def test_calibration_uses_the_reports_welch_interval():
    rng = np.random.default_rng(3)
    control, treatment = rng.exponential(1.0, 400), rng.exponential(1.3, 300)
    e = calibration_effect(treatment, control)
    lower, upper = CompareMeans(DescrStatsW(treatment), DescrStatsW(control)).tconfint_diff(
        alpha=0.05, usevar="unequal"
    )
    base = control.mean() / 100
    assert e.percent == pytest.approx((treatment.mean() - control.mean()) / base, rel=1e-9)
    assert (e.low, e.high) == pytest.approx((lower / base, upper / base), rel=1e-9)
