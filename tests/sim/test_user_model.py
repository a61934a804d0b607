"""Hand-computed listen times on a 4-track world, in the Env and in the batch path."""

from __future__ import annotations

import numpy as np
import pytest

from sim.batch import BatchSimulator, run_key
from sim.env import RecEnv
from sim.user_model import Population, UserModelParams, listen_time
from sim.world import World

# Tracks 0, 1 by artist A; 2, 3 by artist B.
EMBEDDINGS = np.array([[1.0, 0.0], [0.9, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=np.float32)


def tiny_world(users: list[dict]) -> World:
    return World(
        embeddings=EMBEDDINGS,
        artist_names=["A", "A", "B", "B"],
        titles=["a", "b", "c", "d"],
        genres=["g"] * 4,
        pop=np.ones(4),
        users=users,
    )


LISTENER = {"user": 0, "interests": [0], "consume_bias": 0.5, "consume_sharpness": 2.0,
            "interest_neighbours": 1}  # fmt: skip


def test_listen_times_by_hand():
    env = RecEnv(tiny_world([LISTENER]))
    obs, _ = env.reset(seed=0)
    assert obs == {"user": 0, "track": 0}  # the single nearest neighbour of interest 0 is itself
    # sigmoid((0.9 - 0.5) * 2) = 0.68997, one play of artist A so far (the first track): * 0.8
    assert env.listen(1) == 0.55
    assert env.listen(0) == 0.0  # repeat
    # sigmoid((0 - 0.5) * 2) = 0.26894 -> rounded to 0.27; artist B not played yet
    assert env.listen(2) == 0.27
    env.step(2)
    # sigmoid(0) = 0.5, artist B played once -> 0.4
    assert env.listen(3) == 0.4
    _, reward, *_ = env.step(1)
    assert reward == 0.55
    assert env.listen(1) == 0.0


def test_listen_time_formula_vectorised():
    times = listen_time(np.array([0.9, 0.0, 0.5]), 0.5, 2.0, 0.8, np.array([1, 0, 2]))
    np.testing.assert_array_equal(times, [0.55, 0.27, 0.32])


def test_budget_drops_on_zero_time_and_ends_the_session():
    user = dict(LISTENER, session_budget=2)
    env = RecEnv(tiny_world([user]))
    env.reset(seed=1)
    _, reward, terminated, truncated, info = env.step(0)  # repeat: time 0, budget 2 -> 1
    assert (reward, terminated, truncated, info["budget"]) == (0.0, False, False, 1)
    _, reward, terminated, _, info = env.step(0)
    assert (reward, terminated, info["budget"]) == (0.0, True, 0)


def test_full_listens_keep_the_budget_and_the_safety_stop_truncates():
    user = dict(LISTENER, consume_bias=-100.0, session_budget=1, artist_discount_gamma=1.0)
    env = RecEnv(tiny_world([user]), UserModelParams(max_session_tracks=3))
    env.reset(seed=2)
    steps = [env.step(t) for t in (1, 2, 3)]
    assert [s[1] for s in steps] == [1.0, 1.0, 1.0]
    assert [s[2] for s in steps] == [False, False, False]  # never terminated: time 1.0
    assert [s[3] for s in steps] == [False, False, True]  # truncated at max_session_tracks


def test_per_user_overrides_and_config_defaults():
    users = [
        {"user": 0, "interests": [2], "consume_bias": 1.0, "consume_sharpness": 1.0},
        dict(LISTENER, user=1, session_budget=7, artist_discount_gamma=0.5),
    ]
    pop = Population(tiny_world(users), UserModelParams(interest_neighbours=2, session_budget=3))
    assert pop.neighbours.tolist() == [2, 1]
    assert pop.budget.tolist() == [3, 7]
    assert pop.gamma.tolist() == [0.8, 0.5]
    # user 0 starts from one of the 2 nearest of track 2: itself (1.0) or track 3 (0.5)
    env = RecEnv(pop)
    firsts = {env.reset(seed=s, options={"user": 0})[0]["track"] for s in range(30)}
    assert firsts == {2, 3}


class Scripted:
    """Recommends `script[k]` at step k and records the time heard of each recommendation."""

    def __init__(self, script):
        self.script = script
        self.recorded: list[float] = []

    def step(self, sim, act, end):
        for row in [*end.tolist(), *act.tolist()]:
            if sim.steps[row]:
                self.recorded.append(float(sim.last_time[row]))
        return np.array([self.script[sim.steps[r]] for r in act], dtype=np.int64)


def test_batch_path_gives_the_same_times():
    user = dict(LISTENER, consume_bias=-100.0, consume_sharpness=0.01, session_budget=50)
    # raw times sigmoid((dot + 100) * 0.01) are near 0.73; the script hits repeat and discount
    script = [1, 0, 2, 3, 1, 2]
    params = UserModelParams(max_session_tracks=len(script))
    env = RecEnv(tiny_world([user]), params)
    env.reset(seed=0)
    expected = [env.step(t)[1] for t in script]
    sim = BatchSimulator(Population(tiny_world([user]), params), run_key(0), batch_size=1)
    policy = Scripted(script)
    result = sim.run(policy, sessions=1)
    assert policy.recorded == expected
    assert expected[1] == 0.0 and expected[4] == 0.0  # repeats
    assert result.tracks.tolist() == [len(script)]
    assert result.time[0] == pytest.approx(sum(expected))
