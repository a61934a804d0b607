"""User-based collaborative filtering, the course's week-3 seminar (2025, `Week3Seminar.ipynb`).

As the notebook does it:
1. every play (`next` and `last`) counts; its time is centred on the user's mean time;
2. the user x track matrix holds the mean centred time of each pair (0 where the user never
   played the track, which is also "the user's mean");
3. users are compared by cosine similarity of their rows, a user with itself set to 0;
4. a track's score for a user is the similarity-weighted sum of the other users' centred times,
   and the top 100 tracks by score are the user's list, for every user in the data.

Like the course it keeps tracks the user already heard and fills a short list with tracks of
score 0 or below (the notebook's top 100 of a full sorted row). Ties are broken by track id here
(pandas' unstable sort in the notebook leaves them in no defined order).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import sparse

from trainer.zoo.events import catalogue_ids, read_events


def centred_matrix(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
    """(users, tracks, users x tracks CSR of the mean centred time per pair)."""
    centred = events["time"] - events.groupby("user")["time"].transform("mean")
    pairs = (
        pd.DataFrame({"user": events["user"], "track": events["track"], "value": centred})
        .groupby(["user", "track"], sort=True)["value"]
        .mean()
        .reset_index()
    )
    users, rows = catalogue_ids(pairs["user"].to_numpy())
    tracks, cols = catalogue_ids(pairs["track"].to_numpy())
    matrix = sparse.csr_matrix(
        (pairs["value"].to_numpy(np.float64), (rows, cols)), shape=(len(users), len(tracks))
    )
    matrix.eliminate_zeros()  # a pair at exactly the user's mean is the same as no pair
    return users, tracks, matrix


def recommend(
    data, k: int = 100, chunk: int = 512, progress=None
) -> Iterator[tuple[int, list[int]]]:
    """(user, top-k tracks, best first) for every user with a play."""
    users, tracks, matrix = centred_matrix(read_events(data))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1))).ravel()
    unit = sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ matrix
    unit_t = unit.T.tocsr()
    matrix_t = matrix.T.tocsr()
    k = min(k, len(tracks))
    for lo in range(0, len(users), chunk):
        hi = min(lo + chunk, len(users))
        similarity = (unit[lo:hi] @ unit_t).toarray()  # cosine: (chunk, users)
        similarity[np.arange(hi - lo), np.arange(lo, hi)] = 0.0  # not oneself
        scores = (matrix_t @ similarity.T).T  # (chunk, tracks)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for row in range(hi - lo):
            picked = top[row]
            order = np.lexsort((picked, -scores[row, picked]))
            yield int(users[lo + row]), tracks[picked[order]].tolist()
        if progress is not None:
            progress(hi - lo)
