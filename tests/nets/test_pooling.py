import pytest
import torch

from xvector.nets.pooling import AttentiveStatsPooling, StatsPooling


def test_masked_pooling_equals_unpadded():
    torch.manual_seed(0)
    x = torch.randn(3, 7, 50)
    lens = torch.tensor([50, 20, 1])
    pooled = StatsPooling()(x, lens)
    for i, n in enumerate(lens.tolist()):
        ref = torch.cat([x[i, :, :n].mean(-1), x[i, :, :n].var(-1, unbiased=False).clamp_min(1e-10).sqrt()])
        torch.testing.assert_close(pooled[i], ref, atol=1e-6, rtol=1e-6)


def test_pooling_without_lengths_and_known_answer():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]])
    out = StatsPooling()(x)
    torch.testing.assert_close(out, torch.tensor([[2.5, 1.118033988749895]]))
    assert StatsPooling.out_dim(1500) == 3000


# --- attentive statistics pooling -------------------------------------------------------------


def _weighted_reference(x, alpha):
    mean = (x * alpha).sum(-1)
    std = (alpha * (x - mean[..., None]) ** 2).sum(-1).clamp_min(1e-10).sqrt()
    return torch.cat([mean, std], -1)


@pytest.mark.parametrize("channel_dependent,global_context", [(False, False), (True, False), (True, True)])
def test_attentive_pooling_padded_equals_alone(channel_dependent, global_context):
    torch.manual_seed(0)
    pool = AttentiveStatsPooling(6, attention_dim=5, channel_dependent=channel_dependent, global_context=global_context)
    x = torch.randn(3, 6, 40)
    lens = torch.tensor([40, 17, 1])
    for i, n in enumerate(lens.tolist()):
        x[i, :, n:] = 1e3  # padding garbage must get zero weight
    out = pool(x, lens)
    assert out.shape == (3, 12) and AttentiveStatsPooling.out_dim(6) == 12
    for i, n in enumerate(lens.tolist()):
        torch.testing.assert_close(out[i : i + 1], pool(x[i : i + 1, :, :n]), atol=1e-5, rtol=1e-5)


def test_attentive_pooling_known_weights():
    """Okabe's scalar attention by hand: e_t = v . tanh(W h_t + b) + k, alpha = softmax_t(e)."""
    pool = AttentiveStatsPooling(2, attention_dim=1)
    with torch.no_grad():
        pool.hidden.weight.copy_(torch.tensor([[[1.0], [0.0]]]))  # W = [1, 0]
        pool.hidden.bias.zero_()
        pool.score.weight.fill_(2.0)  # v = 2
        pool.score.bias.fill_(0.5)  # k (cancels in the softmax)
    x = torch.tensor([[[0.0, 1.0, -1.0], [3.0, 5.0, 4.0]]])  # (1, 2, 3)
    e = 2.0 * torch.tanh(x[0, 0]) + 0.5
    alpha = torch.softmax(e, 0)
    torch.testing.assert_close(pool(x), _weighted_reference(x, alpha[None, None]), atol=1e-6, rtol=1e-6)


def test_attentive_pooling_uniform_scores_equal_stats_pooling():
    pool = AttentiveStatsPooling(4, attention_dim=3, channel_dependent=True, global_context=True)
    torch.nn.init.zeros_(pool.score.weight)  # constant scores → uniform weights over valid frames
    x, lens = torch.randn(2, 4, 30), torch.tensor([30, 12])
    torch.testing.assert_close(pool(x, lens), StatsPooling()(x, lens), atol=1e-6, rtol=1e-6)


def test_attentive_pooling_gradients_finite_and_bad_sizes_raise():
    pool = AttentiveStatsPooling(4, attention_dim=3, channel_dependent=True, global_context=True)
    x = torch.randn(2, 4, 10, requires_grad=True)
    pool(x, torch.tensor([10, 3])).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[1, :, 3:] == 0).all()  # padding gets no gradient
    with pytest.raises(ValueError, match="positive"):
        AttentiveStatsPooling(0)


def test_stats_pooling_accepts_factory_call():
    assert StatsPooling(in_channels=7)(torch.ones(1, 7, 3)).shape == (1, 14)


def _concatenated_context_forward(pool: AttentiveStatsPooling, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The global-context attention as first written: the 1×1 convolution over ``[x ; mean ; std]`` (B, 3C, T)."""
    from xvector.nets.pooling import length_mask, uniform_weights, weighted_stats

    lengths = lengths.clamp_min(1)
    mask = length_mask(lengths, x.shape[-1], x)
    mean, std = weighted_stats(x, uniform_weights(x, lengths), pool.var_floor)
    context = torch.cat([mean, std], dim=1).unsqueeze(-1).expand(-1, -1, x.shape[-1])
    scores = pool.score(pool.activation(pool.hidden(torch.cat([x, context], dim=1))))
    alpha = torch.softmax(scores.masked_fill(mask == 0, float("-inf")), dim=-1)
    return torch.cat(weighted_stats(x, alpha, pool.var_floor), dim=-1)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_global_context_without_the_concatenation_is_the_same_pooling(dtype, tol):
    """ECAPA's pooling computes the context's share of the attention once per utterance: same
    weights and state_dict keys (SpeechBrain imports load as before), same outputs and gradients."""
    torch.manual_seed(0)
    pool = AttentiveStatsPooling(in_channels=12, attention_dim=8, channel_dependent=True, global_context=True).to(dtype)
    assert {k: tuple(v.shape) for k, v in pool.state_dict().items()} == {
        "hidden.weight": (8, 36, 1), "hidden.bias": (8,), "score.weight": (12, 8, 1), "score.bias": (12,)}
    x = torch.randn(3, 12, 40, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([40, 25, 7])
    out = pool(x, lengths)
    ref = _concatenated_context_forward(pool, x, lengths)
    torch.testing.assert_close(out, ref, rtol=tol, atol=tol)
    grads = torch.autograd.grad(out.square().sum(), [x, *pool.parameters()])
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, *pool.parameters()])
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol)
