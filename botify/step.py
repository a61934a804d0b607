"""One step of one listening session, as the service handles it: the unit of both API paths.

`POST /next/<user>` is one `Step`; `POST /batch/<shard>` carries many. Every random choice a
recommender makes for a step derives from the step's `seed` (the client's `X-Botify-Seed` or batch
`seed`, else drawn by the worker), so the same steps get the same answers whichever path, replica
or thread serves them.

Two ways to draw: `step.randint(n)`, a counter-based splitmix64 stream (`botify.splitmix`) (a microsecond, no
allocation: the built-in recommenders use it), and `step.rng`, a numpy Generator seeded with the
step's seed, created on first use (for recommenders that want numpy's distributions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from botify.splitmix import GOLDEN, MASK64, mix64

MAX_SEED = 1 << 64
SEED_HEADER = "X-Botify-Seed"  # a per-request step's seed (a batch step carries its own `seed`)
MAX_BATCH_STEPS = 1024  # the default limit of steps in one POST /batch/<shard>


@dataclass(slots=True)
class Step:
    message: str  # "next" (asks for a track) or "last" (the session is over)
    user: int
    track: int  # the track the listener just heard
    time: float  # the fraction of it heard, 0..1
    seed: int  # 0 <= seed < 2**64
    _draws: int = field(default=0, repr=False, compare=False)
    _rng: np.random.Generator | None = field(default=None, repr=False, compare=False)

    def randint(self, n: int) -> int:
        """The next uniform integer in [0, n) of this step's stream."""
        if n <= 0:
            raise ValueError("randint needs n >= 1")
        self._draws += 1
        return mix64((self.seed + self._draws * GOLDEN) & MASK64) % n

    def draw53(self) -> int:
        """The next uniform integer in [0, 2**53) (exact in a Lua or JavaScript number)."""
        self._draws += 1
        return mix64((self.seed + self._draws * GOLDEN) & MASK64) >> 11

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.Generator(np.random.PCG64(self.seed))
        return self._rng
