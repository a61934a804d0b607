"""The report's methods on small known inputs: CUPED, the confidence sequence, Fieller's interval,
power and MDE, guardrails, the config, the weighted sample-ratio check.

Reference numbers come from statsmodels (OLS, CompareMeans, NormalIndPower) or from gbstats'
published formulas written out here from the papers' equations, never from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from measure.stats import SampleMean, SampleRatioTest, Settings
from script.ab import compare as cmp
from script.ab import estimate as est
from script.ab import power, sequential
from script.ab.config import Guardrail, load_analysis
from script.ab.cuped import CupedSample, theta
from script.ab.errors import ReportError
from script.ab.guardrails import FAIL, NO_VERDICT, PASS, check

REPO_CONFIG = "config/experiments.yml"


def correlated(n: int, effect: float, seed: int, missing: float = 0.0):
    """Per-user (post, pre): post = 2 + 0.8 * pre + noise (+ effect); some pre missing (NaN)."""
    rng = np.random.default_rng(seed)
    pre = rng.gamma(2.0, 1.0, n)
    post = 2 + 0.8 * pre + rng.normal(0, 0.7, n) + effect
    pre[rng.random(n) < missing] = np.nan
    return post, pre


# -- CUPED -------------------------------------------------------------------------------------
def test_cuped_samples_add_up_and_count_users_without_pre():
    post, pre = correlated(500, 0.0, 1, missing=0.1)
    whole = CupedSample.of(post, pre)
    parts = CupedSample.of(post[:200], pre[:200]) + CupedSample.of(post[200:], pre[200:])
    assert whole.n == parts.n == 500 and whole.without_pre == parts.without_pre
    assert whole.without_pre == int(np.isnan(pre).sum()) > 0
    assert parts.sum_products == pytest.approx(whole.sum_products, rel=1e-12)
    filled = np.nan_to_num(pre)  # gbstats: a user without pre-period data counts 0
    assert whole.covariance == pytest.approx(np.cov(post, filled)[0, 1], rel=1e-9)
    assert whole.pre.mean == pytest.approx(filled.mean())


def test_theta_is_the_pooled_ols_slope_of_statsmodels():
    control, treatment = correlated(300, 0.0, 2, 0.05), correlated(250, 0.5, 3, 0.05)
    slope = theta(CupedSample.of(*control), CupedSample.of(*treatment))
    post = np.r_[control[0], treatment[0]]
    pre = np.nan_to_num(np.r_[control[1], treatment[1]])
    reference = sm.OLS(post, sm.add_constant(pre)).fit().params[1]
    assert slope == pytest.approx(reference, rel=1e-9)


def test_cuped_is_welch_on_the_adjusted_values_as_statsmodels_computes_it():
    """gbstats' CUPED = Welch's test on post - theta * pre per user (theta pooled): checked
    against statsmodels' OLS slope and CompareMeans on the same data."""
    (yc, xc), (yt, xt) = correlated(400, 0.0, 4, 0.1), correlated(350, 0.3, 5, 0.1)
    xc, xt = np.nan_to_num(xc), np.nan_to_num(xt)
    slope = sm.OLS(np.r_[yc, yt], sm.add_constant(np.r_[xc, xt])).fit().params[1]
    reference = CompareMeans(DescrStatsW(yt - slope * xt), DescrStatsW(yc - slope * xc))
    lower, upper = reference.tconfint_diff(alpha=0.05, usevar="unequal")
    _, p_value, dof = reference.ttest_ind(usevar="unequal")
    effect = cmp.compare("m", "T1", CupedSample.of(yc, xc), CupedSample.of(yt, xt))
    assert effect.method == "cuped" and effect.theta == pytest.approx(slope, rel=1e-9)
    assert (effect.diff_lower, effect.diff_upper) == pytest.approx((lower, upper), rel=1e-9)
    assert effect.p_value == pytest.approx(p_value, rel=1e-6)
    assert effect.control_mean == pytest.approx(yc.mean())  # means shown unadjusted
    assert effect.treatment_mean == pytest.approx(yt.mean())
    assert dof == pytest.approx(est.cuped(CupedSample.of(yc, xc), CupedSample.of(yt, xt)).dof)
    # the plain effect beside it, and the narrowing (corr(post, pre) about 0.7, 10 % without pre)
    plain = cmp.compare("m", "T1", SampleMean.of(yc), SampleMean.of(yt))
    assert effect.raw_effect_pct == pytest.approx(plain.effect_pct)
    assert (effect.raw_lower_pct, effect.raw_upper_pct) == (plain.lower_pct, plain.upper_pct)
    width, raw = effect.upper_pct - effect.lower_pct, plain.upper_pct - plain.lower_pct
    assert effect.ci_narrower_pct == pytest.approx(100 * (1 - width / raw))
    assert effect.ci_narrower_pct > 20  # seen: 28.9


