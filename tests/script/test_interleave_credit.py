"""Interleaving's credit and verdict (script.ab.interleave) on hand-made events: exact numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from script.ab.interleave import (
    analyse,
    credit_steps,
    preference,
    session_table,
    unit_preferences,
    units_needed,
)


def events() -> pd.DataFrame:
    rows = [
        # user, timestamp, message, track, time, recommendation, team
        # user 1, session 0: a gets 0.8 and 0.4 (mean 0.6), b 0.2 and 0.6 (mean 0.4): +0.2
        (1, 1, "next", 10, 1.0, 20, "a"),
        (1, 2, "next", 20, 0.8, 21, "b"),
        (1, 3, "next", 21, 0.2, 22, "a"),
        (1, 4, "next", 22, 0.4, 23, "b"),
        (1, 5, "last", 23, 0.6, None, None),
        # user 1, session 1: the "both" step is credited to neither; b 0.1, a 0.3: +0.2
        (1, 6, "next", 30, 1.0, 31, "both"),
        (1, 7, "next", 31, 0.9, 32, "b"),
        (1, 8, "next", 32, 0.1, 33, "a"),
        (1, 9, "last", 33, 0.3, None, None),
        # user 1, unfinished: not counted
        (1, 10, "next", 40, 1.0, 41, "a"),
        (1, 11, "next", 41, 0.5, 42, "b"),
        # user 2, out of order in the file: b gets 0.7, a 0.35: -0.35
        (2, 3, "next", 5, 0.7, 6, "a"),
        (2, 1, "next", 4, 1.0, 5, "b"),
        (2, 4, "last", 6, 0.35, None, None),
        # user 3: the event after a's step reports another track (lost): a not credited; b
        # gets 0.45 but the session has no a step, so it gives no preference
        (3, 1, "next", 7, 1.0, 8, "a"),
        (3, 2, "next", 9, 0.5, 10, "b"),
        (3, 3, "last", 10, 0.45, None, None),
        # user 4: another arm (no team): nothing
        (4, 1, "next", 1, 1.0, 2, None),
        (4, 2, "last", 2, 0.5, None, None),
    ]
    frame = pd.DataFrame(
        rows, columns=["user", "timestamp", "message", "track", "time", "recommendation", "team"]
    )
    frame["recommendation"] = frame["recommendation"].astype("Int64")
    return frame


def test_each_served_track_is_credited_its_listening_time_to_its_side():
    credit = credit_steps(events())
    got = sorted(
        zip(credit["user"], credit["session"], credit["team"], credit["time"], strict=True)
    )
    assert got == [
        (1, 0, "a", 0.4), (1, 0, "a", 0.8), (1, 0, "b", 0.2), (1, 0, "b", 0.6),
        (1, 1, "a", 0.3), (1, 1, "b", 0.1),
        (2, 0, "a", 0.35), (2, 0, "b", 0.7),
        (3, 0, "b", 0.45),
    ]  # fmt: skip


def test_session_and_user_preferences():
    sessions = session_table(credit_steps(events()))
    assert len(sessions) == 4
    one = sessions[(sessions["user"] == 1) & (sessions["session"] == 0)].iloc[0]
    assert (one["a_steps"], one["b_steps"]) == (2, 2)
    assert one["a_mean"] == pytest.approx(0.6) and one["b_mean"] == pytest.approx(0.4)
    np.testing.assert_allclose(unit_preferences(sessions, "session"), [0.2, 0.2, -0.35])
    np.testing.assert_allclose(unit_preferences(sessions, "user"), [0.2, -0.35])


def test_the_verdict_numbers():
    values = np.array([0.2, 0.2, -0.35])
    pref = preference(values, "session")
    reference = stats.ttest_1samp(values, 0.0)
    assert pref.n == 3
    assert pref.mean == pytest.approx(0.05 / 3)
    assert pref.p_value == pytest.approx(reference.pvalue)
    low, high = reference.confidence_interval(0.95)
    assert (pref.lower, pref.upper) == (pytest.approx(low), pytest.approx(high))
    assert (pref.wins, pref.losses, pref.ties) == (2, 1, 0)
    assert pref.win_share == pytest.approx(2 / 3)
    assert pref.win_p_value == pytest.approx(1.0)  # the sign test: 2 of 3
    assert pref.verdict == "none"
    clear = preference(np.array([0.3, 0.25, 0.35, 0.3, 0.28, 0.0]), "session")
    assert clear.verdict == "a" and clear.ties == 1 and clear.win_share == 1.0


def test_units_needed_is_the_normal_power_formula():
    # (z_0.975 + z_0.8)^2 * (sd / mean)^2 = (1.959964 + 0.841621)^2 * 25
    assert units_needed(0.1, 0.5) == pytest.approx(196.2215, abs=1e-3)
    assert units_needed(-0.1, 0.5) == units_needed(0.1, 0.5)
    assert math.isinf(units_needed(0.0, 0.5))


def test_analyse_counts_sides_and_both():
    frame = events()
    result = analyse(frame)
    assert result["sides"]["a"] == {
        "steps": 4,
        "mean_time": pytest.approx((0.4 + 0.8 + 0.3 + 0.35) / 4),
    }
    assert result["sides"]["b"]["steps"] == 5
    assert result["served_steps"] == 13  # every next event with a team, finished or not
    assert result["both_share"] == pytest.approx(1 / 13)
    assert result["preference"]["user"].n == 2


def test_the_command_on_logs_without_an_interleaving_arm_says_so(tmp_path, capsys):
    """Logs of an A/B (written without `team`, as before it existed) export, and the command
    exits 1 with a reason rather than a verdict; a wrong --arm is named."""
    from script import export
    from script.ab.cli import main
    from script.fake_logs import FakeLogSpec, fake_events, write_logs

    paths = write_logs(fake_events(FakeLogSpec(users=50)), tmp_path / "logs", "AB")
    for path in paths:  # lines as they were written before `team` existed
        text = path.read_text()
        assert ',"team":null' in text
        path.write_text(text.replace(',"team":null', ""))
    export.export([tmp_path / "logs"], tmp_path / "data")
    assert main(["interleave", "--data", str(tmp_path / "data")]) == 1
    assert "no credited interleaving step" in capsys.readouterr().err
    assert main(["interleave", "--data", str(tmp_path / "data"), "--experiment", "AB"]) == 1
    assert "name the interleaving arm with --arm" in capsys.readouterr().err
    args = ["interleave", "--data", str(tmp_path / "data"), "--experiment", "AB", "--arm", "X"]
    assert main(args) == 1
    assert "no event logged arm 'X'" in capsys.readouterr().err
