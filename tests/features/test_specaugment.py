"""SpecAugment masking: bands of bounded width inside the valid frames, training mode only."""

import pytest
import torch

from xvector.features.specaugment import SpecAugment


def _bands(row: torch.Tensor) -> list[tuple[int, int]]:
    """Runs of True in a 1-D bool tensor, as (start, length)."""
    runs, start = [], None
    for i, v in enumerate(row.tolist() + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i - start))
            start = None
    return runs


def test_masks_are_bounded_bands_inside_valid_frames():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, max_freq_width=5, time_masks=3, max_time_width=7)
    B, T, F = 64, 50, 20
    frame_lens = torch.randint(10, T + 1, (B,))
    feats = torch.ones(B, T, F)
    out = aug(feats, frame_lens)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    zero = out == 0
    for b in range(B):
        n = int(frame_lens[b])
        freq_masked = zero[b, :n].all(0)  # (F,) bins masked in every valid frame
        time_masked = zero[b, :, ~freq_masked].all(1) if (~freq_masked).any() else zero[b, :, 0]
        # every zero is explained by a masked bin or a masked frame
        assert torch.equal(zero[b], freq_masked[None, :] | time_masked[:, None])
        assert sum(w for _, w in _bands(freq_masked)) <= 2 * 5
        assert all(w <= 2 * 5 for _, w in _bands(freq_masked))
        assert not time_masked[n:].any()  # padding frames are never picked
        assert sum(w for _, w in _bands(time_masked)) <= 3 * 7
    assert zero.any(2).any(1).float().mean() > 0.9  # nearly every utterance got some mask


def test_identity_in_eval_and_with_no_masks():
    feats = torch.randn(3, 40, 24)
    lens = torch.tensor([40, 30, 20])
    aug = SpecAugment(freq_masks=2, time_masks=2)
    assert aug.eval()(feats, lens) is feats
    assert SpecAugment()(feats, lens) is feats


def test_full_width_masks_everything_and_value_is_used():
    torch.manual_seed(1)
    aug = SpecAugment(freq_masks=50, max_freq_width=8, value=-3.0)  # many bands: surely some
    out = aug(torch.zeros(2, 10, 8))
    assert ((out == 0) | (out == -3.0)).all() and (out == -3.0).any()


def test_seeded_masks_repeat_and_bad_arguments_raise():
    aug = SpecAugment(freq_masks=1, time_masks=1)
    torch.manual_seed(5)
    a = aug(torch.ones(4, 30, 16))
    torch.manual_seed(5)
    torch.testing.assert_close(aug(torch.ones(4, 30, 16)), a, rtol=0, atol=0)
    with pytest.raises(ValueError, match="time_masks=-1"):
        SpecAugment(time_masks=-1)