def test_without_any_pre_period_cuped_is_the_plain_comparison():
    yc, yt = correlated(200, 0.0, 6)[0], correlated(200, 0.4, 7)[0]
    nothing = np.full(200, np.nan)
    cuped = cmp.compare("m", "T1", CupedSample.of(yc, nothing), CupedSample.of(yt, nothing))
    plain = cmp.compare("m", "T1", SampleMean.of(yc), SampleMean.of(yt))
    assert cuped.theta == 0 and cuped.without_pre == 400
    for name in ("diff", "diff_lower", "diff_upper", "lower_pct", "upper_pct", "p_value"):
        assert getattr(cuped, name) == pytest.approx(getattr(plain, name), rel=1e-12), name


def test_a_pre_period_that_differs_between_the_arms_is_not_used():
    """Randomisation balances an untreated pre-period; arms that already differed before the
    experiment (their code ran) would make CUPED subtract part of the effect."""
    (yc, xc), (yt, xt) = correlated(500, 0.0, 11), correlated(500, 1.0, 12)
    shifted = cmp.compare("m", "T1", CupedSample.of(yc, xc), CupedSample.of(yt, xt + 1.0))
    plain = cmp.compare("m", "T1", SampleMean.of(yc), SampleMean.of(yt))
    assert shifted.method == "welch" and shifted.pre_balance_p < 0.001
    assert "pre-period means differ" in shifted.message and shifted.status == "ok"
    assert (shifted.lower_pct, shifted.upper_pct) == (plain.lower_pct, plain.upper_pct)
    balanced = cmp.compare("m", "T1", CupedSample.of(yc, xc), CupedSample.of(yt, xt))
    assert balanced.method == "cuped" and balanced.pre_balance_p > 0.001 and not balanced.message


# -- the confidence sequence -------------------------------------------------------------------
def waudby_smith_halfwidth(se: float, n: int, alpha: float, tuning: float) -> float:
    """Eq. 9 of Waudby-Smith et al. (2023) with eq. 161's rho, as gbstats' docs write them:
    s2 = SE**2 * N the per-observation variance, N the users of both arms."""
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    s2 = se**2 * n
    return math.sqrt(s2) * math.sqrt(
        2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2
    )


@pytest.mark.parametrize("n", [10, 800, 5000, 40_000])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_the_sequence_is_gbstats_published_formula(n, alpha):
    se = 0.37
    expected = waudby_smith_halfwidth(se, n, alpha, 5000)
    assert sequential.critical(n, alpha, 5000) * se == pytest.approx(expected, rel=1e-12)


def test_the_sequence_pinned_and_its_shape():
    assert sequential.critical(5000, 0.05) == pytest.approx(3.035209, abs=1e-6)
    grid = [100, 1000, 3000, 5000, 8000, 50_000, 10**6]
    values = [sequential.critical(n, 0.05) for n in grid]
    assert all(v > scipy_stats.norm.ppf(0.975) for v in values)  # always wider than fixed
    # narrowest near N* = 5000
    assert min(values) in (values[grid.index(3000)], values[grid.index(5000)])
    alphas = np.geomspace(1e-10, 0.99, 60)
    crit = [sequential.critical(2000, a) for a in alphas]
    assert all(a > b for a, b in zip(crit, crit[1:], strict=False))  # falls as alpha grows


@pytest.mark.parametrize("z", [0.5, 2.0, 3.0, 4.5, 9.0])
def test_the_always_valid_p_value_is_where_the_sequence_touches_0(z):
    p = sequential.p_value(z, 3000)
    if p < 1:
        assert sequential.critical(3000, p) == pytest.approx(z, rel=1e-9)
    for alpha in (0.01, 0.05, 0.2):  # p < alpha exactly when the sequence excludes 0
        assert (p < alpha) == (z > sequential.critical(3000, alpha))


def test_peeking_inflates_the_fixed_test_and_not_the_sequence():
    """Normal data, 20 looks at 100..2000 users an arm, no effect, 2000 tests."""
    rng = np.random.default_rng(0)
    looks = np.arange(100, 2001, 100)
    a, b = rng.normal(size=(2, 2000, 2000))
    diff = (np.cumsum(b, axis=1) - np.cumsum(a, axis=1))[:, looks - 1] / looks
    z = np.abs(diff) / np.sqrt(2 / looks)
    fixed = (z > 1.959964).any(axis=1).mean()
    seq = (z > np.array([sequential.critical(2 * n, 0.05) for n in looks])).any(axis=1).mean()
    once = (z[:, -1] > 1.959964).mean()
    assert 0.035 < once < 0.065
    assert fixed > 0.15  # seen: 0.22
    assert seq < 0.03  # seen: 0.005 (the sequence is conservative)


