"""CORE (arXiv 2204.11067) as RecBole 1.2.1 implements it, in plain torch, with no RecBole import.

Same parameters under the same names as `recbole.model.sequential_recommender.core.CORE`, so a
state_dict moves between the two with `strict=True`; the same forward pass, loss and scoring
(tests/trainer/test_core_net.py checks outputs, loss and gradients against RecBole's class on
identical weights). Not importing RecBole lets the network train and serve where RecBole does
not install (numpy 2, a GPU machine) and keeps `model.pt` loadable from this file alone.

What RecBole's CORE does, kept here on purpose:
- every parameter (LayerNorm and biases included) starts uniform in +-1/sqrt(embedding_size);
- the transformer's self-attention is causal (RecBole's default `get_attention_mask`), sequences
  are left-aligned and 0-padded on the right, padded positions get -10000 in the attention scores
  and weight 0 in the session sum;
- training scores every item id, padding (0) included, with dropout on the candidates'
  embeddings; scoring normalises both sides and divides by the temperature.
Speed-ups that do not change the maths (each measured on a 2-core CPU, docs/trainer.md):
- dropout masks on the CPU come from numpy's PCG64 bit generator instead of torch's Bernoulli
  sampler (`FastDropout`): the same Bernoulli(1 - p) masks, about 10x cheaper to draw; torch's
  sampler took ~30 % of a CORE-trm training step;
- the temperature divides the (batch, d) session vectors, not the (batch, items) logits;
- on the CPU the cross-entropy over all items and its gradients are computed together, a few
  hundred rows at a time (`ChunkedSoftmaxCE`), so the logits stay in cache instead of making
  several passes over a (batch, items) matrix in memory: about 2x faster for that part;
- CORE-ave gathers only the present items of each sequence, not the padding (weight 0 in
  RecBole's sum);
- `F.gelu` is RecBole's erf formula, fused.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu, "relu": F.relu, "swish": F.silu, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid}  # fmt: skip


class FastDropout(nn.Dropout):
    """nn.Dropout whose CPU masks come from a numpy PCG64 generator (`bits`, set by CORE).

    Each element is kept when 16 random bits, read as a signed int, reach the threshold
    -32768 + round(p * 65536): probability 1 - p up to 2**-17. Elsewhere (CUDA) or without
    `bits` it is torch's own dropout.
    """

    bits: np.random.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.bits is None:
            return super().forward(x)
        n = x.numel()
        raw = self.bits.bit_generator.random_raw((n + 3) // 4)
        draws = torch.from_numpy(raw.view(np.int16)[:n]).view(x.shape)
        keep = draws >= round(self.p * 65536) - 32768
        return torch.where(keep, x, 0.0) * (1.0 / (1.0 - self.p))


class ChunkedSoftmaxCE(torch.autograd.Function):
    """mean(cross_entropy(sessions @ items.T, target)) and its gradients, `chunk` rows at a time.

    The gradients are computed in the forward pass (the softmax is at hand there) and scaled in
    the backward pass; same values as `F.cross_entropy` up to float rounding (tested).
    """

    @staticmethod
    def forward(ctx, sessions, items, target, chunk: int = 256):
        grad_sessions = torch.empty_like(sessions)
        grad_items = torch.zeros_like(items)
        total = torch.zeros((), dtype=torch.float64, device=sessions.device)
        for lo in range(0, len(sessions), chunk):
            rows, hits = sessions[lo : lo + chunk], target[lo : lo + chunk]
            probs = rows @ items.T
            peak = probs.amax(dim=1, keepdim=True)
            probs.sub_(peak).exp_()
            norm = probs.sum(dim=1, keepdim=True)
            picked = (rows * items[hits]).sum(dim=1)
            total += (norm.log() + peak).squeeze(1).sub(picked).sum()
            probs.div_(norm)
            probs[torch.arange(len(hits), device=probs.device), hits] -= 1.0
            grad_sessions[lo : lo + chunk] = probs @ items
            grad_items.addmm_(probs.T, rows)
        ctx.save_for_backward(grad_sessions, grad_items)
        return (total / len(sessions)).to(sessions.dtype)

    @staticmethod
    def backward(ctx, grad_loss):
        grad_sessions, grad_items = ctx.saved_tensors
        scale = grad_loss / len(grad_sessions)
        return grad_sessions * scale, grad_items * scale, None, None


def sampled_softmax_ce(
    sessions: torch.Tensor, items: torch.Tensor, target: torch.Tensor, negatives: int
) -> torch.Tensor:
    """Sampled softmax: the full cross-entropy's log-partition estimated from `negatives` item
    ids drawn uniformly (shared by the batch, from torch's generator) instead of every item.

    Each sampled logit gets + log((n - 1) / negatives), the log-inverse of its sampling rate
    (logQ correction), so the sum over the sample estimates the sum over all n - 1 ids; a
    sample that is the row's own target is masked. The loss's matrix products cost negatives / n
    of the full ones; the rest of a step (the session, the item table's dropout and norm) stays."""
    n = len(items)
    drawn = torch.randint(1, n, (negatives,), device=items.device)
    positive = (sessions * items[target]).sum(dim=1, keepdim=True)
    sampled = sessions @ items[drawn].T + math.log((n - 1) / negatives)
    sampled = sampled.masked_fill(drawn.unsqueeze(0) == target.unsqueeze(1), -torch.inf)
    logits = torch.cat([positive, sampled], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=target.device))


class MultiHeadAttention(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        d = arch["embedding_size"]
        self.n_heads = arch["n_heads"]
        if d % self.n_heads:
            raise ValueError(f"embedding_size {d} is not a multiple of n_heads {self.n_heads}")
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attn_dropout = FastDropout(arch["attn_dropout_prob"])
        self.dense = nn.Linear(d, d)
        self.LayerNorm = nn.LayerNorm(d, eps=arch["layer_norm_eps"])
        self.out_dropout = FastDropout(arch["hidden_dropout_prob"])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        head = d // self.n_heads

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.n_heads, head).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + mask, dim=-1)
        context = self.attn_dropout(attention) @ v
        out = self.out_dropout(self.dense(context.transpose(1, 2).reshape(b, n, d)))
        return self.LayerNorm(out + x)


