"""The console agent: a person picks the tracks, one live session at a time.

A `sim.batch.Policy` like every other agent (`python -m sim.run ... single --recommender
console` runs it with one live session), so a person listens to the very sessions the other
agents get for the same seed. Track details come from the service's `GET /track/<id>`; the
service is not asked for recommendations.
"""

from __future__ import annotations

import numpy as np
import requests


class ConsolePolicy:
    """Asks for the next track of each live row; prints what the listener just heard."""

    def __init__(self, url: str, input_fn=input, print_fn=print):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.input, self.print = input_fn, print_fn

    def describe(self, track: int) -> str | None:
        """`<id> '<title>' by '<artist>'`, or None for a track the service does not know."""
        try:
            response = self.http.get(f"{self.url}/track/{track}", timeout=5)
        except requests.ConnectionError:
            return f"track {track}"
        if response.status_code != 200:
            return None
        info = response.json()
        return f"{track} '{info.get('title')}' by '{info.get('artist')}'"

    def ask(self, user: int, track: int, time: float) -> int:
        """The track a person picks after `user` heard `track` for `time`."""
        heard = self.describe(track) or track
        self.print(f"user {user} heard {heard} for {time:.2f}")
        while True:
            text = self.input("next track id: ").strip()
            if text.isdigit() and (info := self.describe(int(text))) is not None:
                self.print(f"recommending {info}")
                return int(text)
            self.print(f"unknown track {text!r}")

    def step(self, sim, act: np.ndarray, end: np.ndarray) -> np.ndarray:
        for row in end.tolist():
            self.print(f"user {int(sim.user[row])}: session over after {int(sim.steps[row])} "
                       f"tracks, {float(sim.total[row]):.2f} listened")  # fmt: skip
        picks = [
            self.ask(int(sim.user[row]), int(sim.last_track[row]), float(sim.last_time[row]))
            for row in act.tolist()
        ]
        return np.asarray(picks, dtype=np.int64)

    def close(self) -> None:
        self.http.close()
