"""Interleaving's verdict from the logs: which of an interleaving arm's two recommenders listeners
prefer (`botify.recommenders.interleave`).

Credit: a `next` event of an interleaving arm logs the served track (`recommendation`) and the
side that picked it (`team`); the user's following event reports that track (`track`) and how
much of it was heard (`time`). That `time` is credited to the side. A step whose following event
does not report the served track (a lost or out-of-order event) is not credited; a step both
sides picked (`team` "both") is credited to neither (team-draft: no preference). As the A/B's
metrics (`measure.metrics`), a user's events are ordered by timestamp, sessions end at a `last`
event, and events after a user's final `last` belong to no finished session and are not counted.

Per session: each side's mean credited time per step. The preference of a unit (a session, or a
user: the mean over the user's sessions) is a's mean minus b's, over the units where both sides
were credited; its mean comes with a t interval and p-value, and the share of units a won
(a's mean above b's; ties left out) with Wilson's interval and the sign test's p-value. Units
needed: the units at which the preference's test has `power` at `alpha` (normal approximation),
from the measured mean and spread: how long this interleaving needs to reach its verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from botify.event_schema import EXPERIMENT_PREFIX
from script.ab.errors import ReportError

SIDES = ("a", "b")


def credit_steps(events: pd.DataFrame) -> pd.DataFrame:
    """One row per credited step of finished sessions: user, session (the user's session index,
    0, 1, ...), team ("a" or "b"), time (the listening time of the served track), track (the
    served track) and, where `events` has it, arm. `events` needs message, timestamp, user, track, time, recommendation
    and team (null on events of other arms)."""
    order = np.lexsort((events["timestamp"].to_numpy(), events["user"].to_numpy()))
    frame = events.iloc[order].reset_index(drop=True)
    users = frame["user"].to_numpy()
    is_last = (frame["message"] == "last").to_numpy()
    same_user_next = np.r_[users[1:] == users[:-1], False]
    # the session of each event: the user's `last` events before it
    new_user = np.r_[True, users[1:] != users[:-1]]
    lasts_before = np.cumsum(is_last) - is_last
    session = lasts_before - np.maximum.accumulate(np.where(new_user, lasts_before, 0))
    # finished: a `last` of the same user at or after the event
    lasts_from_here = np.cumsum(is_last[::-1])[::-1]
    user_end = np.r_[np.flatnonzero(new_user)[1:], len(frame)]
    user_of_row = np.cumsum(new_user) - 1
    finished = lasts_from_here - np.r_[lasts_from_here, 0][user_end][user_of_row] > 0

    following_track = np.r_[frame["track"].to_numpy()[1:], -1]
    following_time = np.r_[frame["time"].to_numpy()[1:], np.nan]
    recommendation = frame["recommendation"].to_numpy(dtype=float, na_value=np.nan)
    team = frame["team"].to_numpy(dtype=object)
    credited = (
        (frame["message"] == "next").to_numpy()
        & frame["team"].isin(SIDES).to_numpy()
        & same_user_next
        & (following_track == recommendation)
        & finished
    )
    out = pd.DataFrame(
        {
            "user": users[credited],
            "session": session[credited],
            "team": team[credited].astype(str),
            "time": following_time[credited],
            "track": frame["recommendation"].to_numpy()[credited].astype(np.int64),
        }
    )
    if "arm" in frame:
        out["arm"] = frame["arm"].to_numpy()[credited]
    return out


def session_table(credit: pd.DataFrame) -> pd.DataFrame:
    """Per (user, session): each side's credited steps and summed time, and its mean per step."""
    grouped = credit.groupby(["user", "session", "team"])["time"].agg(["count", "sum"])
    wide = grouped.unstack("team", fill_value=0)
    table = pd.DataFrame(index=wide.index)
    for side in SIDES:
        steps = wide["count"].get(side, 0)
        total = wide["sum"].get(side, 0.0)
        table[f"{side}_steps"] = steps
        table[f"{side}_time"] = total
        with np.errstate(invalid="ignore", divide="ignore"):
            table[f"{side}_mean"] = table[f"{side}_time"] / table[f"{side}_steps"]
    return table.reset_index()


def unit_preferences(sessions: pd.DataFrame, unit: str) -> np.ndarray:
    """The preference (a's mean time per step minus b's) of each session, or of each user (the
    mean over the user's sessions), counting the sessions where both sides were credited."""
    both = sessions[(sessions["a_steps"] > 0) & (sessions["b_steps"] > 0)]
    diff = (both["a_mean"] - both["b_mean"]).to_numpy(dtype=float)
    if unit == "session":
        return diff
    if unit == "user":
        return pd.Series(diff).groupby(both["user"].to_numpy()).mean().to_numpy()
    raise ValueError(f"unit must be 'session' or 'user', not {unit!r}")


@dataclass(frozen=True)
class Preference:
    """Interleaving's verdict over `n` units (sessions or users)."""

    unit: str
    n: int
    mean: float  # a's mean time per step minus b's, averaged over the units
    lower: float
    upper: float
    p_value: float
    wins: int  # units a won (a's mean above b's)
    losses: int
    ties: int
    win_share: float  # wins / (wins + losses)
    win_lower: float
    win_upper: float
    win_p_value: float  # the sign test
    units_needed: float  # for `power` at `alpha`, from the measured mean and spread
    alpha: float
    power: float

    @property
    def verdict(self) -> str:
        """ "a", "b" or "none": the side preferred at `alpha`, if any."""
        if not self.p_value < self.alpha:
            return "none"
        return "a" if self.mean > 0 else "b"

    def to_dict(self) -> dict:
        return asdict(self) | {"verdict": self.verdict}


