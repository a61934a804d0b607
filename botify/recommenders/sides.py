"""Arms that hold several recommenders (`interleave`, `mixture`): each side sees the step with its
own draw stream, the sides' ops run in the service's one round trip (deduplicated: two sides may
ask for the same state), and each side answers from its own ops' results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from botify import recommenders
from botify.recommenders.base import Context, Recommendation, Recommender
from botify.splitmix import GOLDEN, MASK64, mix64
from botify.step import Step
from botify.user_state import Op

_SALTS: Final = (0x5EED_A11C_E0A0_0001, 0x5EED_B0B0_0B0B_0002)  # sides 0 and 1 (interleave's a, b)


def side_salt(side: int) -> int:
    return _SALTS[side] if side < len(_SALTS) else (_SALTS[1] + side * GOLDEN) & MASK64


def side_step(step: Step, side: int) -> Step:
    """The step as side `side` sees it: the same step with the side's own seed, so a side makes
    the same draws whichever side serves."""
    seed = mix64((step.seed ^ side_salt(side)) & MASK64)
    return Step(step.message, step.user, step.track, step.time, seed)


def build_side(owner: str, label: str, spec: Any, ctx: Context) -> Recommender:
    """A side from its spec: a mapping with the recommender's `name` and its params."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ValueError(f"{owner}: {label} must be a mapping with the recommender's name")
    params = {k: v for k, v in spec.items() if k != "name"}
    if spec["name"] in ("interleave", "mixture"):
        raise ValueError(f"{owner}: {label} cannot itself hold several recommenders")
    return recommenders.build(spec["name"], ctx, **params)


def plan(sides: Sequence[Recommender], step: Step, end: bool) -> tuple[list[Op], list[list[int]]]:
    """The ops to run, and for each side the positions of its ops' results among them."""
    ops: list[Op] = []
    where: dict[Op, int] = {}
    positions: list[list[int]] = []
    for side, recommender in enumerate(sides):
        sub = side_step(step, side)
        mine = []
        for op in recommender.end_ops(sub) if end else recommender.ops(sub):
            if op not in where:
                where[op] = len(ops)
                ops.append(op)
            mine.append(where[op])
        positions.append(mine)
    return ops, positions


def answers(
    sides: Sequence[Recommender], ctx: Context, step: Step, results: Sequence[Any]
) -> list[tuple[Step, list[Any], Recommendation]]:
    """Each side's (step, results, answer). The sides' ops are planned again here rather than kept
    from `ops`: planning is pure (named tuples and the sides' own draws), and the arm holds no
    per-step memory; each side's draws of `ops` come before its own `recommend`'s."""
    _, positions = plan(sides, step, end=False)
    out = []
    for side, recommender in enumerate(sides):
        sub = side_step(step, side)
        recommender.ops(sub)  # the same draws as in `ops`, before the side's own `recommend`
        mine = [results[i] for i in positions[side]]
        ctx.rng.serve(sub)
        try:
            out.append((sub, mine, recommender.recommend(sub, mine)))
        finally:
            ctx.rng.serve(step)
    return out
