"""Train CORE on liked chains, without RecBole's dataset and dataloader machinery.

dataset dir -> chains (trainer.data) -> RecBole's leave-one-out split as index arrays ->
CORE (trainer.core_net, RecBole's network and loss) -> epochs of shuffled batches (Adam), the
validation NDCG@10 after each -> the best epoch's state -> test metrics of CORE and of the
popularity baseline on the same rows -> the model directory (trainer.model).

The metrics are RecBole's full-ranking Recall, NDCG and MRR for one held-out item per user,
every item ranked, computed as its evaluator does (torch.topk over all scores, padding id
excluded; tests/trainer/test_train.py compares both on the same model).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch

from trainer.core_net import CORE
from trainer.data import Split, histories, leave_one_out, read_chains
from trainer.model import ARCH_KEYS, save_model

log = logging.getLogger("trainer")

# RecBole 1.2.1's CORE defaults (recbole/properties/model/CORE.yaml) and training settings
# unless a comment says otherwise; key names are RecBole's, so one dict configures both paths.
RECIPE = {
    # CORE-ave: the session is the mean of its item embeddings (no transformer). On liked chains
    # at the seed's scale it ranks the held-out track as well as CORE-trm at length 20 (the
    # recipe before) or better, at a fifth of the cost per sample (docs/trainer.md, measured).
    "dnn_type": "ave",
    "MAX_ITEM_LIST_LENGTH": 50,  # RecBole's default; ave costs little more per extra item
    "embedding_size": 64,
    "inner_size": 256,
    "n_layers": 2,
    "n_heads": 2,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "sess_dropout": 0.2,
    "item_dropout": 0.2,
    "temperature": 0.07,
    "epochs": 5,
    # 0: the full softmax over every item, as RecBole; N > 0: a sampled softmax over N uniform
    # negatives per batch (core_net.sampled_softmax_ce), N/items of the cost (not RecBole's)
    "negatives": 0,
    "train_batch_size": 2048,
    "learning_rate": 0.001,
    "seed": 2024,
    "topk": [10, 100],
    "eval_batch_size": 4096,
}
VALID_METRIC = "ndcg@10"


def train(
    dataset_dir: str | Path,
    out_dir: str | Path,
    variant: str | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    overrides: dict | None = None,
    show_progress: bool = True,
    device: str | None = None,
) -> dict:
    """Train on a dataset written by `prepare`; write the model directory; return the metrics."""
    settings = {**RECIPE, **(overrides or {})}
    for key, value in (("dnn_type", variant), ("epochs", epochs), ("seed", seed)):
        if value is not None:
            settings[key] = value
    on = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    seconds: dict = {"train": [], "valid": []}

    started = time.perf_counter()
    chains = read_chains(dataset_dir)
    split = leave_one_out(chains)
    if not len(split.train):
        raise ValueError(f"{dataset_dir}: no training samples (every chain is shorter than 3)")
    on_device = split.to(on)
    ks = sorted({min(k, len(split.catalogue)) for k in settings["topk"]})
    seconds["load"] = time.perf_counter() - started
    log.info(
        "%d users, %d tracks; %d training samples per epoch; device %s; %d threads",
        len(chains.users), len(split.catalogue), len(split.train), on,
        torch.get_num_threads(),
    )  # fmt: skip

    torch.manual_seed(settings["seed"])
    arch = {key: settings[key] for key in ARCH_KEYS}
    model = CORE(split.n_items, arch).to(on)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    shuffle = torch.Generator().manual_seed(settings["seed"])
    best: dict = {}
    for epoch in range(settings["epochs"]):
        started = time.perf_counter()
        loss = train_epoch(
            model,
            optimizer,
            on_device,
            settings["train_batch_size"],
            shuffle,
            show_progress,
            negatives=int(settings["negatives"]),
        )
        seconds["train"].append(time.perf_counter() - started)
        started = time.perf_counter()
        valid = evaluate(model, on_device, on_device.valid, ks, settings["eval_batch_size"])
        seconds["valid"].append(time.perf_counter() - started)
        score = valid.get(VALID_METRIC, math.nan)
        # RecBole keeps the later epoch on a tie (early_stopping: value >= best)
        if not math.isnan(score) and (not best or score >= best["score"]):
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            best.update(epoch=epoch, score=score, state=state)
        log.info(
            "epoch %d: loss %.4f, valid %s %.4f, %.1f s + %.1f s valid (load %.1f)",
            epoch, loss, VALID_METRIC, score, seconds["train"][-1], seconds["valid"][-1],
            os.getloadavg()[0],
        )  # fmt: skip
    if not best:  # no validation rows (every chain has 3 items): keep the last state
        best.update(epoch=settings["epochs"] - 1, score=math.nan, state=model.state_dict())
    model.load_state_dict(best["state"])

    started = time.perf_counter()
    core_test = evaluate(model, on_device, on_device.test, ks, settings["eval_batch_size"])
    pop_test = evaluate_popularity(on_device, on_device.test, ks)
    seconds["test"] = time.perf_counter() - started

    fit = sum(seconds["train"]) + sum(seconds["valid"])
    metrics = {
        "model": f"CORE-{arch['dnn_type']}",
        "test": {"CORE": _rounded(core_test), "Pop": _rounded(pop_test)},
        "valid_best": {"epoch": best["epoch"], VALID_METRIC: best["score"]},
        "epochs_run": settings["epochs"],
        "train_samples_per_epoch": len(split.train),
        "fit_seconds": round(fit, 2),
        "seconds_per_epoch": round(fit / settings["epochs"], 2),
        "seconds": _rounded(seconds, 2),
        "device": str(on),
        "settings": arch
        | {
            k: settings[k]
            for k in ("train_batch_size", "learning_rate", "epochs", "seed", "negatives")
        },
    }
    out_dir = Path(out_dir)
    save_model(out_dir, best["state"], arch, split.catalogue, chains.as_arrays(),
               {"metrics": metrics})  # fmt: skip
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def train_epoch(
    model: CORE,
    optimizer: torch.optim.Optimizer,
    split: Split,
    batch_size: int,
    shuffle: torch.Generator,
    show_progress: bool = False,
    negatives: int = 0,
) -> float:
    """One pass over the training samples in a fresh random order; returns the summed loss."""
    model.train()
    order = split.train[torch.randperm(len(split.train), generator=shuffle).to(split.train.device)]
    batches = order.split(batch_size)
    if show_progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="train", leave=False, mininterval=1.0)
    total = torch.zeros((), device=order.device)
    for batch in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(histories(split, batch, model.max_len), split.items[batch], negatives)
        loss.backward()
        optimizer.step()
        total += loss.detach()
    return float(total)


@torch.no_grad()
def evaluate(
    model: CORE, split: Split, positions: torch.Tensor, ks: list[int], batch_size: int = 4096
) -> dict[str, float]:
    """Full-ranking Recall/NDCG/MRR@k of the item at each position, given the items before it."""
    model.eval()
    if not len(positions):
        return {}
    items_t = model.normalised_items()
    ranks = []
    for chunk in positions.split(batch_size):
        scores = model.scores(histories(split, chunk, model.max_len), items_t)
        ranks.append(_rank_in_top(scores, split.items[chunk], max(ks)))
    return ranking_metrics(torch.cat(ranks), ks)


def evaluate_popularity(split: Split, positions: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """RecBole's Pop: every user gets the items most often a training target, same evaluation."""
    if not len(positions):
        return {}
    counts = torch.bincount(split.items[split.train], minlength=len(split.catalogue) + 1)
    scores = (counts / counts.max()).expand(len(positions), -1).clone()
    return ranking_metrics(_rank_in_top(scores, split.items[positions], max(ks)), ks)