def units_needed(mean: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Units at which a two-sided z-test of a mean `mean` with unit spread `sd` has `power`."""
    if mean == 0 or not math.isfinite(mean) or not math.isfinite(sd):
        return math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float((z * sd / mean) ** 2)


def preference(values: np.ndarray, unit: str, alpha: float = 0.05, power: float = 0.8):
    """The verdict from the units' preferences (`unit_preferences`)."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        raise ReportError(
            f"interleaving needs at least 2 {unit}s with both sides credited, got {n}"
        )
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    se = sd / math.sqrt(n)
    if se > 0:
        half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * se
        p_value = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    else:
        half, p_value = 0.0, (1.0 if mean == 0 else 0.0)
    wins, losses = int((values > 0).sum()), int((values < 0).sum())
    decided = wins + losses
    if decided:
        test = stats.binomtest(wins, decided, 0.5)
        ci = test.proportion_ci(1 - alpha, method="wilson")
        win = (wins / decided, float(ci.low), float(ci.high), float(test.pvalue))
    else:
        win = (math.nan, math.nan, math.nan, 1.0)
    return Preference(
        unit, n, mean, mean - half, mean + half, p_value, wins, losses, n - decided, *win,
        units_needed(mean, sd, alpha, power), alpha, power,
    )  # fmt: skip


def load_interleaved(
    data: Path, experiment: str | None = None, arm: str | None = None
) -> pd.DataFrame:
    """The events `credit_steps` needs; with `experiment`, an `arm` column (and, with `arm` too,
    only that arm's steps are credited later)."""
    from script.ab.metrics import _open, known_experiments

    dataset = _open(data)
    names = dataset.schema.names
    if "team" not in names:
        raise ReportError(f"the dataset at {data} has no `team` column: no interleaving arm logged")
    columns = ["message", "timestamp", "user", "track", "time", "recommendation", "team"]
    if experiment is not None:
        if experiment not in known_experiments(data):
            raise ReportError(f"unknown experiment {experiment!r}")
        columns.append(EXPERIMENT_PREFIX + experiment)
    events = dataset.to_table(columns=columns).to_pandas()
    if experiment is not None:
        events = events.rename(columns={EXPERIMENT_PREFIX + experiment: "arm"})
        if arm is not None and not (events["arm"] == arm).any():
            raise ReportError(f"no event logged arm {arm!r} of experiment {experiment!r}")
    return events


def analyse(
    events: pd.DataFrame, arm: str | None = None, alpha: float = 0.05, power: float = 0.8
) -> dict:
    """Per side: credited steps and mean time per step, the share of steps both picked; the
    preference per session and per user."""
    credit = credit_steps(events)
    served = (events["message"] == "next") & events["team"].notna()
    if arm is not None:
        credit = credit[credit["arm"] == arm]
        served &= events["arm"] == arm
    if credit.empty:
        raise ReportError("no credited interleaving step (no `team` logged in finished sessions)")
    sides = {
        side: {"steps": int((credit["team"] == side).sum()),
               "mean_time": float(credit.loc[credit["team"] == side, "time"].mean())}
        for side in SIDES
    }  # fmt: skip
    both = int((events.loc[served, "team"] == "both").sum())
    sessions = session_table(credit)
    return {
        "sides": sides,
        "served_steps": int(served.sum()),
        "both_share": both / max(int(served.sum()), 1),
        "sessions": len(sessions),
        "preference": {
            unit: preference(unit_preferences(sessions, unit), unit, alpha, power)
            for unit in ("session", "user")
        },
    }


def render(result: dict) -> str:
    """The terminal's table."""
    a, b = result["sides"]["a"], result["sides"]["b"]
    lines = [
        f"credited steps: a {a['steps']:,} (mean time {a['mean_time']:.4f}), b {b['steps']:,} "
        f"(mean time {b['mean_time']:.4f}); both sides picked the served track at "
        f"{100 * result['both_share']:.1f} % of {result['served_steps']:,} steps (no credit); "
        f"{result['sessions']:,} finished sessions",
        "",
    ]
    rows = [["unit", "n", "preference a - b (time/step)", "p", "share won by a", "p (sign)",
             "verdict", "units needed (80 % power)"]]  # fmt: skip
    for pref in result["preference"].values():
        level = round(100 * (1 - pref.alpha))
        rows.append([
            pref.unit, f"{pref.n:,}",
            f"{pref.mean:+.4f} [{pref.lower:+.4f}, {pref.upper:+.4f}] ({level} %)",
            f"{pref.p_value:.2g}",
            f"{100 * pref.win_share:.1f} % [{100 * pref.win_lower:.1f}, {100 * pref.win_upper:.1f}]",
            f"{pref.win_p_value:.2g}", pref.verdict,
            "inf" if math.isinf(pref.units_needed) else f"{math.ceil(pref.units_needed):,}",
        ])  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
