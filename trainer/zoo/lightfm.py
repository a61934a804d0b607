"""LightFM-style factorisation in plain torch: the course's week-4 seminar (2025,
`Week4Seminar.ipynb`, `lightfm.LightFM` with WARP) and the 2026 LightFM-I2I
(`NeuralCandgenSeminar.ipynb`, rectools' `LightFMWrapperModel` with BPR and item features).

LightFM itself (1.17, sdist only) does not build on Python 3.11 with today's setuptools (its
setup.py assigns to `__builtins__`, a dict there); it builds only without build isolation and
with setuptools < 60, which a pyproject extra cannot ask for. So this is LightFM's model and
training rules, vectorised:

- a user is the sum of its features' embeddings (identity only), an item the sum of its
  features' embeddings (identity, and optionally its artist and genre), each with a bias;
  score = user . item + biases; embeddings start uniform in +-0.5 / no_components, biases at 0;
- WARP: for a positive (u, i) up to `max_sampled` random items are drawn until one scores above
  score(u, i) - 1; the hinge 1 - s(u, i) + s(u, j) is weighted by log(floor((n - 1) / draws))
  (LightFM's rank estimate); BPR: -log sigmoid(s(u, i) - s(u, j)) for one random j;
- Adagrad (LightFM's default schedule: accumulators start at 1), L2 of `user_alpha` /
  `item_alpha` on the batch's embeddings. LightFM updates one positive at a time (Hogwild); here a
  batch of positives is one step, the loss summed, so each positive moves the model as much.

The 2025 recipe (as the notebook): plays heard for more than 0.7; 30 % of them held out at
random; duplicate (user, track) pairs dropped; users and tracks with at least 5 training
positives; WARP, 30 components, lr 0.01, max_sampled 20, user_alpha 1e-4 (the notebook's optuna
pick, used as is); epochs until precision@10 on the held-out positives stops improving by 1e-6
for 3 epochs (at most 300); item biases set to 0; each user's list: the 30 best tracks by score,
heard ones included.

The 2026 recipe (LightFM-I2I): plays heard for more than 0.7, every one a training positive;
BPR, 64 components, lr 0.05 (LightFM's default), 100 epochs, item features artist and genre
(the catalog's `tracks.json`); each item's neighbours: the 10 most similar items by cosine of
their embeddings (rectools' i2i distance), itself left out, for the 15,000 most played items.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from trainer.zoo.events import read_events
from trainer.zoo.i2i import most_played, neighbours

log = logging.getLogger("trainer")

SETTINGS_2025 = {
    "min_time": 0.7,
    "test_share": 0.3,
    "min_count": 5,
    "loss": "warp",
    "no_components": 30,
    "learning_rate": 0.01,
    "max_sampled": 20,
    "user_alpha": 1e-4,
    "item_alpha": 0.0,
    "epochs": 300,
    "patience": 3,
    "epsilon": 1e-6,
    "at": 10,
    "k": 30,
    "batch_size": 1024,
    "seed": 31337,
}
SETTINGS_2026 = {
    "min_time": 0.7,
    "loss": "bpr",
    "no_components": 64,
    "learning_rate": 0.05,
    "max_sampled": 10,
    "user_alpha": 0.0,
    "item_alpha": 0.0,
    "epochs": 100,
    "k": 10,
    "top_items": 15_000,
    "batch_size": 1024,
    "seed": 42,
}


@dataclass
class Features:
    """Item -> feature rows (CSR): feature 0..n_items-1 is the item itself."""

    offsets: torch.Tensor  # (n_items + 1,)
    index: torch.Tensor  # feature ids
    n_features: int

    @classmethod
    def identity(cls, n_items: int) -> Features:
        return cls(torch.arange(n_items + 1), torch.arange(n_items), n_items)

    @classmethod
    def with_metadata(cls, n_items: int, columns: list[np.ndarray]) -> Features:
        """Identity plus one categorical feature per column (e.g. artist, genre) per item."""
        ids, next_id = [np.arange(n_items)], n_items
        for column in columns:
            _, codes = np.unique(column, return_inverse=True)
            ids.append(codes + next_id)
            next_id += int(codes.max()) + 1 if len(codes) else 0
        index = np.stack(ids, axis=1).reshape(-1)
        offsets = np.arange(0, len(index) + 1, len(ids))
        return cls(torch.from_numpy(offsets), torch.from_numpy(index), next_id)


class LightFMModel(torch.nn.Module):
    def __init__(self, n_users: int, features: Features, dim: int):
        super().__init__()
        self.features = features
        bound = 0.5 / dim
        self.user_embedding = torch.nn.Parameter(torch.empty(n_users, dim).uniform_(-bound, bound))
        self.user_bias = torch.nn.Parameter(torch.zeros(n_users))
        self.feature_embedding = torch.nn.Parameter(
            torch.empty(features.n_features, dim).uniform_(-bound, bound)
        )
        self.feature_bias = torch.nn.Parameter(torch.zeros(features.n_features))

    def items(self, items: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(item vectors, item biases): the sums over each item's features."""
        f = self.features
        if items is None:
            items = torch.arange(len(f.offsets) - 1)
        per = int(f.offsets[1] - f.offsets[0])  # every item has the same number of features
        rows = f.index.view(-1, per)[items]
        return self.feature_embedding[rows].sum(dim=1), self.feature_bias[rows].sum(dim=1)

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vectors, biases = self.items(items.reshape(-1))
        vectors = vectors.view(*items.shape, -1)
        u = (
            self.user_embedding[users].unsqueeze(1)
            if items.dim() == 2
            else self.user_embedding[users]
        )
        dot = (u * vectors).sum(dim=-1)
        ub = self.user_bias[users].unsqueeze(1) if items.dim() == 2 else self.user_bias[users]
        return dot + biases.view(items.shape) + ub


