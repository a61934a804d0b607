"""What one replica serves: catalog, experiments, recommenders, per-user state and the event log.

`Service.handle(steps)` is the one code path of both APIs: `POST /next|/last/<user>` hands it one
step, `POST /batch/<shard>` many. For the steps of one call it assigns arms, collects the routed
recommenders' state ops and runs them in one backend call (one Redis round trip), lets each
recommender answer, and writes every step's event line in one write before returning.

`Service` holds no per-user state (that lives in Redis), so replicas are interchangeable. Redis
faults never become 5xx: while the Redis link's breaker is open, or when Redis fails mid-call, a step
whose recommender needs state is answered by the catalog-only fallback recommender, and its event
carries `"fallback": true`. The same class runs in-process (the simulator) with `MemoryState`
and no event log. Its limits, fallback and replica name come from `botify.settings.Settings`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from botify import recommenders
from botify.catalog import Catalog
from botify.event_log import EventLog
from botify.event_schema import Event, Team
from botify.experiments import Experiments
from botify.item_lists import ItemListSource
from botify.online_model import ModelSource
from botify.recommenders import Context, Recommendation, Recommender
from botify.recommenders.base import fell_back
from botify.redis_link import RedisLink
from botify.settings import Settings
from botify.step import MAX_SEED, Step
from botify.user_state import Failed, RedisState, StateBackend

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    recommendation: int | None  # None for a /last step
    fallback: bool
    arms: dict[str, str]
    latency: float  # seconds the service spent on this step (its share of shared work)
    propensity: float | None = None  # P(recommendation | what the arm knew); None for /last
    team: Team | None = None  # an interleaving arm's side that picked the track (Recommendation)


class Service:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        experiments: Experiments,
        state: StateBackend,
        events: EventLog | None = None,
        redis_link: RedisLink | None = None,
        catalog_fingerprint: Mapping[str, str | int] | None = None,
        models: ModelSource | None = None,
        item_lists: ItemListSource | None = None,
    ):
        self.catalog = catalog
        self.experiments = experiments
        self.route = experiments.route
        self.state = state
        self.events = events
        self.redis_link = redis_link
        self.settings = settings
        self.replica = settings.replica
        self.max_user = settings.max_user
        self.max_body = settings.max_body_bytes
        self.max_batch_steps = settings.max_batch_steps
        self.max_batch_bytes = settings.max_batch_bytes
        self.catalog_fingerprint = dict(catalog_fingerprint or {})
        self.ctx = Context(catalog=catalog, models=models, item_lists=item_lists)
        self.recommenders: dict[str, Recommender] = {
            arm.name: recommenders.build(arm.recommender, self.ctx, **arm.params)
            for arm in experiments.routing.arms
        }
        for exp in experiments.experiments:  # arms of non-routing experiments must name real ones
            for arm in exp.arms:
                recommenders.get(arm.recommender)
        fallback = settings.fallback
        self.fallback = recommenders.build(fallback, self.ctx)
        if self.fallback.uses_state:
            raise ValueError(f"fallback {fallback!r} must not need per-user state")
        # Steps without a client seed draw theirs from the OS: fresh in every forked worker.
        self._entropy = os.urandom
        if redis_link is not None:
            redis_link.on_recovery.append(self._on_redis_recovery)

    def list_sets(self) -> set[str]:
        """List sets the routing arms serve from (readiness checks they are live)."""
        return set().union(*(r.list_sets() for r in self.recommenders.values()))

    def model_sets(self) -> set[str]:
        """List sets whose online model a routing arm needs (readiness checks it loads)."""
        return set().union(*(r.list_sets() for r in self.recommenders.values() if r.needs_model()))

    def item_list_sets(self) -> set[str]:
        """List sets whose item-keyed lists a routing arm needs (readiness checks they load)."""
        return set().union(
            *(r.list_sets() for r in self.recommenders.values() if r.needs_item_lists())
        )

    def new_seed(self) -> int:
        return int.from_bytes(self._entropy(8), "little") % MAX_SEED

    # -- requests ------------------------------------------------------------------------------
    def handle(self, steps: Sequence[Step], spent: Sequence[float] | None = None) -> list[Outcome]:
        """Serve and log the steps. `spent`: seconds already spent per step (parsing, validation),
        added to each step's logged latency."""
        outcomes = self.serve(steps, spent)
        if self.events is not None and steps:
            started = time.perf_counter()
            now_ms = int(time.time() * 1000)
            self.events.write(
                Event(
                    message="last" if step.message == "last" else "next",
                    timestamp=now_ms,
                    user=step.user,
                    track=step.track,
                    time=step.time,
                    latency=outcome.latency,
                    recommendation=outcome.recommendation,
                    experiments=outcome.arms,
                    replica=self.replica,
                    fallback=outcome.fallback,
                    propensity=outcome.propensity,
                    team=outcome.team,
                )
                for step, outcome in zip(steps, outcomes, strict=True)
            )
            # the write is part of every step's cost, but only the next call's events can say so
            share = (time.perf_counter() - started) / len(steps)
            for outcome in outcomes:
                outcome.latency += share
        return outcomes

    def serve(self, steps: Sequence[Step], spent: Sequence[float] | None = None) -> list[Outcome]:
        """Answer the steps (no logging): arms, one state call for all ops, recommenders."""
        clock = time.perf_counter
        started = clock()
        arms = [self.experiments.assign(step.user) for step in steps]
        # a user outside the routing experiment's coverage logs no arm of it and gets its control
        default = self.experiments.default_arm
        routed = [self.recommenders[a.get(self.route, default)] for a in arms]
        step_ops = [
            (r.ops(s) if s.message == "next" else r.end_ops(s))
            for r, s in zip(routed, steps, strict=True)
        ]
        flat = [op for ops in step_ops for op in ops]
        results: list[Any] | None = None
        state_seconds = 0.0
        if flat and (self.redis_link is None or self.redis_link.available()):
            t0 = clock()
            try:
                results = self.state.run(flat)
                if self.redis_link is not None:
                    self.redis_link.succeeded()
            except redis.RedisError as error:
                if self.redis_link is not None:
                    self.redis_link.failed(error)
            state_seconds = clock() - t0
        shared = (clock() - started - state_seconds) / max(len(steps), 1)
        per_op = state_seconds / len(flat) if flat else 0.0

        outcomes = []
        offset = 0
        rng = self.ctx.rng
        for i, (step, recommender, ops) in enumerate(zip(steps, routed, step_ops, strict=True)):
            t0 = clock()
            mine = None if results is None else results[offset : offset + len(ops)]
            offset += len(ops)
            if step.message == "last":
                recommender.on_session_end(step.user)
                answer: Recommendation | None = None
            else:
                rng.serve(step)
                try:
                    if ops and (mine is None or any(isinstance(r, Failed) for r in mine)):
                        answer = fell_back(self.fallback, step)
                    else:
                        answer = recommender.recommend(step, mine or ())
                finally:
                    rng.serve(None)
            latency = shared + per_op * len(ops) + (clock() - t0) + (spent[i] if spent else 0.0)
            outcomes.append(
                Outcome(
                    None if answer is None else int(answer.track),
                    False if answer is None else bool(answer.fallback),
                    arms[i],
                    latency,
                    None if answer is None else float(answer.propensity),
                    None if answer is None else answer.team,
                )
            )
        return outcomes

    # -- readiness and what the service owns -----------------------------------------------------
    def refill(self) -> bool:
        """Write the catalog fingerprint if Redis lost it. True when something was written."""
        link = self.redis_link
        if link is None or not self.catalog_fingerprint or link.client.exists(link.catalog_key):
            return False
        link.write_catalog_fingerprint(self.catalog_fingerprint)
        return True

    def _on_redis_recovery(self) -> None:
        if isinstance(self.state, RedisState):
            self.state.forget_versions()  # a pointer may have changed (or vanished) meanwhile
        if self.refill():
            log.warning("Redis came back without the catalog fingerprint: refilled")

    def readiness(self) -> dict[str, Any]:
        reasons: list[str] = []
        report: dict[str, Any] = {"replica": self.replica, "lists": {}}
        link = self.redis_link
        if link is None or not isinstance(self.state, RedisState):
            report.update(ready=True, reasons=[])
            return report
        try:
            link.client.ping()
            report["refilled"] = self.refill()
            stored = link.read_catalog_fingerprint()
            ours = {k: str(v) for k, v in self.catalog_fingerprint.items()}
            if ours and stored != ours:
                reasons.append("Redis holds another catalog than this replica")
            for name in sorted(self.list_sets()):
                lists = self.state.list_set(name)
                version = lists.live_version()
                info = lists.versions().get(version, {}) if version else {}
                users, items = int(info.get("users", 0)), int(info.get("items", 0))
                report["lists"][name] = {"active": version, "users": users, "items": items}
                if version is None:
                    reasons.append(f"list set {name!r} has no active version")
                elif users == 0 and items == 0:
                    reasons.append(f"list set {name!r} version {version} has no lists")
            for name in sorted(self.model_sets()):
                status = self.ctx.models.status(name) if self.ctx.models else {"loaded": False}
                report.setdefault("models", {})[name] = status
                if not status["loaded"] and report["lists"].get(name, {}).get("active"):
                    reasons.append(
                        f"list set {name!r}: model not loaded ({status.get('reason', 'none')}); "
                        "its arms serve the fallback"
                    )
            for name in sorted(self.item_list_sets()):
                source = self.ctx.item_lists
                status = source.status(name) if source else {"loaded": False}
                report.setdefault("item_lists", {})[name] = status
                if not status["loaded"] and report["lists"].get(name, {}).get("active"):
                    reasons.append(
                        f"list set {name!r}: item lists not loaded "
                        f"({status.get('reason', 'none')}); its arms serve the fallback"
                    )
            link.succeeded()
        except redis.RedisError as error:
            link.failed(error)
            reasons.append(f"Redis unavailable ({type(error).__name__})")
        report["ready"] = not reasons
        report["reasons"] = reasons
        return report
