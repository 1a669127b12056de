"""xvector.data.channel: the biquad sections against torchaudio's, the cascade's response, RandomChannel."""

import math

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from xvector.data.batch_augment import collate_planned
from xvector.data.channel import (
    BatchedChannel,
    RandomChannel,
    biquad_response,
    filter_biquads,
    pass_biquad,
    peaking_biquad,
)

SR = 16000
Q_BUTTER = 1 / math.sqrt(2)


def test_cascade_filters_as_torchaudio_lfilter_does():
    x = 0.05 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f0, gain, q, low, high = [700.0, 2500.0], [8.0, -10.0], [1.5, 0.6], [250.0, 60.0], [3400.0, 6500.0]
    want = torch.stack([
        AF.lowpass_biquad(AF.highpass_biquad(AF.equalizer_biquad(x[i], SR, f0[i], gain[i], q[i]), SR, low[i], Q_BUTTER),
                          SR, high[i], Q_BUTTER) for i in range(2)])
    t = torch.tensor
    pb, pa = peaking_biquad(t(f0), t(gain), t(q), SR)
    hb, ha = pass_biquad(t(low), SR, "high")
    lb, la = pass_biquad(t(high), SR, "low")
    b, a = torch.stack([pb, hb, lb], 1), torch.stack([pa, ha, la], 1)  # (2, 3 sections, 3)
    got = filter_biquads(x, b, a, keep_power=False)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, atol=1e-8, rtol=0)  # torchaudio rounds its coefficients
    torch.testing.assert_close(filter_biquads(x.float(), b, a, keep_power=False), want.float(), atol=2e-6, rtol=0)


def test_section_responses_at_their_frequencies():
    n_fft = 1600  # 10 Hz bins
    b, a = peaking_biquad(torch.tensor([1000.0, 1000.0]), torch.tensor([-9.0, 0.0]), torch.tensor([1.0, 1.0]), SR)
    h = biquad_response(b, a, n_fft)
    assert 20 * math.log10(h[0, 100].abs()) == pytest.approx(-9.0, abs=1e-9)
    torch.testing.assert_close(h[1], torch.ones_like(h[1]), atol=1e-12, rtol=0)  # 0 dB: the identity
    for kind, cutoff, passband in (("high", 300.0, 700), ("low", 3000.0, 10)):
        h = biquad_response(*pass_biquad(torch.tensor([cutoff]), SR, kind), n_fft)[0].abs()
        assert 20 * math.log10(h[int(cutoff / 10)]) == pytest.approx(-3.0103, abs=1e-3)  # Butterworth corner
        assert h[passband] == pytest.approx(1.0, abs=0.02) and h[0 if kind == "high" else 800] < 1e-6


def test_random_channel_is_seeded_keeps_power_and_silence_and_draws_in_its_ranges():
    ch = RandomChannel(bands=2, gain_db=(-6, 6), f0_hz=(200, 5000), q=(0.7, 1.4), low_cut_hz=(50, 300),
                       high_cut_hz=(3500, 7000))
    wav = torch.randn(4000, generator=torch.Generator().manual_seed(1)) * 0.1
    y1, y2 = ch(wav, np.random.default_rng(5)), ch(wav, np.random.default_rng(5))
    assert torch.equal(y1, y2) and not torch.allclose(y1, wav, atol=1e-2)
    assert float(y1.pow(2).mean()) == pytest.approx(float(wav.pow(2).mean()), rel=1e-4)
    assert torch.equal(ch(torch.zeros(4000), np.random.default_rng(5)), torch.zeros(4000))
    rng = np.random.default_rng(0)
    draws = [ch.draw(4000, rng) for _ in range(200)]
    f0 = np.array([d["f0"] for d in draws])
    assert f0.shape == (200, 2) and 200 <= f0.min() and f0.max() <= 5000
    assert all(-6 <= g <= 6 for d in draws for g in d["gain_db"])
    assert all(0.7 <= q <= 1.4 for d in draws for q in d["q"])
    assert all(50 <= d["low_hz"] <= 300 and 3500 <= d["high_hz"] <= 7000 for d in draws)
    assert RandomChannel(high_cut_hz=(3000, 8000), sample_rate=8000).high == (3000, 3600)  # below Nyquist


def test_batched_channel_is_each_rows_cpu_channel():
    ch = RandomChannel(prob=1.0)
    gen = torch.Generator().manual_seed(2)
    wavs = [0.1 * torch.randn(3000, generator=gen) for _ in range(3)]
    rng = np.random.default_rng(3)
    plans = [ch.plan(3000, rng) for _ in wavs]
    items = [{"wav": w, "utt": str(i), "label": 0, "speed": 0, "aug": [p[0][1]]}
             for i, (w, p) in enumerate(zip(wavs, plans))]
    batch = collate_planned(items)
    assert batch["aug"][0]["f0"].dtype == torch.float32  # drawn numbers stay numbers
    got = BatchedChannel(SR)(batch["wav"], batch["aug"][0])
    want = torch.stack([ch.apply(w, p[0][1]) for w, p in zip(wavs, plans)])
    torch.testing.assert_close(got, want, atol=1e-7, rtol=0)


@pytest.mark.parametrize("kwargs", [{"gain_db": (3, -3)}, {"f0_hz": (0, 100)}, {"bands": 0}, {"q": (1,)}])
def test_random_channel_refuses_bad_ranges(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RandomChannel(**kwargs)