def train_epoch(model: LightFMModel, optimizer, users, items, n_items: int, s: dict, gen) -> float:
    """One pass over the positives (users[i], items[i]) in a random order; the summed loss."""
    total = 0.0
    order = torch.randperm(len(users), generator=gen)
    for batch in order.split(s["batch_size"]):
        u, i = users[batch], items[batch]
        optimizer.zero_grad(set_to_none=True)
        positive = model.score(u, i)
        if s["loss"] == "warp":
            drawn = torch.randint(n_items, (len(u), s["max_sampled"]), generator=gen)
            negative = model.score(u, drawn)
            violated = negative > (positive.detach() - 1.0).unsqueeze(1)
            found = violated.any(dim=1)
            first = violated.float().argmax(dim=1)  # the first violating draw
            draws = (first + 1).float()
            weight = torch.log(torch.clamp(torch.floor((n_items - 1) / draws), min=1.0))
            hinge = 1.0 - positive + negative[torch.arange(len(u)), first]
            loss = (weight * hinge)[found].sum()
        elif s["loss"] == "bpr":
            drawn = torch.randint(n_items, (len(u),), generator=gen)
            loss = -torch.nn.functional.logsigmoid(positive - model.score(u, drawn)).sum()
        else:
            raise ValueError(f"loss is warp or bpr, not {s['loss']!r}")
        if s["user_alpha"]:
            loss = loss + s["user_alpha"] * model.user_embedding[u].pow(2).sum()
        if s["item_alpha"]:
            loss = loss + s["item_alpha"] * model.items(i)[0].pow(2).sum()
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
    return total


def make_optimizer(model: LightFMModel, lr: float):
    return torch.optim.Adagrad(model.parameters(), lr=lr, initial_accumulator_value=1.0)


@torch.no_grad()
def precision_at(model: LightFMModel, train: pd.DataFrame, test: pd.DataFrame, k: int) -> float:
    """LightFM's `precision_at_k` with the training positives excluded, averaged over the users
    with a held-out positive."""
    vectors, biases = model.items()
    users = np.unique(test["u"].to_numpy())
    hits = []
    train_by_user = train.groupby("u")["i"].apply(np.asarray)
    test_by_user = test.groupby("u")["i"].apply(np.asarray)
    for lo in range(0, len(users), 2048):
        chunk = users[lo : lo + 2048]
        scores = model.user_embedding[torch.from_numpy(chunk)] @ vectors.T + biases
        for row, user in enumerate(chunk.tolist()):
            if user in train_by_user.index:
                scores[row, torch.from_numpy(train_by_user[user])] = -math.inf
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices.numpy()
        for row, user in enumerate(chunk.tolist()):
            hits.append(np.isin(top[row], test_by_user[user]).sum() / k)
    return float(np.mean(hits)) if hits else float("nan")


