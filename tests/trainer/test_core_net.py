"""The speed-ups inside trainer.core_net compute what they replace."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainer.core_net import ChunkedSoftmaxCE, FastDropout


def test_chunked_cross_entropy_equals_torchs_over_several_chunks():
    generator = torch.Generator().manual_seed(0)
    sessions = torch.randn(600, 16, generator=generator) * 3  # 600 rows: chunks of 256, 256, 88
    items = torch.randn(50, 16, generator=generator)
    target = torch.randint(0, 50, (600,), generator=generator)
    grads = []
    for loss_of in (
        lambda s, i: ChunkedSoftmaxCE.apply(s, i, target, 256),
        lambda s, i: F.cross_entropy(s @ i.T, target),
    ):
        s, i = sessions.clone().requires_grad_(), items.clone().requires_grad_()
        loss = loss_of(s, i)
        (2 * loss).backward()  # a scaled upstream gradient must scale both gradients
        grads.append((loss.detach(), s.grad, i.grad))
    for ours, torchs in zip(*grads, strict=True):
        torch.testing.assert_close(ours, torchs, rtol=1e-5, atol=1e-6)


def test_fast_dropout_keeps_each_element_with_probability_1_minus_p():
    for p in (0.2, 0.5):
        dropout = FastDropout(p)
        dropout.bits = np.random.default_rng(1)
        x = torch.ones(400, 1000)
        y = dropout(x)
        kept = (y != 0).float()
        assert abs(kept.mean().item() - (1 - p)) < 0.003
        torch.testing.assert_close(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
        assert abs(y.mean().item() - 1.0) < 0.01  # unbiased, as nn.Dropout
        # independent draws: neighbouring elements and successive calls do not repeat masks
        assert abs((kept[:, 1:] * kept[:, :-1]).mean().item() - (1 - p) ** 2) < 0.003
        assert not torch.equal(kept, (dropout(x) != 0).float())
    dropout.eval()
    assert torch.equal(dropout(x), x)
