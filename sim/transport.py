"""How the simulator's steps reach a Botify service: in-process, over HTTP in batches, or one HTTP
request per step. All three carry the very same steps (`sim.batch`), so they log the same events.

- `InProcess`: the service's own `Service` class with in-memory state (lists from a list file),
  no HTTP: calibration, the report's ceiling, recommender tests. Optionally logs events.
- `HttpBatch`: one `POST /batch/<shard>` per shard of the round's steps (botify.affinity), so
  the balancer keeps each user on one replica. The fast path.
- `HttpPerRequest`: `POST /next/<user>` and `POST /last/<user>` with `X-Botify-Seed`, one at a
  time, as the course's simulator does: latency measurements and course compatibility.

`ServicePolicy` turns a transport into a `sim.batch.Policy`.

Exceptions: `RemoteError` (base) <- `RemoteRequestError` (the service answered 4xx or a step
error: our request was wrong, not retried) and `RemoteUnavailable` (connection failures or 5xx
after the retries).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from botify import affinity
from botify.step import MAX_BATCH_STEPS, SEED_HEADER


class RemoteError(RuntimeError):
    pass


class RemoteRequestError(RemoteError):
    """The service rejected the request (4xx, or an error entry for a step)."""


class RemoteUnavailable(RemoteError):
    """The service could not be reached or kept failing (connection errors, 5xx)."""


class HttpClient:
    """One keep-alive HTTP/1.1 connection through `http.client` (a fraction of the CPU `requests`
    spends per call; bench/bench_remote_client.py). Connection errors and 502/503/504 are retried
    up to `retries` times with exponential backoff on a fresh connection; any other non-200
    answer raises at once."""

    RETRY_STATUS = frozenset({502, 503, 504})

    def __init__(self, url: str, timeout: float = 10.0, retries: int = 5, backoff: float = 0.1):
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
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = self.connection_class(self.host, self.port, timeout=self.timeout)
            self.connection.connect()
            # Small request, small answer: send at once (no Nagle wait for the ACK).
            self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def post(self, path: str, payload: bytes, headers: dict | None = None) -> bytes:
        """POST `payload` (JSON) to `path`; the 200 answer's body."""
        url = f"{self.url}/{path}"
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
                    self.close()
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if last:
                    raise RemoteUnavailable(
                        f"POST {url}: no connection after {self.retries + 1} attempts ({e})"
                    ) from e
            else:
                if status == 200:
                    return raw
                if status not in self.RETRY_STATUS or last:
                    error = RemoteRequestError if status < 500 else RemoteError
                    shown = payload[:200].decode(errors="replace")
                    raise error(f"POST {url} {shown} -> HTTP {status}: {_message(raw)}")
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw).get("message", raw[:200].decode(errors="replace")))
    except (ValueError, AttributeError):
        return raw[:200].decode(errors="replace")


class Steps:
    """One round's steps as columns: message ("next"/"last"), user, track, time, seed."""

    def __init__(self, messages, users, tracks, times, seeds):
        self.messages: Sequence[str] = messages
        self.users: list[int] = users
        self.tracks: list[int] = tracks
        self.times: list[float] = times
        self.seeds: list[int] = seeds

    def __len__(self) -> int:
        return len(self.users)


class Transport:
    def send(self, steps: Steps) -> list[int | None]:
        """The recommended track of every "next" step (None for "last" steps), in order."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional
        pass


class InProcess(Transport):
    """The service's own classes in this process, on in-memory state."""

    def __init__(self, service):
        self.service = service

    def send(self, steps: Steps) -> list[int | None]:
        from botify.step import Step

        batch = [
            Step(m, u, t, x, s)
            for m, u, t, x, s in zip(
                steps.messages, steps.users, steps.tracks, steps.times, steps.seeds, strict=True
            )
        ]
        return [o.recommendation for o in self.service.handle(batch)]

    @classmethod
    def build(
        cls,
        catalog,
        recommender: str | None = None,
        experiments=None,
        lists: dict[str, str | Path] | None = None,
        models: dict[str, str | Path] | None = None,
        log_dir: str | Path | None = None,
        **params,
    ) -> InProcess:
        """A service routing every user to `recommender` (with `params`), or by `experiments`;
        `lists` maps a list set name to a list file, user lists (e.g. {"core": "recs.jsonl"})
        or item-keyed lists (e.g. {"sasrec_i2i": "sasrec_i2i.jsonl"}, told apart by their
        format), `models` to a model's item_embeddings.npz (for session arms)."""
        from botify.event_log import EventLog
        from botify.experiments import Experiments
        from botify.item_lists import MemoryItemLists, list_file_kind
        from botify.online_model import MemoryModels
        from botify.service import Service
        from botify.settings import Settings
        from botify.toplists import read_list_file
        from botify.user_state import MemoryState, memory_lists

        if experiments is None:
            if recommender is None:
                raise ValueError("name a recommender or an experiments config")
            arm = {"name": "C", "recommender": recommender, "params": params}
            experiments = Experiments.from_dict({"experiments": [{"name": "SIM", "arms": [arm]}]})
        kinds = {name: list_file_kind(path) for name, path in (lists or {}).items()}
        state = MemoryState(
            {
                name: memory_lists(read_list_file(path))
                for name, path in (lists or {}).items()
                if kinds[name] == "users"
            }
        )
        item_files = {name: path for name, path in (lists or {}).items() if kinds[name] == "items"}
        events = EventLog(log_dir) if log_dir is not None else None
        service = Service(
            Settings(replica="in-process"),
            catalog,
            experiments,
            state,
            events=events,
            models=MemoryModels.from_files(dict(models or {}), catalog),
            item_lists=MemoryItemLists.from_files(item_files, len(catalog)),
        )
        return cls(service)


