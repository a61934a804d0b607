"""Agents that pick the next track for a `RecEnv` session, one step at a time (the gymnasium way;
`sim.run` steps many sessions at once through `sim.batch` instead, and uses these only for the
console agent).

Protocol (the course's run loop): after `reset` the agent is asked with the first track and
reward 1.0, then with each heard track and its time; when the session is over it is told once
more through `end_session` (the remote agent sends `/last` then).

Remote errors are `sim.transport`'s: `RemoteError` <- `RemoteRequestError`, `RemoteUnavailable`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

import numpy as np
import requests

from botify.step import SEED_HEADER
from sim.env import RecEnv
from sim.oracle import OracleSession
from sim.transport import (
    HttpClient,
    RemoteError,
    RemoteRequestError,
    RemoteUnavailable,
)

__all__ = ["RemoteError", "RemoteRequestError", "RemoteUnavailable"]

AGENTS = ("remote", "dummy", "console", "oracle")


class Agent(ABC):  # noqa: B024
    @abstractmethod
    def recommend(self, observation: dict, reward: float) -> int: ...

    def end_session(self, observation: dict, reward: float) -> None:  # noqa: B027 (optional hook)
        """Called once when the session is over, with the last heard track and its time."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RemoteAgent(Agent):
    """The Botify service over HTTP, one step at a time: `POST /next/<user>` per step,
    `POST /last/<user>` at the end (`sim.transport.HttpClient`: keep-alive, retries).

    With `seed`, every `/next` carries `X-Botify-Seed` drawn from the agent's own generator, so the
    service's random choices are replayed exactly by a run with the same seed.
    """

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.1,
        seed: int | None = None,
    ):
        self.client = HttpClient(url, timeout=timeout, retries=retries, backoff=backoff)
        self.seeds = None if seed is None else np.random.default_rng(seed)

    def _post(self, path: str, observation: dict, reward: float, headers=None) -> dict:
        body = {"track": int(observation["track"]), "time": float(reward)}
        return json.loads(self.client.post(path, json.dumps(body).encode(), headers))

    def recommend(self, observation: dict, reward: float) -> int:
        headers = None
        if self.seeds is not None:
            headers = {SEED_HEADER: str(int(self.seeds.integers(2**63)))}
        answer = self._post(f"next/{int(observation['user'])}", observation, reward, headers)
        track = answer.get("track")
        if not isinstance(track, int):
            raise RemoteError(f"/next answered without an integer track: {answer}")
        return track

    def end_session(self, observation: dict, reward: float) -> None:
        self._post(f"last/{int(observation['user'])}", observation, reward)

    def close(self) -> None:
        self.client.close()


class DummyAgent(Agent):
    """A uniformly random track, drawn from the env's own generator."""

    def __init__(self, env: RecEnv):
        self.env = env

    def recommend(self, observation: dict, reward: float) -> int:
        return int(self.env.np_random.integers(self.env.action_space.n))


class ConsoleAgent(Agent):
    """A person types the track ids; track details come from the service's `GET /track/<id>`."""

    def __init__(self, url: str, input_fn=input, print_fn=print):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self.input, self.print = input_fn, print_fn

    def describe(self, track: int) -> str | None:
        try:
            response = self.http.get(f"{self.url}/track/{track}", timeout=5)
        except requests.ConnectionError:
            return f"track {track}"
        if response.status_code != 200:
            return None
        info = response.json()
        return f"{track} '{info.get('title')}' by '{info.get('artist')}'"

    def recommend(self, observation: dict, reward: float) -> int:
        heard = self.describe(observation["track"]) or observation["track"]
        self.print(f"user {observation['user']} heard {heard} for {reward:.2f}")
        while True:
            text = self.input("next track id: ").strip()
            if text.isdigit() and (info := self.describe(int(text))) is not None:
                self.print(f"recommending {info}")
                return int(text)
            self.print(f"unknown track {text!r}")

    def close(self) -> None:
        self.http.close()


class OracleAgent(Agent):
    """Knows the hidden session: recommends the unplayed track with the highest expected time
    (artist discount included), see `sim.oracle`. A ceiling for comparison."""

    def __init__(self, env: RecEnv):
        self.env = env
        self.session: OracleSession | None = None
        self.seen = 0  # tracks of the env's session already told to `session`

    def recommend(self, observation: dict, reward: float) -> int:
        env = self.env
        if self.session is None or len(env.played) == 1:  # a new session began
            self.session = OracleSession(env.population, env.user, env.anchor, env.played[0])
            self.seen = 1
        for track in env.played[self.seen :]:
            self.session.observe(track)
        self.seen = len(env.played)
        return self.session.choose()

    def end_session(self, observation: dict, reward: float) -> None:
        self.session = None


def make_agent(name: str, env: RecEnv, url: str = "", seed: int | None = None, **remote) -> Agent:
    """`seed` seeds what the agent draws on its own (the remote agent's per-request seeds)."""
    if name == "remote":
        return RemoteAgent(url, seed=seed, **remote)
    if name == "console":
        return ConsoleAgent(url)
    if name == "dummy":
        return DummyAgent(env)
    if name == "oracle":
        return OracleAgent(env)
    raise ValueError(f"unknown agent {name!r}; known: {', '.join(AGENTS)}")


def run_episode(
    env: RecEnv, agent: Agent, seed: int | None = None, user: int | None = None
) -> tuple[float, int]:
    """One session (of `user`, or of a user the env draws): (session time, tracks recommended)."""
    observation, _ = env.reset(seed=seed, options=None if user is None else {"user": user})
    reward, total, steps, done = 1.0, 0.0, 0, False
    while not done:
        action = agent.recommend(observation, reward)
        observation, reward, terminated, truncated, _ = env.step(action)
        total += reward
        steps += 1
        done = terminated or truncated
    agent.end_session(observation, reward)
    return total, steps
