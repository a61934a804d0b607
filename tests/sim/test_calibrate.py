"""sim.calibrate: the course's targets, counted the course's way, and an exit code that means it."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from sim import calibrate
from sim.batch import SessionResults
from sim.course import RANDOM_LEVEL, TIME, course_effect


def sessions(users: np.ndarray, times: np.ndarray) -> SessionResults:
    """One session per user; `times` counted after the first track, as the simulator counts."""
    n = len(users)
    tracks = np.round(4 + times).astype(np.int64)  # tracks do not matter for these checks
    return SessionResults(users, times, tracks, np.arange(n))


def test_the_course_count_adds_the_first_track_to_time_and_tracks():
    r = SessionResults(np.array([0, 0, 1]), np.array([0.5, 1.5, 2.0]), np.array([5, 7, 6]),
                       np.arange(3))  # fmt: skip
    per_user = calibrate.per_user(r)
    # user 0: sessions of 1.5 and 2.5 (mean 2.0); user 1: 3.0 -> the mean over users is 2.5
    assert per_user[TIME].tolist() == [2.0, 3.0]
    assert per_user["mean_tracks_per_session"].tolist() == [7.0, 7.0]


def test_checks_hold_exactly_where_the_course_says(small_world):
    users = np.arange(2000) % small_world.n_users
    base = np.full(2000, RANDOM_LEVEL[TIME] - 1.0)  # Random's level, first track added later
    sticky = course_effect("sticky_artist", TIME)
    results = {
        "random": sessions(users, base),
        # StickyArtist 10 % above the course's upper bound: must not hold
        "sticky_artist": sessions(users, base + RANDOM_LEVEL[TIME] * (sticky.high + 10) / 100),
        "toppop": sessions(users, base + 0.02 * RANDOM_LEVEL[TIME]),  # +2 %: inside
    }
    found = {c.target: c.holds for c in calibrate.checks(small_world, results)}
    assert found[f"random, {TIME}"] is True
    assert found[f"sticky_artist vs random, {TIME}"] is False
    assert found[f"toppop vs random, {TIME}"] is True
    # a small world cannot have 18,000 distinct interest tracks
    assert found["distinct interest tracks"] is False


def test_the_cli_exits_1_and_says_what_does_not_hold(tmp_path, small_world):
    world_dir = small_world.save(tmp_path / "world")
    result = CliRunner().invoke(
        calibrate.main, ["--world", str(world_dir), "--sessions", "300", "--oracle-sessions", "0"]
    )
    assert result.exit_code == 1
    assert "| distinct interest tracks | 21,021 (ours >= 18,000) |" in result.output
    assert "does not hold:" in result.output and "distinct interest tracks" in result.output
