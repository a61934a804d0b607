"""Arm assignment: deterministic, salted per experiment, uniform; config validation."""

from __future__ import annotations

import mmh3
import numpy as np
import pytest
import scipy.stats

from botify.experiments import Experiments, bucket

from .conftest import EXPERIMENTS


def two_experiments(arms_a: int = 4, arms_b: int = 4) -> Experiments:
    return Experiments.from_dict(
        {
            "route": "AB",
            "experiments": [
                {
                    "name": "AB",
                    "arms": [{"name": f"A{i}", "recommender": "random"} for i in range(arms_a)],
                },
                {
                    "name": "XY",
                    "arms": [{"name": f"X{i}", "recommender": "random"} for i in range(arms_b)],
                },
            ],
        }
    )


def test_bucket_is_the_documented_unsigned_murmur3():
    for user in (0, 1, 12345, 2**32 - 1):
        salt = mmh3.hash("AB", signed=False)
        assert bucket(user, "AB", 4) == mmh3.hash(str(user), seed=salt, signed=False) % 4
    # Pinned values: a change here silently reshuffles every running experiment.
    assert [bucket(u, "AB", 4) for u in range(12)] == [3, 3, 2, 1, 2, 0, 0, 0, 0, 0, 3, 0]
    assert bucket(2**32 - 1, "AB", 4) == 1


def test_seed_config_arms_in_bucket_order():
    config = Experiments.from_file(EXPERIMENTS)
    assert config.route == "AB"
    assert [(a.name, a.recommender) for a in config.routing.arms] == [
        ("C", "sticky_artist"),
        ("T1", "sorted_indexed"),
        ("T2", "cooler_indexed"),
        ("T3", "indexed"),
        ("T4", "session_core"),
    ]


def test_assignment_is_deterministic():
    a, b = two_experiments(), two_experiments()
    assert [a.assign(u) for u in range(1000)] == [b.assign(u) for u in range(1000)]


def test_assignment_is_salted_per_experiment():
    config = two_experiments()
    users = np.arange(20_000)
    ab = np.array([bucket(u, "AB", 4) for u in users])
    xy = np.array([bucket(u, "XY", 4) for u in users])
    assert (ab == xy).mean() == pytest.approx(0.25, abs=0.02)  # independent, not equal
    # Independence: the 4x4 contingency table passes a chi-square test.
    table = np.zeros((4, 4))
    np.add.at(table, (ab, xy), 1)
    assert scipy.stats.chi2_contingency(table).pvalue > 0.001
    assert config.assign(3) == {"AB": f"A{ab[3]}", "XY": f"X{xy[3]}"}


@pytest.mark.parametrize("arms", [2, 3, 4, 5])
def test_assignment_is_uniform(arms):
    counts = np.bincount([bucket(u, "AB", arms) for u in range(20_000)], minlength=arms)
    assert scipy.stats.chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "experiments"),
        ({"experiments": [{"name": "AB", "arms": []}]}, "no arms"),
        (
            {"experiments": [{"name": "a b", "arms": [{"name": "C", "recommender": "x"}]}]},
            "bad experiment name",
        ),
        (
            {
                "route": "NO",
                "experiments": [{"name": "AB", "arms": [{"name": "C", "recommender": "x"}]}],
            },
            "route",
        ),
        (
            {"experiments": [{"name": "AB", "arms": [{"name": "C", "recommender": "x"}] * 2}]},
            "duplicate arm",
        ),
    ],
)
def test_bad_config_is_rejected(data, message):
    with pytest.raises(ValueError, match=message):
        Experiments.from_dict(data)


def test_unknown_recommender_fails_at_start(make_app, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("experiments:\n  - name: AB\n    arms:\n      - {name: C, recommender: nope}\n")
    with pytest.raises(KeyError, match="unknown recommender 'nope'"):
        make_app(EXPERIMENTS=str(bad))
