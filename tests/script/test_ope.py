"""Off-policy estimates: the estimators on known inputs (by hand and against OBP), then the whole
path (the service logs -> export -> replay -> estimates) on the tiny test world."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from botify.catalog import Catalog
from botify.step import Step
from script import export
from script.ope import Candidate, NoSupport, OpeError, estimators, evaluate
from script.ope.cli import main
from tests.botify import conftest as botify_world
from tests.botify.conftest import N_TRACKS, user_list

tracks_json = botify_world.tracks_json  # the tiny world's catalog (a fixture)

# -- the estimators, by hand ---------------------------------------------------------------------
# three steps: rewards, logged actions and their propensities, the candidate's draws, the model
R = np.array([1.0, 0.0, 2.0])
LOGGED = np.array([0, 1, 0])
P = np.array([0.5, 0.5, 0.25])
DRAWN = np.array([0, 0, 0])
W = (DRAWN == LOGGED) / P  # [2, 0, 4]
Q_LOG = np.array([0.5, 0.2, 0.5])
Q_CAND = np.array([0.5, 0.5, 0.5])
EACH = np.array([1, 2, 3])  # every step its own user


def test_the_estimators_by_hand():
    assert estimators.ips(R, W, EACH).value == pytest.approx(10 / 3)  # (2 + 0 + 8) / 3
    assert estimators.snips(R, W, EACH).value == pytest.approx(10 / 6)  # 10 / (2 + 0 + 4)
    assert estimators.direct(Q_CAND, EACH).value == pytest.approx(0.5)
    # (0.5 + 2 * 0.5) + (0.5 + 0) + (0.5 + 4 * 1.5)
    assert estimators.doubly_robust(R, W, Q_LOG, Q_CAND, EACH).value == pytest.approx(8.5 / 3)
    assert estimators.effective_sample_size(W) == pytest.approx(36 / 20)
    assert estimators.effective_sample_size(np.zeros(3)) == 0.0


def test_the_interval_clusters_by_user():
    # IPS terms [2, 0, 8], mean 10/3: deviations -4/3, -10/3, 14/3
    alone = estimators.ips(R, W, EACH)  # 3/2 * (16 + 100 + 196) / 9 / 3^2
    assert alone.se == pytest.approx(math.sqrt(52) / 3)
    assert (alone.low, alone.high) == pytest.approx(
        (10 / 3 - 1.959964 * math.sqrt(52) / 3, 10 / 3 + 1.959964 * math.sqrt(52) / 3)
    )
    paired = estimators.ips(R, W, np.array([1, 1, 2]))  # users' sums -14/3, 14/3: 2 * 392/81
    assert paired.se == pytest.approx(28 / 9)
    # SNIPS by the delta method: terms w (r - V) / mean(w), V = 5/3, mean(w) = 2
    terms = W * (R - 5 / 3) / 2
    expect = math.sqrt(3 / 2 * np.sum((terms - terms.mean()) ** 2)) / 3
    assert estimators.snips(R, W, EACH).se == pytest.approx(expect)


# -- against OBP's implementation ------------------------------------------------------------------
def _bandit(seed: int, n: int = 400, k: int = 5):
    rng = np.random.default_rng(seed)
    behaviour = rng.dirichlet(np.ones(k), n)
    action = np.array([rng.choice(k, p=p) for p in behaviour])
    pscore = behaviour[np.arange(n), action]
    reward = rng.uniform(0, 1, n) * (1 + action)
    q = rng.uniform(0, 2, (n, k))
    return rng, action, pscore, reward, q


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sampled_candidate_gives_obps_numbers_for_its_one_hot_policy(seed):
    """A candidate action per step (what the replay samples) is OBP's deterministic policy."""
    from obp.ope import DirectMethod, DoublyRobust, InverseProbabilityWeighting
    from obp.ope import SelfNormalizedInverseProbabilityWeighting as SNIPW

    rng, action, pscore, reward, q = _bandit(seed)
    n, k = q.shape
    drawn = rng.integers(0, k, n)
    dist = np.zeros((n, k, 1))
    dist[np.arange(n), drawn, 0] = 1.0
    common = dict(reward=reward, action=action, pscore=pscore, action_dist=dist)
    weight = (drawn == action) / pscore
    users = np.arange(n)
    rows = np.arange(n)
    ours = {
        "IPS": estimators.ips(reward, weight, users).value,
        "SNIPS": estimators.snips(reward, weight, users).value,
        "DM": estimators.direct(q[rows, drawn], users).value,
        "DR": estimators.doubly_robust(
            reward, weight, q[rows, action], q[rows, drawn], users
        ).value,
    }
    qs = q[:, :, None]
    obp = {
        "IPS": InverseProbabilityWeighting().estimate_policy_value(**common),
        "SNIPS": SNIPW().estimate_policy_value(**common),
        "DM": DirectMethod().estimate_policy_value(
            position=None, action_dist=dist, estimated_rewards_by_reg_model=qs
        ),
        "DR": DoublyRobust().estimate_policy_value(**common, estimated_rewards_by_reg_model=qs),
    }
    assert ours == pytest.approx(obp, rel=1e-12)