class FeedForward(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        d, inner = arch["embedding_size"], arch["inner_size"]
        self.dense_1, self.dense_2 = nn.Linear(d, inner), nn.Linear(inner, d)
        self.act = ACTIVATIONS[arch["hidden_act"]]
        self.LayerNorm = nn.LayerNorm(d, eps=arch["layer_norm_eps"])
        self.dropout = FastDropout(arch["hidden_dropout_prob"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense_2(self.act(self.dense_1(x)))) + x)


class TransformerLayer(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        self.multi_head_attention = MultiHeadAttention(arch)
        self.feed_forward = FeedForward(arch)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.multi_head_attention(x, mask))


class TransformerEncoder(nn.Module):
    def __init__(self, arch: dict):
        super().__init__()
        self.layer = nn.ModuleList(TransformerLayer(arch) for _ in range(arch["n_layers"]))


class TransNet(nn.Module):
    """CORE-trm's weighting net: a causal transformer -> one weight per position (softmax)."""

    def __init__(self, arch: dict):
        super().__init__()
        d = arch["embedding_size"]
        self.position_embedding = nn.Embedding(arch["MAX_ITEM_LIST_LENGTH"], d)
        self.trm_encoder = TransformerEncoder(arch)
        self.LayerNorm = nn.LayerNorm(d, eps=arch["layer_norm_eps"])
        self.dropout = FastDropout(arch["hidden_dropout_prob"])
        self.fn = nn.Linear(d, 1)

    def forward(self, item_seq: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        present = item_seq.gt(0)
        n = item_seq.size(1)
        x = self.dropout(self.LayerNorm(item_emb + self.position_embedding.weight[:n]))
        # RecBole: causal mask over present keys, -10000 (not -inf) where masked
        causal = torch.ones(n, n, dtype=torch.bool, device=item_seq.device).tril()
        allowed = present[:, None, None, :] & causal
        mask = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
        mask.masked_fill_(~allowed, -10000.0)
        for layer in self.trm_encoder.layer:
            x = layer(x, mask)
        alpha = self.fn(x).to(torch.double)
        alpha = torch.where(present.unsqueeze(-1), alpha, -9e15)
        return torch.softmax(alpha, dim=1, dtype=torch.float)


class CORE(nn.Module):
    """CORE-trm or CORE-ave over item ids 1..n_items-1 (0 is padding)."""

    loss_chunk: int | None = 256  # rows per chunk of ChunkedSoftmaxCE on the CPU; None: off

    def __init__(self, n_items: int, arch: dict):
        super().__init__()
        self.dnn_type = arch["dnn_type"]
        self.temperature = float(arch["temperature"])
        self.max_len = int(arch["MAX_ITEM_LIST_LENGTH"])
        self.item_embedding = nn.Embedding(n_items, arch["embedding_size"], padding_idx=0)
        self.sess_dropout = FastDropout(arch.get("sess_dropout", 0.0))
        self.item_dropout = FastDropout(arch.get("item_dropout", 0.0))
        if self.dnn_type == "trm":
            self.net = TransNet(arch)
        elif self.dnn_type != "ave":
            raise ValueError(f"dnn_type should be trm or ave, not {self.dnn_type!r}")
        bound = 1.0 / math.sqrt(arch["embedding_size"])
        for weight in self.parameters():  # RecBole's CORE._reset_parameters
            nn.init.uniform_(weight, -bound, bound)
        # one generator for every dropout mask, seeded from torch's (reproducible runs)
        bits = np.random.Generator(np.random.PCG64(int(torch.randint(2**62, ()))))
        for module in self.modules():
            if isinstance(module, FastDropout):
                module.bits = bits

    def session(self, item_seq: torch.Tensor) -> torch.Tensor:
        """Normalised session vectors of left-aligned, 0-padded item sequences (batch, d)."""
        if self.dnn_type == "ave":
            # the mean of the present items' embeddings (after dropout); RecBole gathers the
            # padding too and weighs it 0: gathering only the present items is the same sum
            present = item_seq.gt(0)
            rows = present.nonzero(as_tuple=True)[0]
            x = self.sess_dropout(self.item_embedding(item_seq[present]))
            total = x.new_zeros(len(item_seq), x.size(1)).index_add_(0, rows, x)
            return F.normalize(total / present.sum(dim=-1, keepdim=True), dim=-1)
        x = self.sess_dropout(self.item_embedding(item_seq))
        return F.normalize(torch.sum(self.net(item_seq, x) * x, dim=1), dim=-1)

    def loss(
        self, item_seq: torch.Tensor, target: torch.Tensor, negatives: int = 0
    ) -> torch.Tensor:
        """Cross-entropy of the next item over every item id (RecBole's `calculate_loss`), or,
        with `negatives` > 0, its sampled estimate (`sampled_softmax_ce`)."""
        items = F.normalize(self.item_dropout(self.item_embedding.weight), dim=-1)
        sessions = self.session(item_seq) / self.temperature
        if 0 < negatives < len(items) - 1:
            return sampled_softmax_ce(sessions, items, target, negatives)
        if self.loss_chunk and sessions.device.type == "cpu" and torch.is_grad_enabled():
            return ChunkedSoftmaxCE.apply(sessions, items, target, self.loss_chunk)
        return F.cross_entropy(sessions @ items.T, target)

    def normalised_items(self) -> torch.Tensor:
        """The candidate side of `scores`, (d, n_items): compute once when scoring many batches."""
        return F.normalize(self.item_embedding.weight, dim=-1).T.contiguous()

    def scores(self, item_seq: torch.Tensor, items_t: torch.Tensor | None = None) -> torch.Tensor:
        """cos(session, item) for every item id (RecBole's `full_sort_predict` x temperature:
        the temperature does not change the order)."""
        if items_t is None:
            items_t = self.normalised_items()
        return self.session(item_seq) @ items_t
