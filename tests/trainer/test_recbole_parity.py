"""The lean trainer against RecBole on a tiny dataset: the same samples, network and metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.trainer.conftest import TINY
from trainer.core_net import CORE
from trainer.data import histories, leave_one_out, read_chains
from trainer.model import ARCH_KEYS
from trainer.recbole_reference import import_models, make_config, quiet_recbole, scratch_cwd
from trainer.train import _rank_in_top, evaluate, ranking_metrics


@pytest.fixture(scope="module")
def recbole_split(tiny_dataset):
    """RecBole's dataset and its train/valid/test data for the tiny dataset (length 5)."""
    from recbole.data import create_dataset, data_preparation

    import_models()
    with quiet_recbole(), scratch_cwd():
        config = make_config(tiny_dataset[0], TINY)
        dataset = create_dataset(config)
        parts = data_preparation(config, dataset)
    return config, dataset, parts


def recbole_samples(dataset, part) -> list[tuple]:
    """(user, history tracks, target track) of every row of a RecBole split, sorted."""
    inter = part._dataset.inter_feat
    token = dataset.field2id_token["item_id"]
    users = dataset.field2id_token["user_id"][inter["user_id"].numpy()].astype(np.int64)
    rows = []
    for user, seq, length, target in zip(
        users, inter["item_id_list"].numpy(), inter["item_length"].numpy(),
        inter["item_id"].numpy(), strict=True,
    ):  # fmt: skip
        assert not seq[length:].any()  # left-aligned, 0-padded on the right
        rows.append((int(user), tuple(int(t) for t in token[seq[:length]]), int(token[target])))
    return sorted(rows)


def lean_samples(chains, split, positions, max_len) -> list[tuple]:
    seq = histories(split, positions, max_len).numpy()
    user_of = np.repeat(chains.users, np.diff(chains.offsets))
    tracks = np.concatenate([[0], split.catalogue])
    rows = []
    for pos, row in zip(positions.numpy(), seq, strict=True):
        history = tuple(int(t) for t in tracks[row[row > 0]])
        assert (row[len(history) :] == 0).all()
        rows.append((int(user_of[pos]), history, int(tracks[split.items[pos]])))
    return sorted(rows)


def test_split_gives_recboles_samples(tiny_dataset, recbole_split):
    _, dataset, (train, valid, test) = recbole_split
    chains = read_chains(tiny_dataset[0])
    split = leave_one_out(chains)
    max_len = TINY["MAX_ITEM_LIST_LENGTH"]
    for ours, theirs in ((split.train, train), (split.valid, valid), (split.test, test)):
        assert lean_samples(chains, split, ours, max_len) == recbole_samples(dataset, theirs)


def test_split_of_short_chains_follows_recbole():
    """RecBole: n samples -> test only if n >= 2, validation only if n >= 3 (else all train)."""
    from trainer.data import Chains

    offsets = np.array([0, 2, 5, 9])  # chains of 2, 3, 4 items
    split = leave_one_out(Chains(np.arange(3), offsets, np.arange(9) % 5))
    assert split.train.tolist() == [1, 3, 6]
    assert split.valid.tolist() == [7]
    assert split.test.tolist() == [4, 8]


@pytest.mark.parametrize("variant", ["trm", "ave"])
def test_network_matches_recboles_core(recbole_split, variant):
    """Same weights -> same session vectors, scores, loss and gradients (dropout off)."""
    from recbole.data.interaction import Interaction
    from recbole.model.sequential_recommender.core import CORE as RecBoleCORE

    config, _, (train, _, _) = recbole_split
    config["dnn_type"] = variant
    torch.manual_seed(0)
    theirs = RecBoleCORE(config, train._dataset).eval()
    arch = {key: config[key] for key in ARCH_KEYS}
    ours = CORE(theirs.n_items, arch).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert set(ours.state_dict()) == set(theirs.state_dict())

    batch = next(iter(train))
    seq, target = batch["item_id_list"], batch["item_id"]
    torch.testing.assert_close(ours.session(seq), theirs.forward(seq))
    torch.testing.assert_close(
        ours.scores(seq) / config["temperature"], theirs.full_sort_predict(batch)
    )
    loss_ours = ours.loss(seq, target)
    loss_theirs = theirs.calculate_loss(Interaction({"item_id_list": seq, "item_id": target,
                                                     "item_length": batch["item_length"]}))  # fmt: skip
    torch.testing.assert_close(loss_ours, loss_theirs)
    loss_ours.backward()
    loss_theirs.backward()
    grads = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, msg=name)


def test_ranking_metrics_match_recboles_evaluator(recbole_split):
    """Scores with ties (like Pop's counts): the same Recall/NDCG/MRR@k as RecBole's evaluator."""
    from recbole.evaluator import Collector, Evaluator

    config = recbole_split[0]
    config["topk"] = [3, 7]
    generator = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 6, (50, 21), generator=generator).float()
    targets = torch.randint(1, 21, (50,), generator=generator)
    collector = Collector(config)
    theirs_scores = scores.clone()
    theirs_scores[:, 0] = -torch.inf
    collector.eval_batch_collect(theirs_scores, None, torch.arange(50), targets)
    theirs = Evaluator(config).evaluate(collector.get_data_struct())
    ours = ranking_metrics(_rank_in_top(scores.clone(), targets, 7), [3, 7])
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert round(ours[key], 4) == value, key


def test_core_metrics_match_recboles_evaluation(tiny_dataset, tmp_path):
    """A model trained through RecBole, evaluated by the lean evaluator on the lean split."""
    from trainer.model import load_model
    from trainer.recbole_reference import train_reference

    reference = train_reference(tiny_dataset[0], tmp_path / "ref", {**TINY, "epochs": 1})
    saved = load_model(tmp_path / "ref")
    split = leave_one_out(read_chains(tiny_dataset[0]))
    # RecBole numbers items by first appearance, the lean split by track id: reorder the rows
    old_row = {int(t): i + 1 for i, t in enumerate(saved.tracks)}
    order = [0] + [old_row[int(t)] for t in split.catalogue]
    state = saved.scorer.state_dict()
    state["item_embedding.weight"] = state["item_embedding.weight"][order]
    model = CORE(split.n_items, saved.meta["arch"])
    model.load_state_dict(state)
    ks = [10, 20]
    ours = {k: round(v, 4) for k, v in evaluate(model, split, split.test, ks).items()}
    assert ours == reference["test"]["CORE"]