def test_sampling_the_candidates_action_is_unbiased_for_its_whole_distribution():
    """Averaged over every action a uniform candidate can draw, the sampled estimators are OBP's
    with the candidate's full action distribution (exactly: the expectation of the draw)."""
    from obp.ope import DoublyRobust, InverseProbabilityWeighting

    _, action, pscore, reward, q = _bandit(3)
    n, k = q.shape
    uniform = np.full((n, k, 1), 1 / k)
    common = dict(reward=reward, action=action, pscore=pscore, action_dist=uniform)
    # every step once per action the candidate could draw: each draw has probability 1/k
    drawn = np.tile(np.arange(k), n)
    step = np.repeat(np.arange(n), k)
    weight = (drawn == action[step]) / pscore[step]
    ips = estimators.ips(reward[step], weight, step).value
    dr = estimators.doubly_robust(
        reward[step], weight, q[step, action[step]], q[step, drawn], step
    ).value
    assert ips == pytest.approx(InverseProbabilityWeighting().estimate_policy_value(**common))
    assert dr == pytest.approx(
        DoublyRobust().estimate_policy_value(**common, estimated_rewards_by_reg_model=q[:, :, None])
    )


# -- the whole path on the tiny world --------------------------------------------------------------
def listened(track: int) -> float:
    """The test world's listener: tracks below 50 in full, the others a fifth."""
    return 1.0 if track < 50 else 0.2


@pytest.fixture(scope="module")
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


@pytest.fixture(scope="module")
def lists_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lists") / "recommendations_core.json"
    path.write_text("".join(json.dumps({"user": u, "tracks": user_list(u, 30)}) + "\n"
                            for u in range(40)))  # fmt: skip
    return path


def logged_dataset(
    root: Path, catalog, recommender, sessions=300, steps=8, lists=None, models=None, **params
):
    """Sessions of 40 users served by `recommender` through the service in-process, logged,
    exported: the listener hears each served track `listened(track)` long."""
    from sim.transport import InProcess

    service = InProcess.build(
        catalog, recommender, lists=lists, models=models, log_dir=root / "log", **params
    ).service
    rng = np.random.default_rng(7)
    for s in range(sessions):
        user, track, time = s % 40, int(rng.integers(N_TRACKS)), 1.0
        for _ in range(steps):
            seed = int(rng.integers(2**63))
            track = service.handle([Step("next", user, track, time, seed)])[0].recommendation
            time = listened(track)
        service.handle([Step("last", user, track, time, 0)])
    service.events.close()
    export.export([root / "log"], root / "ds")
    return root / "ds"


@pytest.fixture(scope="module")
def random_logs(tmp_path_factory, catalog) -> Path:
    return logged_dataset(tmp_path_factory.mktemp("random"), catalog, "random", sessions=1500)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "item_embeddings.npz"
    embeddings = np.random.default_rng(0).standard_normal((N_TRACKS, 4)).astype(np.float32)
    np.savez(path, tracks=np.arange(N_TRACKS), embeddings=embeddings)
    return path


