import pytest
import torch
import torch.nn.functional as F

from xvector.nets.same_conv import SameConvReluBN, pad_same


@pytest.mark.parametrize("mode", ["reflect", "zeros"])
def test_padding_each_utterance_equals_padding_it_alone(mode):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 20)
    lens = torch.tensor([20, 13, 5, 3])
    for i, n in enumerate(lens.tolist()):
        x[i, :, n:] = 1e3  # batch padding must never be read
    for pad in (1, 2):
        padded = pad_same(x, pad, mode, lens)
        assert padded.shape == (4, 3, 20 + 2 * pad)
        for i, n in enumerate(lens.tolist()):
            alone = F.pad(x[i : i + 1, :, :n], (pad, pad), mode="reflect" if mode == "reflect" else "constant")
            torch.testing.assert_close(padded[i : i + 1, :, : n + 2 * pad], alone)


def test_layer_in_a_padded_batch_equals_alone_and_refuses_bad_options():
    torch.manual_seed(0)
    layer = SameConvReluBN(3, 5, kernel_size=3, dilation=2, padding_mode="reflect", negative_slope=0.01).eval()
    x, lens = torch.randn(2, 3, 16), torch.tensor([16, 7])
    out = layer(x, lens)
    torch.testing.assert_close(out[1:, :, :7], layer(x[1:, :, :7]))
    with pytest.raises(ValueError, match="odd"):
        SameConvReluBN(3, 5, kernel_size=2)
    with pytest.raises(ValueError, match="padding mode"):
        SameConvReluBN(3, 5, padding_mode="circular")
