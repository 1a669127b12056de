import math

import pytest
import torch

from xvector.losses.margin import AAMSoftmax, AMSoftmax, Softmax, SubCenterAAMSoftmax


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


def test_am_softmax_known_answer():
    """CosFace by hand: target s * (cos(theta) - m), others s * cos(theta)."""
    head = AMSoftmax(in_dim=2, num_classes=3, scale=30.0, margin=0.35)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    x = torch.tensor([[3.0, 4.0], [0.6, -0.8]])  # cosines (0.6, 0.8, -0.6) and (0.6, -0.8, -0.6)
    logits = head(x, torch.tensor([1, 2]))
    expected = 30.0 * torch.tensor([[0.6, 0.8 - 0.35, -0.6], [0.6, -0.8, -0.6 - 0.35]])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(head(x), 30.0 * torch.tensor([[0.6, 0.8, -0.6], [0.6, -0.8, -0.6]]), atol=1e-5, rtol=1e-6)
    head.margin = 0.0  # a scheduler's start value: plain scaled cosine
    torch.testing.assert_close(head(x, torch.tensor([1, 2])), head(x))


def test_subcenter_with_one_centre_equals_aam():
    torch.manual_seed(0)
    aam = AAMSoftmax(in_dim=8, num_classes=5, scale=32.0, margin=0.2)
    sub = SubCenterAAMSoftmax(in_dim=8, num_classes=5, scale=32.0, margin=0.2, sub_centers=1)
    sub.load_state_dict(aam.state_dict())  # same parameter names and shapes
    x, y = torch.randn(6, 8), torch.randint(0, 5, (6,))
    torch.testing.assert_close(sub(x, y), aam(x, y), atol=0, rtol=0)
    torch.testing.assert_close(sub(x), aam(x), atol=0, rtol=0)


def test_subcenter_takes_the_closest_centre():
    """K = 2: class 0's centres at angles 0 and pi/2, class 1's at pi and -pi/2."""
    head = SubCenterAAMSoftmax(in_dim=2, num_classes=2, scale=10.0, margin=0.3, sub_centers=2)
    assert head.weight.shape == (4, 2)
    with torch.no_grad():  # row c * K + k is sub-centre k of class c
        head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    theta = 1.2  # closer to class 0's second centre (pi/2) than to its first (0)
    x = torch.tensor([[math.cos(theta), math.sin(theta)]])
    cos0 = math.cos(math.pi / 2 - theta)  # best cosine of class 0
    cos1 = max(math.cos(math.pi - theta), math.cos(theta + math.pi / 2))  # best of class 1
    torch.testing.assert_close(head(x), 10 * torch.tensor([[cos0, cos1]]), atol=1e-6, rtol=1e-6)
    target = 10 * math.cos(math.pi / 2 - theta + 0.3)  # margin on the closest sub-centre's angle
    torch.testing.assert_close(head(x, torch.tensor([0])), torch.tensor([[target, 10 * cos1]]), atol=1e-5, rtol=1e-6)


def test_margin_heads_reject_bad_arguments():
    with pytest.raises(ValueError, match="sub_centers"):
        SubCenterAAMSoftmax(4, 3, sub_centers=0)
    with pytest.raises(ValueError, match="margin"):
        AMSoftmax(4, 3, margin=-0.1)


def test_head_configs_build_the_heads(compose_config, tmp_path):
    from hydra.utils import instantiate

    for name, cls in (("am", AMSoftmax), ("aam_subcenter", SubCenterAAMSoftmax), ("aam", AAMSoftmax)):
        cfg = compose_config("train", [f"head={name}", f"paths.output_dir={tmp_path}"])
        head = instantiate(cfg.head)(in_dim=4, num_classes=3)
        assert type(head) is cls and head.margin == pytest.approx(0.2)
    assert instantiate(compose_config("train", ["head=aam_subcenter"]).head)(in_dim=4, num_classes=3).weight.shape == (9, 4)