@pytest.mark.parametrize("recommender", ["sorted_indexed", "session_core"])
def test_on_its_own_logs_a_deterministic_candidate_matches_every_step(
    tmp_path, catalog, lists_file, model_file, recommender
):
    """A deterministic arm replayed on its own logs (the same lists and model) serves the very
    same tracks, session_core only if its live session is fed each user's steps in order: every
    step matches with weight 1, so IPS, SNIPS and DR are the logged mean exactly."""
    lists = {"core": lists_file}
    models = {"core": model_file} if recommender == "session_core" else {}
    data = logged_dataset(
        tmp_path, catalog, recommender, sessions=60, lists={"core": str(lists_file)},
        models={k: str(v) for k, v in models.items()},
    )  # fmt: skip
    candidate = Candidate("T", recommender, {}, lists, models)
    result = evaluate(data, candidate, catalog, progress=False, min_matched=10, min_ess=10)
    assert result.steps == 60 * 8 and result.matched == result.steps
    assert result.ess == pytest.approx(result.steps)
    assert result.mean_weight.value == 1.0
    for name in ("IPS", "SNIPS", "DR"):  # DR = DM + mean(r - q) on the same actions
        assert result.estimate(name).value == pytest.approx(result.logged.value, rel=1e-12)


def test_toppop_estimated_from_random_logs(random_logs, catalog):
    """TopPop over the 20 most popular tracks (0..19, all heard in full) from Random's logs: the
    truth is 1.0, Random's own mean is 0.4."""
    result = evaluate(
        random_logs, Candidate("toppop", "toppop", {"k": 20}), catalog, progress=False,
        min_matched=10, min_ess=10, min_support=0.0,
    )  # fmt: skip
    assert result.steps == 1500 * 8
    assert result.logged.contains(0.4)
    assert result.estimate("SNIPS").value == 1.0  # every matched step heard in full
    for name in ("IPS", "DR"):
        assert result.estimate(name).contains(1.0), (name, result.estimate(name))
    # each matched step weighs 1 / (1/200): the mean weight counts the matches
    assert result.matched == round(result.mean_weight.value * result.steps / N_TRACKS)


def test_no_estimate_where_the_logging_policy_never_serves_the_candidates_choices(
    tmp_path, catalog, tracks_json
):
    """TopPop over 20 logs; Random, which draws from all 200, is what it would have to serve."""
    data = logged_dataset(tmp_path, catalog, "toppop", sessions=400, k=20)
    result = evaluate(data, Candidate("random", "random"), catalog, progress=False)
    assert result.refusal is not None and "do not support random" in result.refusal
    assert result.estimates == {}
    assert result.mean_weight.value < 0.2  # 20 of 200 tracks: about a tenth
    with pytest.raises(NoSupport):
        result.estimate("IPS")
    world = str(tracks_json.parent)
    out = CliRunner().invoke(
        main, ["--data", str(data), "--candidate", "random", "--world", world, "--quiet"]
    )
    assert out.exit_code == 2 and "NO ESTIMATE: the logs do not support random" in out.output


def test_logs_without_propensities_are_refused_with_a_reason(tmp_path, catalog, random_logs):
    import pyarrow.parquet as pq

    table = pq.read_table(random_logs / export.DATA_FILE).drop_columns(["propensity"])
    (tmp_path / "old").mkdir()
    pq.write_table(table, tmp_path / "old" / export.DATA_FILE)
    with pytest.raises(OpeError, match="no propensity"):
        evaluate(tmp_path / "old", Candidate("random", "random"), catalog, progress=False)


def test_a_candidate_is_an_arm_of_a_config_with_its_lists_from_a_run(tmp_path, catalog, lists_file):
    config = tmp_path / "experiments.yml"
    config.write_text(
        "route: AB\nexperiments:\n  - name: AB\n    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
        "      - {name: T9, recommender: toppop, params: {k: 7}}\n"
        "      - {name: T1, recommender: sorted_indexed, params: {lists: core}}\n"
    )
    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    top = Candidate.resolve("T9", catalog, config=config)
    assert (top.recommender, dict(top.params), dict(top.lists)) == ("toppop", {"k": 7}, {})
    with pytest.raises(OpeError, match="serves list set 'core'"):
        Candidate.resolve("T1", catalog, config=config, run=run)
    (run / "train" / "recommendations_core.json").write_text(lists_file.read_text())
    walk = Candidate.resolve("T1", catalog, config=config, run=run)
    assert dict(walk.lists) == {"core": run / "train" / "recommendations_core.json"}
    with pytest.raises(OpeError, match="needs the model"):
        Candidate.resolve("session_core", catalog, run=run)
    with pytest.raises(OpeError, match="neither a registered recommender"):
        Candidate.resolve("T7", catalog, config=config)
