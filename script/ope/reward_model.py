"""The direct method's reward model: the listening time of a track served after a track.

A ridge regression (a linear model, fitted in closed form) of the reward on seven features of the
context (the track just heard and how much of it) and the action (the track served), all read
from the logs and the public catalog:

    1, same artist as the track just heard, same genre, the fraction just heard, same artist x
    the fraction just heard, log(1 + times the track was served in the logs), the track's mean
    logged reward shrunk towards the overall mean by `SHRINK` pseudo-plays.

It is cross-fitted, as OBP recommends for DR: the users fall in three groups by a hash, and each
group's predictions come from the track statistics of a second group and the regression fitted on
the third, so no step's own reward (nor its user's) enters its prediction. It knows nothing of the user beyond the context,
so DM is as biased as this model is wrong; DR corrects it by the weighted residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from botify.catalog import Catalog
from botify.splitmix import mix64_array

SHRINK = 20.0  # pseudo-plays at the overall mean in a track's shrunk mean reward
RIDGE = 1e-3
FOLDS = 3
DESCRIPTION = (
    "ridge regression of the listening time on same artist, same genre, the fraction just heard, "
    "their product, log(1 + plays) and the track's shrunk mean time (cross-fitted over 3 groups "
    "of users)"
)


@dataclass(frozen=True)
class TrackStats:
    plays: np.ndarray  # per catalog track: times served (with a linked reward)
    shrunk: np.ndarray  # per catalog track: mean reward shrunk to the overall mean

    @classmethod
    def fit(cls, served: np.ndarray, reward: np.ndarray, n_tracks: int) -> TrackStats:
        plays = np.bincount(served, minlength=n_tracks).astype(np.float64)
        sums = np.bincount(served, weights=reward, minlength=n_tracks)
        overall = float(reward.mean()) if len(reward) else 0.0
        return cls(plays, (sums + SHRINK * overall) / (plays + SHRINK))


def features(
    catalog: Catalog, genre_of: np.ndarray, stats: TrackStats, prev, prev_time, action
) -> np.ndarray:
    same_artist = (catalog.artist_of[prev] == catalog.artist_of[action]).astype(np.float64)
    same_genre = (genre_of[prev] == genre_of[action]).astype(np.float64)
    plays, shrunk = stats.plays[action], stats.shrunk[action]
    return np.column_stack(
        [
            np.ones(len(prev)),
            same_artist,
            same_genre,
            prev_time,
            same_artist * prev_time,
            np.log1p(plays),
            shrunk,
        ]
    )


def cross_fitted(
    catalog: Catalog,
    user: np.ndarray,
    prev: np.ndarray,
    prev_time: np.ndarray,
    logged: np.ndarray,
    reward: np.ndarray,
    candidate: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(q(x, logged action), q(x, candidate action)) for every step. The users fall in three
    groups by a hash; the predictions for group k use the track statistics of group k+1 and the
    regression fitted on group k+2 (with those statistics), so no user's own plays enter the
    model that predicts them, and the statistics are out-of-sample both when fitted and when
    used (in-sample counts would let a user's repeats of a track leak into its features)."""
    _, genre_of = np.unique(np.asarray(catalog.genres), return_inverse=True)
    group = (mix64_array(user.astype(np.uint64)) % np.uint64(FOLDS)).astype(np.int64)
    tiny = len(np.unique(group)) < FOLDS  # too few users: one in-sample fit (tests' inputs)
    q_log = np.empty(len(reward))
    q_cand = np.empty(len(reward))
    n_tracks = len(catalog)
    for k in [0] if tiny else range(FOLDS):
        test = np.ones(len(reward), dtype=bool) if tiny else group == k
        counted = test if tiny else group == (k + 1) % FOLDS
        fitted = test if tiny else group == (k + 2) % FOLDS
        stats = TrackStats.fit(logged[counted], reward[counted], n_tracks)
        x = features(catalog, genre_of, stats, prev[fitted], prev_time[fitted], logged[fitted])
        gram = x.T @ x + RIDGE * len(x) * np.eye(x.shape[1])
        beta = np.linalg.solve(gram, x.T @ reward[fitted])
        for out, action in ((q_log, logged), (q_cand, candidate)):
            out[test] = (
                features(catalog, genre_of, stats, prev[test], prev_time[test], action[test]) @ beta
            )
    return q_log, q_cand  # unclipped: clipping a linear fit at 0 would lift its mean