def fit_2025(data, settings: dict | None = None, progress=None) -> tuple[dict, dict]:
    """The week-4 recipe; returns (lists {user: [tracks]}, metrics)."""
    s = {**SETTINGS_2025, **(settings or {})}
    rng = np.random.default_rng(s["seed"])
    events = read_events(data)
    positives = events[events["time"] > s["min_time"]].copy()
    positives["test"] = rng.random(len(positives)) >= 1 - s["test_share"]
    positives = positives.drop_duplicates(["user", "track"])
    train_rows = positives[~positives["test"]]
    user_counts = train_rows.groupby("user").size()
    track_counts = train_rows.groupby("track").size()
    users = np.sort(user_counts.index[user_counts >= s["min_count"]].to_numpy())
    tracks = np.sort(track_counts.index[track_counts >= s["min_count"]].to_numpy())
    kept = positives[positives["user"].isin(users) & positives["track"].isin(tracks)]
    if kept.empty or not len(users) or not len(tracks):
        raise ValueError("lightfm: no user and track has 5 training positives; collect more logs")
    frame = pd.DataFrame({"u": np.searchsorted(users, kept["user"]),
                          "i": np.searchsorted(tracks, kept["track"]), "test": kept["test"]})  # fmt: skip
    train, test = frame[~frame["test"]], frame[frame["test"]]
    torch.manual_seed(s["seed"])
    gen = torch.Generator().manual_seed(s["seed"])
    model = LightFMModel(len(users), Features.identity(len(tracks)), s["no_components"])
    optimizer = make_optimizer(model, s["learning_rate"])
    tu, ti = torch.from_numpy(train["u"].to_numpy()), torch.from_numpy(train["i"].to_numpy())
    history: list[float] = []
    for epoch in range(s["epochs"]):
        train_epoch(model, optimizer, tu, ti, len(tracks), s, gen)
        history.append(precision_at(model, train, test, s["at"]))
        log.info("lightfm epoch %d: precision@%d %.5f", epoch, s["at"], history[-1])
        if progress is not None:
            progress(1)
        p = s["patience"]
        if epoch > p and all(history[-j] - history[-p - 1] < s["epsilon"] for j in range(1, p + 1)):
            break
    with torch.no_grad():
        model.feature_bias.zero_()  # the notebook: model.item_biases *= 0.0
        vectors, _ = model.items()
        scores = model.user_embedding @ vectors.T
        top = torch.topk(scores, min(s["k"], len(tracks)), dim=1).indices.numpy()
    lists = {int(user): tracks[top[row]].tolist() for row, user in enumerate(users.tolist())}
    metrics = {"train_positives": len(train), "test_positives": len(test), "users": len(users),
               "tracks": len(tracks), "epochs_run": len(history),
               f"precision@{s['at']}": round(history[-1], 5),
               f"best_precision@{s['at']}": round(max(history), 5)}  # fmt: skip
    return lists, metrics


def fit_2026(data, catalog=None, settings: dict | None = None, progress=None) -> tuple[dict, dict]:
    """The 2026 LightFM-I2I recipe; `catalog` (botify.catalog.Catalog) gives the artist and
    genre features. Returns (item lists {item: [neighbours]}, metrics)."""
    s = {**SETTINGS_2026, **(settings or {})}
    events = read_events(data)
    positives = events[events["time"] > s["min_time"]]
    if positives.empty:
        raise ValueError("lightfm_i2i: no play heard for more than 0.7; collect more logs")
    users, u = np.unique(positives["user"].to_numpy(), return_inverse=True)
    tracks, i = np.unique(positives["track"].to_numpy(), return_inverse=True)
    if catalog is not None:
        artists = catalog.artist_of[tracks]
        genres = np.asarray(catalog.genres, dtype=object)[tracks].astype(str)
        features = Features.with_metadata(len(tracks), [artists, genres])
    else:
        features = Features.identity(len(tracks))
    torch.manual_seed(s["seed"])
    gen = torch.Generator().manual_seed(s["seed"])
    model = LightFMModel(len(users), features, s["no_components"])
    optimizer = make_optimizer(model, s["learning_rate"])
    tu, ti = torch.from_numpy(u.astype(np.int64)), torch.from_numpy(i.astype(np.int64))
    for epoch in range(s["epochs"]):
        loss = train_epoch(model, optimizer, tu, ti, len(tracks), s, gen)
        log.info("lightfm_i2i epoch %d: loss %.1f", epoch, loss)
        if progress is not None:
            progress(1)
    with torch.no_grad():
        vectors = model.items()[0].numpy()
    targets = most_played(i, len(tracks), s["top_items"])
    lists = dict(neighbours(vectors, tracks, targets, s["k"]))
    metrics = {"positives": len(positives), "users": len(users), "tracks": len(tracks),
               "items_listed": len(lists), "epochs_run": s["epochs"],
               "features": "identity, artist, genre" if catalog is not None else "identity"}  # fmt: skip
    return lists, metrics
