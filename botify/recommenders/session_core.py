from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from botify.recommenders import base
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.step import Step
from botify.user_state import ClearSession, Failed, Op, PushSession


@register
class SessionCore(Recommender):
    """The next track from the live session: what CORE learned, plus what the catalog says.
    Deterministic given the session (propensity 1; its fallback's when that answers).

    Each /next appends the track just heard (and how much of it) to the user's live session in
    Redis (`botify.user_state.PushSession`, in the one round trip of the request), then scores every
    catalog track:

        core_weight  * cos(session, track)   CORE-ave's session vector over the heard tracks the
                                             model knows, each weighted by the fraction heard
      + genre_weight * share of the session's listening time in the track's genre
      + pop_weight   * popularity ** 0.25    (catalog `pop`)

    times `artist_discount ** plays` of the track's artist in this session (the listener tires of
    an artist), and never serves a track of this session again. CORE's embeddings know the
    user's neighbourhood; genre and popularity carry the session past it, to tracks the model
    never saw (bench/bench_session.py measures each part's worth). The model goes live with its
    list set's version (`botify.online_model`); without one, `fallback` answers and the event says so.
    """

    name = "session_core"
    uses_state = True

    def __init__(
        self,
        ctx: Context,
        lists: str = "core",
        fallback: str = "sticky_artist",
        core_weight: float = 1.0,
        genre_weight: float = 1.0,
        pop_weight: float = 0.5,
        artist_discount: float = 0.5,
    ):
        super().__init__(ctx)
        self.lists = base.list_set_name(self.name, lists)
        self.fallback = base.stateless_fallback(self.name, fallback, ctx)
        if not 0 < artist_discount <= 1:
            raise ValueError(f"{self.name}: artist_discount must be in (0, 1]")
        self.core_weight, self.genre_weight = float(core_weight), float(genre_weight)
        self.artist_discount = float(artist_discount)
        catalog = ctx.catalog
        genres, self.genre_of = np.unique(np.asarray(catalog.genres), return_inverse=True)
        self.n_genres, self.n_artists = len(genres), len(catalog.artist_names)
        self.prior = (float(pop_weight) * np.power(catalog.pop, 0.25)).astype(np.float32)
        self.extra_per_genre = 256

    def list_sets(self) -> set[str]:
        return {self.lists}

    def needs_model(self) -> bool:
        return True

    def ops(self, step: Step) -> Sequence[Op]:
        return (PushSession(step.user, step.track, step.time),)

    def end_ops(self, step: Step) -> Sequence[Op]:
        return (ClearSession(step.user),)

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        session = results[0] if results else None
        models = self.ctx.models
        model = models.get(self.lists) if models is not None else None
        if model is None or session is None or isinstance(session, Failed):
            return base.fell_back(self.fallback, step)
        return Recommendation(self.pick(model, session["track"].astype(np.int64), session["time"]))

    def pick(self, model, heard: np.ndarray, times: np.ndarray) -> int:
        """The best track by the score in the class docstring. Two blocks are scored: the
        tracks the model knows (every term), and, of the tracks it does not know, the most
        popular of each genre heard (only genre and popularity apply to them, so no other
        unknown track can beat those): a few thousand numbers a step, not the whole catalog."""
        known, extra_by_genre = self._derived(model)
        weights = times.astype(np.float32)
        total = float(weights.sum())
        counts = np.bincount(self.genre_of[heard], weights=weights, minlength=self.n_genres)
        share = (self.genre_weight / total if total > 0 else 0.0) * counts.astype(np.float32)

        scores = known["prior"] + share[known["genre"]]
        vector = model.session_vector(heard, weights)
        if vector is not None and self.core_weight:
            scores += self.core_weight * np.maximum(model.unit @ vector, 0.0)
        extra = np.concatenate([extra_by_genre[g] for g in np.flatnonzero(share)] or [heard[:0]])
        extra_scores = self.prior[extra] + share[self.genre_of[extra]]

        artist_of = self.ctx.catalog.artist_of
        plays = np.bincount(artist_of[heard], minlength=self.n_artists)
        heard_artists = np.flatnonzero(plays)
        if self.artist_discount < 1:
            factor = np.ones(self.n_artists, dtype=np.float32)
            factor[heard_artists] = self.artist_discount ** plays[heard_artists]
            scores *= factor[model.artist_of_row]
            extra_scores *= factor[artist_of[extra]]
        rows = model.row_of[heard]
        scores[rows[rows >= 0]] = -np.inf  # never this session's tracks again
        extra_scores[(extra[:, None] == heard[None, :]).any(axis=1)] = -np.inf
        best = int(np.argmax(scores))
        if extra.size:
            other = int(np.argmax(extra_scores))
            if extra_scores[other] > scores[best]:
                return int(extra[other])
        return int(model.tracks[best])

    def _derived(self, model) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Per model, once: the known tracks' prior and genre, and per genre the most popular
        tracks the model does not know (enough to survive any artist discount)."""
        key = (self.name, id(self.prior))
        found = model.derived.get(key)
        if found is None:
            catalog = self.ctx.catalog
            known = {"prior": self.prior[model.tracks], "genre": self.genre_of[model.tracks]}
            unknown = catalog.toppop[model.row_of[catalog.toppop] < 0]
            extra = [unknown[self.genre_of[unknown] == g][: self.extra_per_genre]
                     for g in range(self.n_genres)]  # fmt: skip
            found = model.derived[key] = (known, extra)
        return found
