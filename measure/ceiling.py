"""The ceiling file's contract: the oracle's and random's user-level means on a simulated day.

`python -m sim.ceiling` writes it with `ceiling_from_sessions`; the A/B report reads it
(`script.ab.ceiling.load_ceiling`) to show each arm between random (0 %) and the oracle (100 %):

    {"sessions": n, "agents": {"oracle": {"mean_time_per_session": x, ...}, "random": {...}},
     "counts": {"oracle": {"sessions": n, "users": u}, ...}}
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from measure.metrics import METRICS, users_from_sessions

REFERENCES = ("random", "oracle")


def ceiling_from_sessions(agents: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]]) -> dict:
    """``{"oracle": (users, times, tracks), "random": (...)}``, one value per session each
    (the session's user, summed listening time, number of tracks) -> the ceiling file's dict."""
    result: dict = {"sessions": 0, "agents": {}, "counts": {}}
    for name, (users, times, tracks) in agents.items():
        per_user = users_from_sessions(users, times, tracks)
        result["agents"][name] = {
            metric: float(per_user[metric].mean()) for metric in METRICS if metric in per_user
        }
        result["counts"][name] = {"sessions": int(np.size(users)), "users": len(per_user)}
    result["sessions"] = min((c["sessions"] for c in result["counts"].values()), default=0)
    return result
