"""Team-draft interleaving in the next-track setting: one arm that holds two recommenders.

Interleaving compares two rankers inside one user's traffic: both answer every request, and the
user's own behaviour says which one they prefer (Radlinski et al. 2008; Chapelle et al. 2012).
For lists, team-draft merges the two rankings pick by pick with a coin per round. Here each step
serves one track, so a step is a pick: the arm asks both sides for their track (their ops run in
the service's one round trip with everyone else's) and serves one side's, and the listening time
of that track (the user's next event's `time`) is credited to that side (`script.ab.interleave`).

Team-draft's balance within a session: the session's steps go in pairs (0-1, 2-3, ...); a seeded
coin (the pair's first step's seed) says which side serves the pair's first step, and the other
side serves its second. So after every even step both sides have served equally often. The count
and the pair's opener live in the per-user state (`botify.user_state.TakeTurn`, on both backends,
cleared at /last): a step alone does not say its place in the session, so no stateless rule can
pair steps exactly.

`fallback` is true when either side answered from its fallback (the comparison is then not the
one the arm was meant to make). When both sides pick the same track, the step is credited to
neither (`team` "both"): team-draft gives such a pick no preference. The event's `team` field says
which side picked the served track.

`propensity`: the side of a step is, marginally, a fair coin, so the served track's chance is
the mean of the two sides' chances of it, each from the side's `chance` (exact for the
deterministic sides, Random, TopPop, StickyArtist and contextual). Where a side cannot tell its
chance of a track it did not pick (Indexed, i2i: `tells_chance` False), that chance counts 0, a
lower bound; off-policy estimates from such an arm's logs should take that into account.

Each side draws from its own stream (the step's seed mixed with the side's salt), so a side makes
the same draws whichever side serves, and `ctx.rng` is that side's stream while it answers.

Carry-over: both sides see the session as served, tracks of the other side included (StickyArtist
follows the artist the other side just served; a list arm restarts at the top when the previous
track is not in its list), so a side's credited time inside interleaving is not its time alone.
`bench/bench_interleave.py` measures how much.

Params: `a` and `b`, each a mapping with the recommender's `name` and its params, e.g.
`{name: sorted_indexed, lists: core}` (the defaults: the demo's T1 as a, its control C as b).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from botify.event_schema import Team
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.recommenders.sides import answers, build_side, plan, side_step
from botify.step import Step
from botify.user_state import Op, ResetTurn, TakeTurn, Turn

__all__ = ["Interleave", "side_step"]

SIDES: Final[tuple[Team, Team]] = ("a", "b")
BOTH: Final[Team] = "both"  # the `team` of a step where both sides picked the served track
DEFAULT_A = {"name": "sorted_indexed", "lists": "core"}  # the demo's T1 ...
DEFAULT_B = {"name": "sticky_artist"}  # ... against its control C


@register
class Interleave(Recommender):
    """Serves `a`'s or `b`'s track at each step by team-draft (see the module docstring)."""

    name = "interleave"
    tells_chance = False  # an arm of several recommenders is never a side itself
    uses_state = True  # the session's step count (and so the sides' balance) lives in the state

    def __init__(
        self,
        ctx: Context,
        a: Mapping[str, Any] = DEFAULT_A,
        b: Mapping[str, Any] = DEFAULT_B,
    ):
        super().__init__(ctx)
        self.sides = (build_side(self.name, "a", a, ctx), build_side(self.name, "b", b, ctx))
        self.scope = f"{self.name}:{self.sides[0].name}:{self.sides[1].name}"

    # -- ops: both sides' (`botify.recommenders.sides`) and the turn ---------------------------
    def ops(self, step: Step) -> Sequence[Op]:
        ops, _ = plan(self.sides, step, end=False)
        return (*ops, TakeTurn(self.scope, step.user, step.randint(2)))

    def end_ops(self, step: Step) -> Sequence[Op]:
        ops, _ = plan(self.sides, step, end=True)
        return (*ops, ResetTurn(self.scope, step.user))

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        turn = results[-1]
        if not isinstance(turn, Turn):
            raise TypeError(f"{self.name}: expected the turn as the last result, got {turn!r}")
        sides = answers(self.sides, self.ctx, step, results)
        picks = [pick for _, _, pick in sides]
        track = picks[turn.side].track
        team = BOTH if picks[0].track == picks[1].track else SIDES[turn.side]
        # either side on its fallback: the comparison is not the one the arm meant to make
        fallback = picks[0].fallback or picks[1].fallback
        # the side is a fair coin (marginally, at every step): P(track) = (p_a(track) +
        # p_b(track)) / 2, each side's chance of the served track from `chance`; where a side
        # cannot tell (Indexed), its chance of a track it did not pick counts 0: a lower bound
        propensity = 0.0
        for recommender, (sub, mine, pick) in zip(self.sides, sides, strict=True):
            known = recommender.chance(sub, mine, pick, track)
            if known is None:
                known = pick.propensity if pick.track == track else 0.0
            propensity += 0.5 * known
        return Recommendation(track, fallback, propensity, team=team)

    def on_session_end(self, user: int) -> None:
        for recommender in self.sides:
            recommender.on_session_end(user)

    def list_sets(self) -> set[str]:
        return self.sides[0].list_sets() | self.sides[1].list_sets()

    def needs_model(self) -> bool:
        return any(r.needs_model() for r in self.sides)

    def needs_item_lists(self) -> bool:
        return any(r.needs_item_lists() for r in self.sides)