class HttpBatch(Transport):
    """`POST /batch/<shard>`: the round's steps grouped by shard, at most `max_steps` a call."""

    def __init__(self, client: HttpClient, max_steps: int = MAX_BATCH_STEPS):
        self.client = client
        self.max_steps = max_steps
        self._encode = msgspec.json.Encoder().encode
        self._decode = msgspec.json.Decoder().decode

    def send(self, steps: Steps) -> list[int | None]:
        out: list[int | None] = [None] * len(steps)
        shards = np.asarray(steps.users, dtype=np.int64) % affinity.SHARDS
        order = np.argsort(shards, kind="stable")
        bounds = np.flatnonzero(np.diff(shards[order])) + 1
        for group in np.split(order, bounds):
            if not group.size:
                continue
            shard = affinity.shard_name(steps.users[int(group[0])])
            for lo in range(0, group.size, self.max_steps):
                part = group[lo : lo + self.max_steps].tolist()
                body = [
                    {"user": steps.users[i], "track": steps.tracks[i], "time": steps.times[i],
                     "seed": steps.seeds[i], "message": steps.messages[i]}
                    for i in part
                ]  # fmt: skip
                answer = self._decode(
                    self.client.post(f"batch/{shard}", self._encode({"steps": body}))
                )
                results = answer.get("results") if isinstance(answer, dict) else None
                if not isinstance(results, list) or len(results) != len(part):
                    raise RemoteError(
                        f"/batch/{shard} answered {len(results or [])} results for {len(part)} steps"
                    )
                for i, result in zip(part, results, strict=True):
                    if "error" in result:
                        raise RemoteRequestError(
                            f"/batch/{shard} step {body[part.index(i)]}: {result['error']}"
                        )
                    out[i] = result.get("track")
        return out

    def close(self) -> None:
        self.client.close()


class HttpPerRequest(Transport):
    """`POST /next/<user>` or `/last/<user>` per step, with the step's seed as `X-Botify-Seed`."""

    def __init__(self, client: HttpClient):
        self.client = client

    def send(self, steps: Steps) -> list[int | None]:
        out: list[int | None] = []
        for m, u, t, x, s in zip(
            steps.messages, steps.users, steps.tracks, steps.times, steps.seeds, strict=True
        ):
            payload = json.dumps({"track": t, "time": x}).encode()
            raw = self.client.post(f"{m}/{u}", payload, {SEED_HEADER: str(s)})
            if m == "last":
                out.append(None)
                continue
            track = json.loads(raw).get("track")
            if not isinstance(track, int):
                raise RemoteError(f"/next/{u} answered without an integer track: {raw[:200]!r}")
            out.append(track)
        return out

    def close(self) -> None:
        self.client.close()


class ServicePolicy:
    """A `sim.batch.Policy` that asks a Botify service through a transport."""

    def __init__(self, transport: Transport):
        self.transport = transport

    def step(self, sim, act: np.ndarray, end: np.ndarray) -> np.ndarray:
        rows = np.concatenate([end, act])
        messages = ["last"] * len(end) + ["next"] * len(act)
        seeds = sim.service_seeds(rows).tolist()
        answers = self.transport.send(
            Steps(messages, sim.user[rows].tolist(), sim.last_track[rows].tolist(),
                  sim.last_time[rows].tolist(), seeds)
        )  # fmt: skip
        return np.asarray(answers[len(end) :], dtype=np.int64)

    def close(self) -> None:
        self.transport.close()


def http_transport(
    url: str, mode: str = "batch", timeout: float = 10.0, retries: int = 5, backoff: float = 0.1
) -> Transport:
    client = HttpClient(url, timeout=timeout, retries=retries, backoff=backoff)
    if mode == "batch":
        return HttpBatch(client)
    if mode == "request":
        return HttpPerRequest(client)
    raise ValueError(f"transport is 'batch' or 'request', not {mode!r}")
