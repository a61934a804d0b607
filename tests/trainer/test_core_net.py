"""The speed-ups inside trainer.core_net compute what they replace."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainer.core_net import ChunkedSoftmaxCE, FastDropout, sampled_softmax_ce


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


def test_sampled_softmax_estimates_the_full_cross_entropy():
    """With logQ correction, the mean sampled loss over many draws approaches the full loss
    (its log-partition is estimated from below by Jensen, so a small sample sits a bit under)."""
    generator = torch.Generator().manual_seed(3)
    sessions = torch.randn(64, 8, generator=generator)
    items = torch.randn(200, 8, generator=generator)
    target = torch.randint(1, 200, (64,), generator=generator)
    full = F.cross_entropy(sessions @ items.T, target).item()
    torch.manual_seed(0)
    large = np.mean([sampled_softmax_ce(sessions, items, target, 4000).item() for _ in range(20)])
    small = np.mean([sampled_softmax_ce(sessions, items, target, 20).item() for _ in range(200)])
    # the full softmax counts padding id 0 too; the sample draws ids 1..n-1 only
    without_padding = F.cross_entropy((sessions @ items.T)[:, 1:], target - 1).item()
    assert abs(large - without_padding) < 0.02 and abs(without_padding - full) < 0.05
    assert small < large  # fewer samples: a lower estimate of the log-partition


def test_sampled_softmax_masks_a_draw_that_is_the_target():
    sessions, items = torch.ones(1, 2), torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    torch.manual_seed(0)
    losses = {round(sampled_softmax_ce(sessions, items, torch.tensor([1]), 1).item(), 6)
              for _ in range(50)}  # fmt: skip
    # the one draw is id 1 (masked: the loss is 0) or id 2 (log(1 + 2 * e^1 / e^1) = log 3)
    assert losses == {0.0, round(float(np.log(3.0)), 6)}
