"""GCF, a graph collaborative filter: LightGCN as the course's week-7 seminar trains it (2025,
`Week7Seminar.ipynb`, torch_geometric's `LightGCN`), in plain torch.

As the notebook does it:
1. positives: plays heard for more than 0.8; tracks with at least 5 of them (every user kept;
   repeated user-track pairs stay repeated edges);
2. the user-track graph, undirected; LightGCN (128-d, 4 layers): the final embedding of a node is
   the mean of its layer-0..4 embeddings, each layer the symmetric-normalised sum of the
   neighbours' previous layer (D^-1/2 A D^-1/2, pyg's `gcn_norm` without self-loops);
3. BPR on (user, liked track, a random other track), pyg's `recommendation_loss` (plus 1e-4 x the
   squared norm of the layer-0 table over the batch size), Adam lr 0.01, batches of 3,000 of a
   90 / 10 split of the edges, 10 epochs, the best validation loss kept;
4. each user's list: the 50 tracks with the largest inner product with the user's embedding.

Where ours differs: the notebook draws each negative among node ids below the number of tracks
(`structured_negative_sampling(..., num_nodes=NUM_TRACKS)` on an edge index whose track nodes
start after the users), so its "negative tracks" were mostly user nodes, drawn once for all
epochs (its reload hook is misspelt and never runs); here a negative is a uniformly random track,
drawn afresh each epoch. Both learn from the same positives; the fix makes the ranking loss
compare tracks with tracks.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.zoo.events import read_events

log = logging.getLogger("trainer")

SETTINGS = {
    "min_time": 0.8,
    "min_track_count": 5,
    "dim": 128,
    "layers": 4,
    "lr": 1e-2,
    "batch_size": 3000,
    "epochs": 10,
    "valid_share": 0.1,
    "lambda_reg": 1e-4,
    "k": 50,
    "seed": 31337,
}


class LightGCN(nn.Module):
    """Users are nodes 0..U-1, tracks U..U+T-1 (the notebook's layout)."""

    def __init__(self, n_users: int, n_tracks: int, edges: np.ndarray, dim: int, layers: int):
        super().__init__()
        self.n_users, self.layers = n_users, layers
        n = n_users + n_tracks
        self.embedding = nn.Embedding(n, dim)
        nn.init.xavier_uniform_(self.embedding.weight)  # pyg's LightGCN.reset_parameters
        src = np.concatenate([edges[:, 0], edges[:, 1] + n_users])
        dst = np.concatenate([edges[:, 1] + n_users, edges[:, 0]])
        degree = np.bincount(dst, minlength=n).astype(np.float32)
        inv = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
        values = torch.from_numpy(inv[src] * inv[dst])
        index = torch.from_numpy(np.stack([dst, src]).astype(np.int64))
        # repeated edges sum, as message passing over a repeated edge index does
        self.adjacency = torch.sparse_coo_tensor(
            index, values, (n, n), check_invariants=True
        ).coalesce()

    def propagate(self) -> torch.Tensor:
        x = self.embedding.weight
        total = x
        for _ in range(self.layers):
            x = torch.sparse.mm(self.adjacency, x)
            total = total + x
        return total / (self.layers + 1)

    def loss(self, users, positives, negatives, lambda_reg: float) -> torch.Tensor:
        out = self.propagate()
        u = out[users]
        pos = (u * out[positives + self.n_users]).sum(dim=1)
        neg = (u * out[negatives + self.n_users]).sum(dim=1)
        reg = lambda_reg * self.embedding.weight.pow(2).sum() / len(users)
        return -F.logsigmoid(pos - neg).mean() + reg


def fit(data, settings: dict | None = None, progress=None) -> tuple[dict, dict]:
    """Train on the logs; returns (lists {user: [tracks]}, metrics)."""
    s = {**SETTINGS, **(settings or {})}
    events = read_events(data)
    positives = events[events["time"] > s["min_time"]]
    counts = positives["track"].value_counts()
    positives = positives[positives["track"].isin(counts.index[counts >= s["min_track_count"]])]
    if positives.empty:
        raise ValueError("gcf: no track was liked often enough; collect more logs")
    users, user_ix = np.unique(positives["user"].to_numpy(), return_inverse=True)
    tracks, track_ix = np.unique(positives["track"].to_numpy(), return_inverse=True)
    edges = np.stack([user_ix, track_ix], axis=1).astype(np.int64)
    rng = np.random.default_rng(s["seed"])
    valid = rng.random(len(edges)) < s["valid_share"]
    torch.manual_seed(s["seed"])
    model = LightGCN(len(users), len(tracks), edges, s["dim"], s["layers"])
    optimizer = torch.optim.Adam(model.parameters(), lr=s["lr"])
    train_edges, valid_edges = torch.from_numpy(edges[~valid]), torch.from_numpy(edges[valid])
    shuffle = torch.Generator().manual_seed(s["seed"])
    best, best_loss = None, float("inf")
    for epoch in range(s["epochs"]):
        model.train()
        negatives = torch.randint(len(tracks), (len(train_edges),), generator=shuffle)
        order = torch.randperm(len(train_edges), generator=shuffle)
        for batch in order.split(s["batch_size"]):
            optimizer.zero_grad(set_to_none=True)
            e = train_edges[batch]
            model.loss(e[:, 0], e[:, 1], negatives[batch], s["lambda_reg"]).backward()
            optimizer.step()
        valid_loss = _valid_loss(model, valid_edges, len(tracks), shuffle, s)
        log.info("gcf epoch %d: valid bpr %.4f", epoch, valid_loss)
        if progress is not None:
            progress(1)
        if valid_loss <= best_loss or best is None:
            best, best_loss = copy.deepcopy(model.state_dict()), valid_loss
    assert best is not None
    model.load_state_dict(best)
    metrics = {"interactions": len(edges), "users": len(users), "tracks": len(tracks),
               "epochs_run": s["epochs"], "valid_bpr": round(best_loss, 5)}  # fmt: skip
    lists = dict(top_lists(model, users, tracks, s["k"]))
    return lists, metrics


@torch.no_grad()
def _valid_loss(model: LightGCN, edges, n_tracks: int, shuffle, s: dict) -> float:
    model.eval()
    if not len(edges):
        return float("nan")
    negatives = torch.randint(n_tracks, (len(edges),), generator=shuffle)
    return float(model.loss(edges[:, 0], edges[:, 1], negatives, s["lambda_reg"]))


@torch.no_grad()
def top_lists(
    model: LightGCN, users, tracks, k: int, chunk: int = 2048
) -> Iterator[tuple[int, list[int]]]:
    out = model.propagate()
    user_emb, track_emb = out[: model.n_users], out[model.n_users :]
    k = min(k, len(tracks))
    for lo in range(0, len(users), chunk):
        top = torch.topk(user_emb[lo : lo + chunk] @ track_emb.T, k, dim=1).indices.numpy()
        for row, user in enumerate(users[lo : lo + chunk].tolist()):
            yield int(user), tracks[top[row]].tolist()
