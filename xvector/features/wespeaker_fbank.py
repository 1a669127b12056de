"""WeSpeaker's front-end: Kaldi fbank with a Hamming window, then utterance mean normalisation.

WeSpeaker (``wespeaker/dataset/processor.py: compute_fbank`` and ``apply_cmvn``) computes
``torchaudio.compliance.kaldi.fbank(wav * 2**15, window_type="hamming", use_energy=False,
dither=...)`` and subtracts each utterance's mean. That is :class:`~xvector.features.fbank.Fbank`
(Kaldi's pipeline, utterance CMN) with a Hamming window in place of Kaldi's default Povey window;
everything else (25 / 10 ms framing with ``snip_edges``, DC removal, pre-emphasis 0.97, mel banks
from 20 Hz to Nyquist) is the same; it dithers in training only (``eval_dither=False``: WeSpeaker's
``extract.py`` sets dither 0 for embedding). Models imported from WeSpeaker
(:mod:`xvector.importers.wespeaker`) use this front-end.

Example:
    >>> import torch, torchaudio
    >>> wav = 0.1 * torch.randn(16000)
    >>> ours, _ = WeSpeakerFbank(num_mel_bins=80).eval()(wav[None], torch.tensor([16000]))
    >>> ref = torchaudio.compliance.kaldi.fbank(wav[None] * 32768, num_mel_bins=80, dither=0.0,
    ...                                          window_type="hamming", use_energy=False)
    >>> bool(torch.allclose(ours[0], ref - ref.mean(0), atol=1e-3))
    True
"""

from __future__ import annotations

import torch

from xvector.features.fbank import Fbank


class WeSpeakerFbank(Fbank):
    """Kaldi fbank with a (symmetric) Hamming window and utterance CMN, as WeSpeaker extracts it.

    Args:
        num_mel_bins: ``fbank_args.num_mel_bins`` (80 in WeSpeaker's VoxCeleb recipes).
        sample_rate: in Hz.
        **kwargs: further :class:`~xvector.features.fbank.Fbank` options (``dither``,
            ``frame_length_ms``, ``frame_shift_ms``, ``cmn``...).

    Shapes:
        ``wav (B, S)``, ``wav_lens (B,)`` samples → ``feats (B, T, num_mel_bins)``, ``frame_lens (B,)``.
    """

    def __init__(self, num_mel_bins: int = 80, sample_rate: int = 16000, **kwargs) -> None:
        kwargs.setdefault("eval_dither", False)  # WeSpeaker's extract.py sets dither 0.0
        super().__init__(num_mel_bins=num_mel_bins, sample_rate=sample_rate, **kwargs)
        # Kaldi's "hamming": 0.54 - 0.46 cos(2 pi n / (N - 1)), symmetric.
        n = self.frontend.frame_length
        self.frontend.window = torch.hamming_window(n, periodic=False, dtype=torch.float64).float()
