"""Item-to-item lists from item embeddings, as rectools' `recommend_to_items` makes them for the
course's 2026 `sasrec_i2i.jsonl` and `lightfm_i2i.jsonl`: for each of the most played items, the
`k` other items with the highest cosine similarity of their embeddings."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def most_played(item_index: np.ndarray, n_items: int, top: int) -> np.ndarray:
    """The `top` items (internal indices) with the most plays, most played first (ties: lower
    index first)."""
    counts = np.bincount(item_index, minlength=n_items)
    order = np.lexsort((np.arange(n_items), -counts))
    return order[: min(top, n_items)]


def neighbours(
    vectors: np.ndarray, ids: np.ndarray, targets: np.ndarray, k: int, chunk: int = 2048
) -> Iterator[tuple[int, list[int]]]:
    """(item id, its k nearest other item ids by cosine, best first) for each target index."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    k = min(k, len(ids) - 1)
    if k <= 0:
        return
    for lo in range(0, len(targets), chunk):
        rows = targets[lo : lo + chunk]
        scores = unit[rows] @ unit.T
        scores[np.arange(len(rows)), rows] = -np.inf  # filter itself
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for r, row in enumerate(rows.tolist()):
            picked = top[r]
            order = np.lexsort((picked, -scores[r, picked]))
            yield int(ids[row]), ids[picked[order]].tolist()
