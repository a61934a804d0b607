"""SasRec-I2I, the course's 2026 control: SASRec trained on the listening logs, its item
embeddings turned into item-to-item lists (`NeuralCandgenSeminar.ipynb`: rectools' `SASRecModel`,
then `recommend_to_items`).

SASRec (arXiv 1808.09781) as RecBole 1.2.1 implements it, on the lean trainer's pipeline (the
chains, RecBole's leave-one-out split and the training loop of `trainer.train`): the item and
position embeddings of the up to `max_len` previous items pass a causal transformer (RecBole's
post-LN layers, `trainer.core_net`), the output at the last item scores every item by inner
product with the shared item table, trained with cross-entropy over all items; weights start
normal(0, 0.02) as RecBole's `_init_weights`.

The course's recipe: plays heard for more than 0.7 in each user's order; 64 factors, 1 block, 4
heads, dropout 0.2, lr 0.001, 50 epochs, sequences of up to 100; neighbours: the 10 most similar
items by cosine of the item embeddings (rectools' i2i distance), itself left out, for the 15,000
most played items. Where ours differs: rectools trains each user's sequence at once (batches of
128 users); here each position is a sample (RecBole's way, batches of 2,048 samples, the same
targets per epoch); the chains keep users and tracks with at least 3 liked plays (the trainer's
k-core, which bounds the softmax to tracks that recur; rectools keeps every positive);
rectools' item net adds artist and genre embeddings to the id embedding, ours has the id only;
the epochs are a setting (`--epochs`; 50 as the course, fewer in the demo, where the CPU pays).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.core_net import (
    ChunkedSoftmaxCE,
    FastDropout,
    TransformerEncoder,
    sampled_softmax_ce,
)
from trainer.data import Chains, leave_one_out
from trainer.prepare import k_core, liked_plays
from trainer.train import evaluate, train_epoch
from trainer.zoo.events import read_events
from trainer.zoo.i2i import most_played, neighbours

log = logging.getLogger("trainer")

SETTINGS = {
    "min_time": 0.7,
    "min_count": 3,
    "embedding_size": 64,
    "n_layers": 1,
    "n_heads": 4,
    "inner_size": 256,
    "hidden_dropout_prob": 0.2,
    "attn_dropout_prob": 0.2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "MAX_ITEM_LIST_LENGTH": 100,
    "learning_rate": 1e-3,
    "train_batch_size": 2048,
    "epochs": 50,
    "k": 10,
    "top_items": 15_000,
    "seed": 42,
}


class SASRec(nn.Module):
    """SASRec over item ids 1..n_items-1 (0 is padding); `trainer.train`'s loop and evaluation
    drive it through `loss`, `scores`, `normalised_items` and `max_len`, as they drive CORE."""

    loss_chunk: int | None = 256

    def __init__(self, n_items: int, arch: dict):
        super().__init__()
        d = arch["embedding_size"]
        self.max_len = int(arch["MAX_ITEM_LIST_LENGTH"])
        self.item_embedding = nn.Embedding(n_items, d, padding_idx=0)
        self.position_embedding = nn.Embedding(self.max_len, d)
        self.trm_encoder = TransformerEncoder(arch)
        self.LayerNorm = nn.LayerNorm(d, eps=arch["layer_norm_eps"])
        self.dropout = FastDropout(arch["hidden_dropout_prob"])
        for module in self.modules():  # RecBole's SASRec._init_weights
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.data.normal_(0.0, arch["initializer_range"])
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
            if isinstance(module, nn.LayerNorm):
                module.bias.data.zero_()
                module.weight.data.fill_(1.0)
        bits = np.random.Generator(np.random.PCG64(int(torch.randint(2**62, ()))))
        for module in self.modules():
            if isinstance(module, FastDropout):
                module.bits = bits

    def session(self, item_seq: torch.Tensor) -> torch.Tensor:
        """The transformer's output at each sequence's last item (batch, d)."""
        present = item_seq.gt(0)
        n = item_seq.size(1)
        x = self.item_embedding(item_seq) + self.position_embedding.weight[:n]
        x = self.dropout(self.LayerNorm(x))
        causal = torch.ones(n, n, dtype=torch.bool, device=item_seq.device).tril()
        allowed = present[:, None, None, :] & causal
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
        mask.masked_fill_(~allowed, -10000.0)
        for layer in self.trm_encoder.layer:
            x = layer(x, mask)
        last = present.sum(dim=1).clamp(min=1) - 1
        return x[torch.arange(len(x), device=x.device), last]

    def loss(
        self, item_seq: torch.Tensor, target: torch.Tensor, negatives: int = 0
    ) -> torch.Tensor:
        """Cross-entropy of the next item over every item (RecBole's SASRec with CE), or its
        sampled estimate with `negatives` > 0 (`trainer.core_net.sampled_softmax_ce`; the
        trainer's shared epoch loop passes it, the zoo's recipe keeps 0)."""
        sessions, items = self.session(item_seq), self.item_embedding.weight
        if 0 < negatives < len(items) - 1:
            return sampled_softmax_ce(sessions, items, target, negatives)
        if self.loss_chunk and sessions.device.type == "cpu" and torch.is_grad_enabled():
            return ChunkedSoftmaxCE.apply(sessions, items, target, self.loss_chunk)
        return F.cross_entropy(sessions @ items.T, target)

    def normalised_items(self) -> torch.Tensor:
        """The candidate side of `scores` (d, n_items): SASRec scores by inner product."""
        return self.item_embedding.weight.T.contiguous()

    def scores(self, item_seq: torch.Tensor, items_t: torch.Tensor | None = None) -> torch.Tensor:
        if items_t is None:
            items_t = self.normalised_items()
        return self.session(item_seq) @ items_t


def chains_of(data, min_time: float, k: int) -> Chains:
    """Each user's liked plays in order, after the k-core (the trainer's `prepare`)."""
    events = read_events(data)
    liked = k_core(liked_plays(events, min_time), k)
    if liked.empty:
        raise ValueError(f"sasrec_i2i: nothing left after time > {min_time} and the {k}-core")
    users, counts = np.unique(liked["user"].to_numpy(np.int64), return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Chains(users, offsets, liked["track"].to_numpy(np.int64))


def fit(data, settings: dict | None = None, progress=None, out_dir: Path | None = None):
    """Train on the logs; returns (item lists {item: [neighbours]}, metrics)."""
    s = {**SETTINGS, **(settings or {})}
    chains = chains_of(data, s["min_time"], s["min_count"])
    split = leave_one_out(chains)
    if not len(split.train):
        raise ValueError("sasrec_i2i: no training samples (every chain is shorter than 3)")
    torch.manual_seed(s["seed"])
    model = SASRec(split.n_items, s)
    optimizer = torch.optim.Adam(model.parameters(), lr=s["learning_rate"])
    shuffle = torch.Generator().manual_seed(s["seed"])
    best: dict = {}
    started = time.perf_counter()
    for epoch in range(s["epochs"]):
        loss = train_epoch(model, optimizer, split, s["train_batch_size"], shuffle)  # type: ignore[arg-type]
        valid = evaluate(model, split, split.valid, [10])  # type: ignore[arg-type]
        score = valid.get("ndcg@10", math.nan)
        if not math.isnan(score) and (not best or score >= best["score"]):
            state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best.update(epoch=epoch, score=score, state=state)
        log.info("sasrec epoch %d: loss %.1f, valid ndcg@10 %.4f", epoch, loss, score)
        if progress is not None:
            progress(1)
    if best:
        model.load_state_dict(best["state"])
    test = evaluate(model, split, split.test, [10])  # type: ignore[arg-type]
    vectors = model.item_embedding.weight.detach().numpy()[1:]
    targets = most_played(split.items.numpy() - 1, len(split.catalogue), s["top_items"])
    lists = dict(neighbours(vectors, split.catalogue, targets, s["k"]))
    metrics = {
        "interactions": int(len(chains.tracks)),
        "users": int(len(chains.users)),
        "tracks": int(len(split.catalogue)),
        "train_samples_per_epoch": int(len(split.train)),
        "epochs_run": s["epochs"],
        "best_epoch": best.get("epoch"),
        "test": {k: round(v, 4) for k, v in test.items()},
        "items_listed": len(lists),
        "fit_seconds": round(time.perf_counter() - started, 1),
    }
    return lists, metrics