# -- Fieller's interval ---------------------------------------------------------------------------
positive = st.lists(st.floats(0.1, 50, allow_subnormal=False), min_size=3, max_size=40)


@settings(max_examples=150, deadline=None)
@given(positive, positive, st.sampled_from([0.01, 0.05, 0.2]), st.booleans())
def test_the_percent_interval_excludes_0_exactly_when_the_test_rejects(c, t, alpha, seq):
    control, treatment = SampleMean.of(c), SampleMean.of(t)
    effect = cmp.compare("m", "T1", control, treatment, Settings(alpha=alpha, sequential=seq))
    if effect.lower_pct is None:
        return  # unbounded or no variance: nothing to compare
    assert effect.lower_pct <= effect.effect_pct <= effect.upper_pct
    excludes = effect.lower_pct > 0 or effect.upper_pct < 0
    assert excludes == effect.significant == (effect.p_value < alpha)


def test_fieller_is_the_delta_method_for_small_effects_and_large_samples():
    rng = np.random.default_rng(8)
    c, t = SampleMean.of(rng.gamma(3, 1, 50_000)), SampleMean.of(rng.gamma(3, 1.02, 50_000))
    estimate = est.welch(c, t)
    critical = est.Method().critical(estimate)
    fieller = est.relative_interval(estimate, critical)
    delta = est.relative_delta_interval(estimate, critical)
    assert fieller == pytest.approx(delta, abs=1e-4)


def test_the_delta_interval_is_gbstats_relative_variance():
    """gbstats' TTest.variance (relative): var_b / (mean_a**2 n_b) + var_a mean_b**2 /
    (mean_a**4 n_a)."""
    rng = np.random.default_rng(9)
    a, b = rng.gamma(2, 1, 300), rng.gamma(2, 1.5, 200)
    va, vb, ma, mb = a.var(ddof=1), b.var(ddof=1), a.mean(), b.mean()
    variance = vb / (ma**2 * len(b)) + va * mb**2 / (ma**4 * len(a))
    estimate = est.welch(SampleMean.of(a), SampleMean.of(b))
    low, high = est.relative_delta_interval(estimate, 1.959964)
    assert (high - low) / 2 / 1.959964 == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert (low + high) / 2 == pytest.approx(mb / ma - 1, rel=1e-12)


def test_a_control_mean_not_above_0_has_no_percent_interval():
    effect = cmp.compare("m", "T1", SampleMean.of([-1.0, 0.2, 1.1]), SampleMean.of([2.0, 3.0]))
    assert effect.status == cmp.UNBOUNDED_PCT and effect.message
    assert effect.lower_pct is None and effect.effect_pct is not None
    assert effect.p_value is not None and effect.diff_lower is not None


# -- power ----------------------------------------------------------------------------------------
def test_users_per_arm_is_the_textbook_formula():
    # (z_0.975 + z_0.8)**2 * cv**2 * (1 + (1 + d)**2) / d**2 with cv 1, d 10 %
    expected = (1.959964 + 0.841621) ** 2 * (1 + 1.1**2) / 0.1**2
    assert power.users_per_arm(1.0, 0.10) == math.ceil(expected) == 1735
    assert power.users_per_arm(1.0, 0.10, comparisons=4) > 1735  # alpha / 4
    assert power.users_per_arm(1.0, 0.10, sequential=True) > 1735


@pytest.mark.parametrize("cv, n", [(0.6, 1500), (1.2, 400), (0.3, 10_000)])
def test_the_mde_has_the_asked_power_by_statsmodels(cv, n):
    """At the MDE, statsmodels' normal power of the standardized effect is 0.8."""
    mde = power.minimum_detectable_effect(cv, n, n, 0.05, 0.8)
    se = cv * math.sqrt((1 + (1 + mde) ** 2) / 2)  # per-user sd of the relative effect's test
    achieved = NormalIndPower().power(effect_size=mde / se, nobs1=n, alpha=0.05, ratio=1.0)
    assert achieved == pytest.approx(0.8, abs=1e-3)
    assert power.users_per_arm(cv, mde) == pytest.approx(n, abs=1)  # the inverse


def test_the_sequential_size_detects_its_mde():
    n = power.users_per_arm(0.8, 0.05, sequential=True, tuning=5000)
    mde = power.minimum_detectable_effect(0.8, n, n, sequential=True, tuning=5000)
    assert mde == pytest.approx(0.05, rel=2e-3)


