import torch

from xvector.nets.pooling import StatsPooling


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
