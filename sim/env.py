"""`RecEnv`: one simulated listening session per episode, as a gymnasium environment."""

from __future__ import annotations

from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.user_model import Population, UserModelParams, listen_time, session_scores
from sim.world import World


class RecEnv(gym.Env[dict, int]):
    """A listener session of the course simulator.

    ## Description
    `reset` draws a user uniformly, one of the user's interests (the hidden session embedding)
    and a first track among the interest's nearest neighbours; the first track is heard in full.
    Each `step` recommends a track; the listener hears a fraction of it (see `sim.user_model`).

    ## Spaces
    Observation: `{"user": Discrete(M), "track": Discrete(N)}`, the user and the track just
    heard. Action: `Discrete(N)`, the recommended track.

    ## Rewards
    The fraction of the recommended track heard (0..1, two decimals); 0 for a repeat.

    ## Episode End
    Terminated when the session budget reaches 0; truncated after
    `params.max_session_tracks` recommendations (a safety stop the course did not have).

    ## Arguments
    `world` (a `sim.world.World`), `params` (`UserModelParams`: defaults for fields users.json
    does not set). `reset(options={"user": u})` forces the user.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        world: World | Population,
        params: UserModelParams | None = None,
        render_mode: str | None = None,
    ):
        super().__init__()
        self.population = world if isinstance(world, Population) else Population(world, params)
        pop = self.population
        self.action_space: spaces.Discrete = spaces.Discrete(pop.n_tracks)  # type: ignore[assignment]
        self.observation_space = spaces.Dict(
            {"user": spaces.Discrete(pop.n_users), "track": spaces.Discrete(pop.n_tracks)}
        )
        self.render_mode = render_mode
        self.user = -1
        self.anchor = -1  # the interest track whose embedding is the session embedding
        self.budget = 0
        self.played: list[int] = []
        self.times: list[float] = []
        self.artist_plays: Counter[int] = Counter()

    def _obs(self) -> dict[str, int]:
        return {"user": self.user, "track": self.played[-1]}

    def _info(self) -> dict[str, Any]:
        return {"budget": self.budget, "session_tracks": len(self.played) - 1}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        pop, rng = self.population, self.np_random
        if options and "user" in options:
            self.user = int(options["user"])
        else:
            self.user = int(rng.integers(pop.n_users))
        users = np.array([self.user])
        pick = rng.integers(pop.interest_count(users)[0])
        self.anchor = int(pop.interest(users, np.array([pick]))[0])
        neighbours = pop.index.nearest(self.anchor, pop.neighbours[self.user])
        first = int(neighbours[rng.integers(len(neighbours))])
        self.budget = int(pop.budget[self.user])
        self.played, self.times = [first], [1.0]
        self.artist_plays = Counter([int(pop.artist_of[first])])
        return self._obs(), self._info()

    def listen(self, track: int) -> float:
        """The time the current listener gives `track` now (no state change, no randomness)."""
        pop, u = self.population, self.user
        if track in self.played:
            return 0.0
        score = session_scores(pop.embeddings, np.array([track]), np.array([self.anchor]))[0]
        plays = self.artist_plays[int(pop.artist_of[track])]
        return float(listen_time(score, pop.bias[u], pop.sharpness[u], pop.gamma[u], plays))

    def step(self, action):
        if self.user < 0:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not a track id in 0..{self.action_space.n - 1}")
        track = int(action)
        time = self.listen(track)
        if self.np_random.random() > time:
            self.budget -= 1
        self.played.append(track)
        self.times.append(time)
        self.artist_plays[int(self.population.artist_of[track])] += 1
        terminated = self.budget <= 0
        truncated = not terminated and (
            len(self.played) - 1 >= self.population.params.max_session_tracks
        )
        return self._obs(), time, terminated, truncated, self._info()

    def render(self):
        if self.render_mode == "ansi":
            pairs = ", ".join(f"{t}:{x:.2f}" for t, x in zip(self.played, self.times, strict=True))
            return f"user {self.user} budget {self.budget} [{pairs}]"
        return None
