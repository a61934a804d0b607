"""Arm weights and coverage (GrowthBook's ranges over [0, 1)), and today's assignment kept."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from botify.experiments import Arm, Experiment, Experiments, bucket, place

from .conftest import EXPERIMENTS, log_dir, read_events

# config/experiments.yml's arm of users 0..23, printed by the assignment before weights existed
# (`bucket` mod 5): a change here silently reshuffles every running experiment.
PINNED_AB = ["C", "T4", "T1", "T1", "T4", "T3", "C", "T3", "T3", "T1", "T2", "T1",
             "T1", "T4", "C", "T3", "C", "T2", "T2", "T3", "T2", "T2", "C", "T1"]  # fmt: skip


def experiment(weights, coverage: float = 1.0, name: str = "AB") -> Experiment:
    arms = tuple(Arm(f"A{i}", "random", weight=w) for i, w in enumerate(weights))
    return Experiment(name, arms, coverage)


def by_ranges(exp: Experiment, user: int) -> str | None:
    """The arm whose range holds the user's point, found by scanning (no shortcut)."""
    point = place(user, exp.name, len(exp.arms))
    for arm, (start, end) in zip(exp.arms, exp.ranges, strict=True):
        if start <= point < end:
            return arm.name
    return None


def test_todays_config_keeps_todays_assignment():
    config = Experiments.from_file(EXPERIMENTS)
    assert [config.assign(u)["AB"] for u in range(24)] == PINNED_AB
    routing = config.routing
    assert routing.coverage == 1 and set(routing.weights.values()) == {0.2}


@pytest.mark.parametrize("arms", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("weight", [1.0, 3.0, 0.1])
def test_equal_weights_and_full_coverage_are_the_old_modulo(arms, weight):
    exp = experiment([weight] * arms)
    users = range(0, 3_000_000, 97)  # spread over a large id range
    assert all(by_ranges(exp, u) == f"A{bucket(u, 'AB', arms)}" for u in users)
    assert all(exp.arm_of(u).name == f"A{bucket(u, 'AB', arms)}" for u in users[:2000])


@pytest.mark.parametrize("weights, coverage", [([1, 1, 1], 1.0), ([9, 1], 0.7), ([1, 0, 3], 0.5)])
def test_many_users_at_once_is_one_at_a_time(weights, coverage):
    exp = experiment(weights, coverage)
    users = np.arange(0, 200_000, 7)
    one = [-1 if (a := exp.arm_of(int(u))) is None else exp.arms.index(a) for u in users]
    assert exp.arm_indices(users).tolist() == one


def test_the_points_fill_the_unit_interval_uniformly():
    points = np.array([place(u, "AB", 3) for u in range(30_000)]) / (3 * -(-(2**32) // 3))
    assert points.min() >= 0 and points.max() < 1
    assert scipy.stats.kstest(points, "uniform").pvalue > 0.001


def test_weights_give_their_shares():
    exp = experiment([9, 1])
    counts = np.bincount([int(exp.arm_of(u).name[1]) for u in range(40_000)], minlength=2)
    assert scipy.stats.chisquare(counts, [36_000, 4_000]).pvalue > 0.001
    assert exp.weights == {"A0": 0.9, "A1": 0.1}


def test_a_changed_weight_moves_only_the_users_it_must():
    before, after = experiment([1, 1]), experiment([9, 1])
    moved = [(before.arm_of(u).name, after.arm_of(u).name) for u in range(20_000)]
    assert {pair for pair in moved if pair[0] != pair[1]} == {("A1", "A0")}  # only T -> C
    share = sum(a != b for a, b in moved) / len(moved)
    assert share == pytest.approx(0.4, abs=0.02)  # the 40 % between the old and new boundary


def test_coverage_admits_a_share_and_never_moves_a_user_between_arms():
    users = range(30_000)
    narrow, wide, full = (experiment([1, 2, 1], c) for c in (0.3, 0.6, 1.0))
    arms = {c: [e.arm_of(u) for u in users] for c, e in ((0.3, narrow), (0.6, wide), (1, full))}
    for c in (0.3, 0.6):
        inside = [a for a in arms[c] if a is not None]
        assert len(inside) / len(users) == pytest.approx(c, abs=0.015)
        counts = np.bincount([int(a.name[1]) for a in inside], minlength=3)
        assert scipy.stats.chisquare(counts, np.array([1, 2, 1]) / 4 * len(inside)).pvalue > 1e-3
    for small, big in ((0.3, 0.6), (0.6, 1)):  # growing coverage only adds users
        for a, b in zip(arms[small], arms[big], strict=True):
            assert a is None or a == b


def test_a_user_outside_the_coverage_is_served_control_and_logs_no_arm():
    exp = experiment([1, 1], coverage=0.5)
    config = Experiments((exp, experiment([1, 1], name="XY")), "AB")
    outside = next(u for u in range(100) if exp.arm_of(u) is None)
    assert exp.assign(outside).name == "A0"  # the control serves
    assert "AB" not in config.assign(outside) and "XY" in config.assign(outside)
    assert config.default_arm == "A0"


@pytest.mark.parametrize(
    "arms, extra, message",
    [
        ([{"weight": -1}], {}, "weight must be >= 0"),
        ([{"weight": 0}, {"weight": 0}], {}, "every arm has weight 0"),
        ([{"weight": "9"}], {}, "must be a number"),
        ([{}], {"coverage": 0}, "coverage must be in"),
        ([{}], {"coverage": 1.5}, "coverage must be in"),
        ([{}], {"coverage": True}, "must be a number"),
    ],
)
def test_bad_weights_and_coverage_are_rejected(arms, extra, message):
    raw = [{"name": f"A{i}", "recommender": "random", **a} for i, a in enumerate(arms)]
    with pytest.raises(ValueError, match=message):
        Experiments.from_dict({"experiments": [{"name": "AB", "arms": raw, **extra}]})


def test_the_service_logs_only_covered_users(make_app, tmp_path):
    config = tmp_path / "half.yml"
    config.write_text(
        "route: AB\nexperiments:\n  - name: AB\n    coverage: 0.5\n    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
        "      - {name: T1, recommender: random, weight: 3}\n"
    )
    app = make_app(EXPERIMENTS=str(config))
    client = app.test_client()
    users = range(200)
    for user in users:
        answer = client.post(f"/next/{user}", json={"track": 5, "time": 0.5})
        assert answer.status_code == 200, answer.json
    expected = Experiments.from_file(config)
    logged = {e["user"]: e for e in read_events(log_dir(app))}
    assert set(logged) == set(users)
    for user, event in logged.items():
        arm = expected.routing.arm_of(user)
        assert event["experiments"] == ({} if arm is None else {"AB": arm.name})
        if arm is None or arm.name == "C":  # sticky_artist: the previous track's artist
            assert event["recommendation"] // 10 == 0, json.dumps(event)
    assert 0.4 < sum(expected.routing.arm_of(u) is None for u in users) / len(users) < 0.6