def test_a_treatment_with_more_variance_needs_more_users():
    # R = 2: (z_0.975 + z_0.8)**2 * (2 + 1.1**2) / 0.1**2
    expected = (1.959964 + 0.841621) ** 2 * (2 + 1.1**2) / 0.1**2
    assert power.users_per_arm(1.0, 0.10, variance_ratio=2.0) == math.ceil(expected)
    equal = power.minimum_detectable_effect(1.0, 1000, 1000)
    assert power.minimum_detectable_effect(1.0, 1000, 1000, variance_ratio=2.0) > equal


def test_the_report_states_each_metrics_mde_with_both_arms_variances():
    rng = np.random.default_rng(10)
    c, t = rng.gamma(2, 1, 900), rng.gamma(2, 1.4, 1100)
    effect = cmp.compare("m", "T1", SampleMean.of(c), SampleMean.of(t))
    cv, ratio = c.std(ddof=1) / c.mean(), t.var(ddof=1) / c.var(ddof=1)
    expected = power.minimum_detectable_effect(cv, 900, 1100, variance_ratio=ratio)
    assert effect.mde_pct == pytest.approx(100 * expected)


# -- guardrails, config, sample ratio -------------------------------------------------------------
def effect_with(lower: float | None, upper: float | None, metric: str) -> cmp.Effect:
    mid = None if lower is None else (lower + upper) / 2
    return cmp.Effect("T1", metric, 100, 100, effect_pct=mid, lower_pct=lower, upper_pct=upper)


@pytest.mark.parametrize(
    "metric, lower, upper, verdict, words",
    [
        ("mean_request_latency", -5.0, 12.0, PASS, "within +20"),
        ("mean_request_latency", 5.0, 30.0, FAIL, "reaches +30.0"),
        ("mean_request_latency", 25.0, 40.0, FAIL, "worse than the margin"),
        ("mean_tracks_per_session", -4.0, 3.0, PASS, "within -5"),
        ("mean_tracks_per_session", -8.0, 3.0, FAIL, "reaches -8.0"),
        ("mean_tracks_per_session", -30.0, -9.0, FAIL, "worse than the margin"),
        ("mean_request_latency", None, None, NO_VERDICT, "no interval"),
    ],
)
def test_guardrail_verdicts(metric, lower, upper, verdict, words):
    margin = 20.0 if metric == "mean_request_latency" else 5.0
    result = check(Guardrail(metric, margin), effect_with(lower, upper, metric))
    assert result.verdict == verdict and words in result.reason
    assert result.passed == {PASS: True, FAIL: False, NO_VERDICT: None}[verdict]


def test_the_repositorys_config_has_weights_decision_and_a_latency_guardrail():
    analysis = load_analysis(REPO_CONFIG, "AB")
    assert analysis.decision == "mean_time_per_session"
    assert analysis.guardrails == (Guardrail("mean_request_latency", 20.0),)
    assert analysis.weights == {arm: 0.2 for arm in ("C", "T1", "T2", "T3", "T4")}


@pytest.mark.parametrize(
    "analysis, message",
    [
        ("decision: nope", "decision metric 'nope'"),
        ("guardrails: [{metric: time}]", "a guardrail is"),
        ("guardrails: [{metric: nope, margin_pct: 5}]", "guardrail metric 'nope'"),
        ("guardrails: [{metric: time, margin_pct: -5}]", "must be positive"),
        ("colour: red", "unknown analysis key"),
    ],
)
def test_a_bad_analysis_block_is_a_clear_error(tmp_path, analysis, message):
    path = tmp_path / "x.yml"
    path.write_text(
        "experiments:\n  - name: AB\n    arms:\n      - {name: C, recommender: random}\n"
        f"    analysis: {{{analysis}}}\n"
    )
    with pytest.raises(ReportError, match=message):
        load_analysis(path, "AB")
    with pytest.raises(ReportError, match="'XY' is not in"):
        load_analysis(REPO_CONFIG, "XY")


def test_the_sample_ratio_check_expects_the_weights():
    users = {"C": 9_050, "T1": 950}
    assert not SampleRatioTest(users, weights={"C": 0.9, "T1": 0.1}).result().mismatch
    assert SampleRatioTest(users).result().mismatch  # against an equal split
    chi2, p = scipy_stats.chisquare([9_050, 950], [9_000, 1_000])
    assert SampleRatioTest(users, weights={"C": 9, "T1": 1}).result().chi2 == pytest.approx(chi2)
    assert SampleRatioTest(users, weights={"C": 9, "T1": 1}).p_value == pytest.approx(p)
    assert SampleRatioTest({"C": 5, "X": 5}, weights={"C": 1.0}).result().mismatch
