"""The candidate, replayed on the logged contexts: the service's own classes in-process.

`Candidate` names a registered recommender with its params (an arm of an experiments config, or
a recommender by name) and the list files and models it serves from. `replay` runs it through
`botify.service.Service` on in-memory state (`sim.transport.InProcess`): every logged event of
every user in the user's order, `next` and `last` alike, so the candidate's per-user state
(cursors, the live session, the history) follows what the user really heard; each step gets a
fresh seed, so a stochastic candidate's action is one draw of its policy at that step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from botify import recommenders
from botify.catalog import Catalog
from botify.experiments import Experiments
from botify.item_lists import MemoryItemLists, list_file_kind
from botify.online_model import MemoryModels
from botify.recommenders import Context
from botify.service import Service
from botify.settings import Settings
from botify.splitmix import GOLDEN, mix64_array
from botify.step import Step
from botify.toplists import read_list_file
from botify.user_state import MemoryState, memory_lists
from script.ope.logged import OpeError

MODEL_FILE = "item_embeddings.npz"


@dataclass(frozen=True)
class Candidate:
    """A recommender to estimate, as the service would build it."""

    label: str  # what the table calls it (an arm's name, or the recommender's)
    recommender: str
    params: Mapping[str, Any] = field(default_factory=dict)
    lists: Mapping[str, Path] = field(default_factory=dict)  # list set -> list file
    models: Mapping[str, Path] = field(default_factory=dict)  # list set -> item_embeddings.npz

    @classmethod
    def resolve(
        cls,
        name: str,
        catalog: Catalog,
        config: Path | None = None,
        run: Path | None = None,
        lists: Mapping[str, Path] | None = None,
    ) -> Candidate:
        """`name`: an arm of the experiments `config` (its recommender and params) or a
        registered recommender (default params). The list sets it serves from come from `lists`
        (list set -> file) or the trained `run` folder (`<run>/train/recommendations_<set>.json`,
        its model `<run>/train/model/item_embeddings.npz`)."""
        recommender, params = name, {}
        if config is not None:
            arms = {a.name: a for e in Experiments.from_file(config).experiments for a in e.arms}
            if name in arms:
                recommender, params = arms[name].recommender, dict(arms[name].params)
        try:
            built = recommenders.build(recommender, Context(catalog), **params)
        except KeyError as error:
            where = f" nor an arm of {config}" if config is not None else ""
            raise OpeError(
                f"{name!r} is neither a registered recommender{where}: {error}"
            ) from None
        files = dict(lists or {})
        models = {}
        for list_set in sorted(built.list_sets()):
            if list_set not in files and run is not None:
                found = Path(run) / "train" / f"recommendations_{list_set}.json"
                if found.exists():
                    files[list_set] = found
            if list_set not in files:
                raise OpeError(
                    f"{name} serves list set {list_set!r}: give --lists {list_set}=FILE or --run "
                    "with a trained run (train/recommendations_<set>.json)"
                )
            if built.needs_model():
                model = Path(run) / "train" / "model" / MODEL_FILE if run is not None else None
                if model is None or not model.exists():
                    raise OpeError(f"{name} needs the model of list set {list_set!r}: give --run")
                models[list_set] = model
        return cls(name, recommender, params, files, models)


def in_memory_service(candidate: Candidate, catalog: Catalog) -> Service:
    """The service's own class routing every user to the candidate, on in-memory state: its
    user lists, item lists and models from the candidate's files (as `sim.transport.InProcess`
    builds it), no event log."""
    kinds = {name: list_file_kind(path) for name, path in candidate.lists.items()}
    state = MemoryState(
        {
            name: memory_lists(read_list_file(path))
            for name, path in candidate.lists.items()
            if kinds[name] == "users"
        }
    )
    arm = {"name": candidate.label, "recommender": candidate.recommender,
           "params": dict(candidate.params)}  # fmt: skip
    items = {name: path for name, path in candidate.lists.items() if kinds[name] == "items"}
    return Service(
        Settings(replica="ope"),
        catalog,
        Experiments.from_dict({"experiments": [{"name": "OPE", "arms": [arm]}]}),
        state,
        models=MemoryModels.from_files(dict(candidate.models), catalog),
        item_lists=MemoryItemLists.from_files(items, len(catalog)),
    )


def step_seeds(seed: int, rows: np.ndarray) -> np.ndarray:
    """A fresh 64-bit seed per logged row, from the estimate's seed (splitmix64)."""
    base = np.uint64(mix64_array(np.array([seed], dtype=np.uint64))[0])
    with np.errstate(over="ignore"):
        return mix64_array(rows.astype(np.uint64) * np.uint64(GOLDEN) + base)


def replay(
    candidate: Candidate, catalog: Catalog, events: pd.DataFrame, seed: int = 0, progress=True
) -> np.ndarray:
    """The candidate's track for every event (-1 for `last` events), `events` in each user's
    order. The steps go to the service in rounds, the k-th event of every user in round k: one
    step per user a call, as the API requires, each user's events in order."""
    service = in_memory_service(candidate, catalog)
    n = len(events)
    user = events["user"].to_numpy()
    starts = np.r_[True, user[1:] != user[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.arange(n) - first
    order = np.lexsort((np.arange(n), rank))  # round by round, users in order
    bounds = np.flatnonzero(np.diff(rank[order])) + 1
    messages = events["message"].to_numpy()
    tracks = events["track"].to_numpy()
    times = events["time"].to_numpy(dtype=np.float64)
    seeds = step_seeds(seed, np.arange(n))
    actions = np.full(n, -1, dtype=np.int64)
    bar = tqdm(total=n, desc=f"replay {candidate.label}", unit="step", disable=not progress)
    for rows in np.split(order, bounds):
        steps = [
            Step(str(messages[i]), int(user[i]), int(tracks[i]), float(times[i]), int(seeds[i]))
            for i in rows.tolist()
        ]
        for i, outcome in zip(rows.tolist(), service.serve(steps), strict=True):
            if outcome.recommendation is not None:
                actions[i] = outcome.recommendation
        bar.update(len(rows))
    bar.close()
    return actions
