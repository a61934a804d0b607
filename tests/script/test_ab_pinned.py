"""The report's numbers, pinned from fixed inputs before the report was split into modules.

Every value below was printed by the single-file `script/ab.py` (statsmodels' Welch interval and
t-test, statsmodels' Holm, scipy's chi-square) on the inputs built here. The split into summary
statistics (n, sum, sum of squares) must reproduce them; rel 1e-9 leaves room only for the
rounding of the sums. The % bounds pinned were the difference's interval divided by the control
mean; the report's % interval is Fieller's now, so they are checked as the difference's interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from script import ab
from script.fake_logs import FakeLogSpec, fake_events

REL = 1e-9


def fixed_metrics() -> pd.DataFrame:
    """User metrics of three arms drawn from one seeded generator (no event log involved)."""
    rng = np.random.default_rng(2024)
    rows = []
    for arm, n, scale in (("C", 40, 1.0), ("T1", 35, 1.5), ("T2", 45, 0.9)):
        for _ in range(n):
            sessions = int(rng.integers(1, 5))
            tracks = rng.poisson(7, sessions) + 1
            times = rng.uniform(0, 1, tracks.sum()) * scale / 1.5
            rows.append(
                {
                    "user": len(rows),
                    "arm": arm,
                    "time": times.sum(),
                    "sessions": sessions,
                    "mean_request_latency": rng.exponential(0.5),
                    "mean_tracks_per_session": tracks.mean(),
                    "mean_time_per_session": times.sum() / sessions,
                }
            )
    return pd.DataFrame(rows)


# (arm, metric, control mean, treatment mean, effect %, lower %, upper %, p, p Holm, sig, sig Holm)
PINNED_FIXED = [
    ("T1", "time", 6.710164609921469, 9.345966749319786, 39.28073739802286, 8.903153284963276, 69.65832151108238, 0.01216504603969431, 0.10948541435724879, True, False),
    ("T1", "sessions", 2.45, 2.2857142857142856, -6.705539358600595, -27.29207456286615, 13.88099584566496, 0.5181556058749722, 1.0, False, False),
    ("T1", "mean_request_latency", 0.4224396069545322, 0.586408253916332, 38.81469546472899, -14.656757318812533, 92.28614824827048, 0.1512497282238411, 1.0, False, False),
    ("T1", "mean_tracks_per_session", 7.966666666666666, 7.992857142857143, 0.328750747160799, -10.32093983282624, 10.978441327147815, 0.9511095369807065, 1.0, False, False),
    ("T1", "mean_time_per_session", 2.7211224347737355, 4.017505370131009, 47.64147760462934, 33.49707456928825, 61.78588063997045, 5.410870190519045e-09, 5.410870190519045e-08, True, True),
    ("T2", "time", 6.710164609921469, 5.955915786418778, -11.24039226083185, -31.127599142121444, 8.646814620457743, 0.2636720583474211, 1.0, False, False),
    ("T2", "sessions", 2.45, 2.533333333333333, 3.401360544217675, -14.987318841508356, 21.790039929943703, 0.7137495629906201, 1.0, False, False),
    ("T2", "mean_request_latency", 0.4224396069545322, 0.4665068791610532, 10.431614716293408, -26.352808872455284, 47.21603830504207, 0.5742414641809644, 1.0, False, False),
    ("T2", "mean_tracks_per_session", 7.966666666666666, 8.114814814814814, 1.859600185960016, -7.983363935260723, 11.702564307180733, 0.7078432260957963, 1.0, False, False),
    ("T2", "mean_time_per_session", 2.7211224347737355, 2.388092804005438, -12.238686011053714, -22.937531091608914, -1.5398409304984813, 0.025512103430595224, 0.2040968274447618, True, False),
]  # fmt: skip

# fake_events(users=400, arms C/T1/T2, T1 x1.3, seed 7) -> user_metrics -> compare_all at alpha 0.1
# (arm, metric, effect %, lower %, upper %, p, p Holm)
PINNED_EVENTS = [
    ("T1", "time", 28.00968669926647, 16.64004451747855, 39.37932888105439, 6.328272017294451e-05, 0.0005695444815565006),
    ("T1", "sessions", 0.2518346548094643, -8.925818550827689, 9.429487860446619, 0.9639069637696777, 1.0),
    ("T1", "mean_request_latency", -0.9128592276378944, -5.878336822695, 4.052618367419169, 0.7617802135701685, 1.0),
    ("T1", "mean_tracks_per_session", -1.0523520996318243, -5.267865971522269, 3.163161772258665, 0.680618472977904, 1.0),
    ("T1", "mean_time_per_session", 29.372425564504272, 23.75167201901314, 34.9931791099954, 6.730049200518866e-16, 6.730049200518866e-15),
    ("T2", "time", 7.491917425837951, -2.86652647710202, 17.85036132877792, 0.23359839950951852, 1.0),
    ("T2", "sessions", 7.945447962344623, -1.315909532023552, 17.206805456712797, 0.15791766866067608, 1.0),
    ("T2", "mean_request_latency", -4.779991546413249, -9.453847755708829, -0.10613533711771127, 0.09256796789952276, 0.7405437431961821),
    ("T2", "mean_tracks_per_session", 0.36156254621163036, -3.921836069298725, 4.6449611617219855, 0.8892901684926562, 1.0),
    ("T2", "mean_time_per_session", -0.915557770577123, -6.092317527479237, 4.261201986325034, 0.770560488011809, 1.0),
]  # fmt: skip

# The table as rendered now: the single-file report's numbers, except the CI % column (Fieller's
# interval of the ratio since the report's CUPED/sequential rework; the difference's interval is
# still pinned above) and the new MDE column (both arms' variances).
PINNED_MARKDOWN = """\
| arm | metric | control | treatment | effect % | CI % | p | sig | p Holm | sig Holm | MDE % |
|---|---|---|---|---|---|---|---|---|---|---|
| T1 | time | 6.710 | 9.346 | +39.28 | [+8.18, +77.83] | 0.0122 | yes | 0.1095 | no | 49.4 |
| T1 | sessions | 2.450 | 2.286 | -6.71 | [-25.10, +15.39] | 0.5182 | no | 1.0000 | no | 33.8 |
| T1 | mean_request_latency | 0.422 | 0.586 | +38.81 | [-13.19, +109.42] | 0.1512 | no | 1.0000 | no | 94.9 |
| T1 | mean_tracks_per_session | 7.967 | 7.993 | +0.33 | [-9.80, +11.63] | 0.9511 | no | 1.0000 | no | 16.3 |
| T1 | mean_time_per_session | 2.721 | 4.018 | +47.64 | [+31.77, +65.62] | 0.0000 | yes | 0.0000 | yes | 21.4 |"""


def diff_bounds(control_mean: float, lower_pct: float, upper_pct: float) -> tuple[float, float]:
    """The pinned % bounds were the difference's interval in % of the control mean: back to it."""
    return lower_pct * control_mean / 100, upper_pct * control_mean / 100