def _rank_in_top(scores: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """0-based rank of each target among the top k (k where it is not in them), padding excluded."""
    scores[:, 0] = -torch.inf
    top = torch.topk(scores, k, dim=1).indices
    hit = top == targets[:, None]
    return torch.where(hit.any(dim=1), hit.float().argmax(dim=1), k)


def ranking_metrics(rank: torch.Tensor, ks: list[int]) -> dict[str, float]:
    """RecBole's recall@k, ndcg@k, mrr@k for one relevant item per row, averaged over rows."""
    rank = rank.double()
    out: dict[str, float] = {}
    for name, gain in (("recall", torch.ones_like(rank)), ("ndcg", 1 / torch.log2(rank + 2)),
                       ("mrr", 1 / (rank + 1))):  # fmt: skip
        for k in ks:
            out[f"{name}@{k}"] = float(torch.where(rank < k, gain, 0.0).mean())
    return out


def _rounded(value, digits: int = 4):
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return round(float(value), digits)


def comparison_table(metrics: dict) -> str:
    """A small text table: CORE vs Pop on the held-out last liked track."""
    core, pop = metrics["test"]["CORE"], metrics["test"]["Pop"]
    lines = [f"{'metric':<12}{metrics['model']:>12}{'Pop':>10}"]
    lines += [f"{key:<12}{core[key]:>12.4f}{pop[key]:>10.4f}" for key in core]
    return "\n".join(lines)
