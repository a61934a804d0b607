"""Agents that pick the next track for a `RecEnv` session, one step at a time.

Protocol (the course's run loop): after `reset` the agent is asked with the first track and
reward 1.0, then with each heard track and its time; when the session is over it is told once
more through `end_session` (the remote agent sends `/last` then).

Exceptions: `RemoteError` (base) <- `RemoteRequestError` (the service answered 4xx: our request
was wrong, not retried) and `RemoteUnavailable` (connection failures or 5xx after the retries).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from abc import ABC, abstractmethod

import numpy as np
import requests

from sim.env import RecEnv
from sim.oracle import OracleSession

AGENTS = ("remote", "dummy", "console", "oracle", "random", "sticky_artist", "toppop")
BASELINES = ("random", "sticky_artist", "toppop")  # the service's own classes, in-process


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


class RemoteError(RuntimeError):
    pass


class RemoteRequestError(RemoteError):
    """The service rejected the request (4xx)."""


class RemoteUnavailable(RemoteError):
    """The service could not be reached or kept failing (connection errors, 5xx)."""


class RemoteAgent(Agent):
    """The Botify service over HTTP: `POST /next/<user>` per step, `POST /last/<user>` at the end.

    One keep-alive connection through `http.client` (a fraction of the CPU `requests` spends per
    call, so the client is not the loop's bottleneck; bench/bench_remote_client.py). Connection
    errors and 502/503/504 are retried up to `retries` times with exponential backoff, on a fresh
    connection; any other non-200 answer raises at once.

    With `seed`, every `/next` carries `X-Botify-Seed` drawn from the agent's own generator, so the
    service's random choices are replayed exactly by a run with the same seed.
    """

    RETRY_STATUS = frozenset({502, 503, 504})
    SEED_HEADER = "X-Botify-Seed"

    def __init__(
        self,
        url: str,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.1,
        seed: int | None = None,
    ):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        self.connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self.host, self.port = parts.hostname, parts.port
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.seeds = None if seed is None else np.random.default_rng(seed)
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = self.connection_class(self.host, self.port, timeout=self.timeout)
            self.connection.connect()
            # Small request, small answer: send at once (no Nagle wait for the ACK).
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.connection

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def post(self, path: str, body: dict, headers: dict | None = None) -> dict:
        url = f"{self.url}/{path}"
        payload = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        }
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                connection = self._connect()
                connection.request("POST", f"{self.prefix}/{path}", payload, headers)
                response = connection.getresponse()
                status, raw = response.status, response.read()
                if response.will_close:
                    self._drop_connection()
            except (OSError, http.client.HTTPException) as e:
                self._drop_connection()
                if last:
                    raise RemoteUnavailable(
                        f"POST {url}: no connection after {self.retries + 1} attempts ({e})"
                    ) from e
            else:
                if status == 200:
                    return json.loads(raw)
                if status not in self.RETRY_STATUS or last:
                    error = RemoteRequestError if status < 500 else RemoteError
                    raise error(f"POST {url} {body} -> HTTP {status}: {_message(raw)}")
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def recommend(self, observation: dict, reward: float) -> int:
        headers = None
        if self.seeds is not None:
            headers = {self.SEED_HEADER: str(int(self.seeds.integers(2**63)))}
        answer = self.post(
            f"next/{int(observation['user'])}",
            {"track": int(observation["track"]), "time": float(reward)},
            headers,
        )
        track = answer.get("track")
        if not isinstance(track, int):
            raise RemoteError(f"/next answered without an integer track: {answer}")
        return track

    def end_session(self, observation: dict, reward: float) -> None:
        self.post(
            f"last/{int(observation['user'])}",
            {"track": int(observation["track"]), "time": float(reward)},
        )

    def close(self) -> None:
        self._drop_connection()


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message", raw[:200].decode(errors="replace")))
    except (ValueError, AttributeError):
        return raw[:200].decode(errors="replace")


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


class BaselineAgent(Agent):
    """A service recommender class (`botify.recommenders`) run in-process, on the env's generator."""

    def __init__(self, name: str, env: RecEnv, catalog, **params):
        from botify import recommenders

        self.env = env
        self.ctx = recommenders.Context(catalog=catalog, rng=env.np_random)
        self.recommender = recommenders.build(name, self.ctx, **params)

    def recommend(self, observation: dict, reward: float) -> int:
        self.ctx.rng = self.env.np_random  # reset(seed=...) replaces the env's generator
        return self.recommender.recommend_next(
            int(observation["user"]), int(observation["track"]), float(reward)
        )

    def end_session(self, observation: dict, reward: float) -> None:
        self.recommender.on_session_end(int(observation["user"]))


def catalog_of(world):
    """The service's Catalog built from a world's tracks (what the service loads from tracks.json)."""
    from botify.catalog import Catalog

    return Catalog.from_records(world.track_records())


def make_agent(
    name: str, env: RecEnv, world=None, url: str = "", seed: int | None = None, **remote
) -> Agent:
    """`seed` seeds what the agent draws on its own (the remote agent's per-request seeds)."""
    if name == "remote":
        return RemoteAgent(url, seed=seed, **remote)
    if name == "console":
        return ConsoleAgent(url)
    if name == "dummy":
        return DummyAgent(env)
    if name == "oracle":
        return OracleAgent(env)
    if name in BASELINES:
        if world is None:
            raise ValueError(f"agent {name!r} needs the world's tracks")
        return BaselineAgent(name, env, catalog_of(world))
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