def test_effects_on_fixed_user_metrics_are_pinned():
    effects = ab.compare_all(fixed_metrics(), "C", 0.05)
    got = [
        (e.arm, e.metric, e.control_mean, e.treatment_mean, e.effect_pct)
        + (e.diff_lower, e.diff_upper, e.p_value, e.p_holm, e.significant, e.significant_holm)
        for e in effects
    ]
    assert [g[:2] for g in got] == [p[:2] for p in PINNED_FIXED]
    for g, p in zip(got, PINNED_FIXED, strict=True):
        want = (*p[2:5], *diff_bounds(p[2], p[5], p[6]), *p[7:9])
        assert g[2:9] == pytest.approx(want, rel=REL, abs=1e-300), g[:2]
        assert g[9:] == p[9:], g[:2]
    assert all(e.status == "ok" for e in effects)
    # the % interval is Fieller's now: it contains the estimate and agrees with the test
    for e in effects:
        assert e.lower_pct < e.effect_pct < e.upper_pct
        assert (e.lower_pct > 0 or e.upper_pct < 0) == e.significant


def test_effects_from_synthetic_events_are_pinned():
    events = fake_events(
        FakeLogSpec(users=400, arms=("C", "T1", "T2"), effects={"T1": 1.3}, seed=7)
    )
    assert len(events) == 9481
    effects = ab.compare_all(ab.user_metrics(events), "C", 0.1)
    got = [
        (e.arm, e.metric, e.effect_pct, e.diff_lower, e.diff_upper, e.p_value, e.p_holm)
        for e in effects
    ]
    assert [g[:2] for g in got] == [p[:2] for p in PINNED_EVENTS]
    for g, p, e in zip(got, PINNED_EVENTS, effects, strict=True):
        want = (p[2], *diff_bounds(e.control_mean, p[3], p[4]), *p[5:])
        assert g[2:] == pytest.approx(want, rel=REL), g[:2]
    srm = ab.sample_ratio(events)
    assert srm.users == {"C": 129, "T1": 137, "T2": 134}
    assert (srm.chi2, srm.p_value) == pytest.approx((0.245, 0.8847059049434836), rel=REL)
    assert srm.mismatch is False


def test_rendered_table_is_pinned():
    effects = ab.compare_all(fixed_metrics(), "C", 0.05)[:5]
    assert ab.markdown_table(ab.render_table(effects)) == PINNED_MARKDOWN
