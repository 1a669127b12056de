import math

import torch

from xvector.losses.margin import AAMSoftmax, Softmax


def test_aam_known_answer():
    head = AAMSoftmax(in_dim=2, num_classes=2, scale=10.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    theta = 0.3
    x = torch.tensor([[math.cos(theta), math.sin(theta)]]) * 7.0  # norm must not matter
    logits = head(x, torch.tensor([0]))
    torch.testing.assert_close(logits, torch.tensor([[10 * math.cos(theta + 0.5), 10 * math.sin(theta)]]))
    # without labels: plain scaled cosine
    torch.testing.assert_close(head(x), torch.tensor([[10 * math.cos(theta), 10 * math.sin(theta)]]))


def test_aam_fallback_past_pi_minus_m_is_monotone():
    head = AAMSoftmax(in_dim=2, num_classes=1, scale=1.0, margin=0.5)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0]]))
    thetas = torch.linspace(0, math.pi, 200)
    x = torch.stack([thetas.cos(), thetas.sin()], 1)
    target = head(x, torch.zeros(200, dtype=torch.long))[:, 0]
    assert (target[1:] <= target[:-1] + 1e-6).all()  # decreasing in theta everywhere


def test_margin_lowers_target_logit_and_trains():
    torch.manual_seed(0)
    head = AAMSoftmax(in_dim=8, num_classes=4, scale=16, margin=0.2)
    x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
    with_m, without = head(x, y), head(x)
    assert (with_m.gather(1, y[:, None]) < without.gather(1, y[:, None])).all()
    loss = torch.nn.functional.cross_entropy(with_m, y)
    loss.backward()
    assert head.weight.grad is not None and torch.isfinite(head.weight.grad).all()


def test_softmax_head_shapes():
    assert Softmax(8, 5)(torch.randn(3, 8)).shape == (3, 5)
