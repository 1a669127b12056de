"""Kaldi-compatible log-mel filterbank features, batched over ``(B, S)`` waveforms.

The frame pipeline is Kaldi's (``compute-fbank-feats``), as in ``torchaudio.compliance.kaldi``:
framing with ``snip_edges=True`` → dither → DC removal → raw log-energy →
pre-emphasis → Povey window → zero-pad to a power of two → |FFT|² → mel banks → log.
``torchaudio.compliance.kaldi.fbank`` takes one utterance at a time; this module runs a padded
batch in one pass and reports the valid frame count of each utterance, and it matches
torchaudio's output to float32 rounding (see ``tests/features/test_fbank.py``).

Because every frame depends only on its own samples (``snip_edges=True``), the valid frames of a
padded utterance equal those of the unpadded one: padding only adds frames past ``frame_lens``.

**Dither in training and at extraction alike**, as Kaldi's ``compute-fbank-feats`` does (dither
1.0 at both). Without it, digital silence (exact zeros: TTS output, VoIP, edited or trimmed
files) gives ``log(eps)`` frames at extraction that a dithered training run never saw, far
outside the range of its features. In training the dither is random; in ``eval()`` it is a fixed
Gaussian pattern of :data:`DITHER_PERIOD` frames, the same for every utterance (frame ``t`` gets
row ``t mod DITHER_PERIOD``), so extraction stays deterministic, batched equals unbatched, and
the ONNX / TorchScript graphs carry the same pattern as a constant. ``eval_dither=False`` gives the
old extraction without it.

Example:
    >>> import torch
    >>> fbank = Fbank(num_mel_bins=80)
    >>> feats, frame_lens = fbank(torch.randn(2, 16000), torch.tensor([16000, 8000]))
    >>> feats.shape, frame_lens.tolist()
    (torch.Size([2, 98, 80]), [98, 48])
"""

from __future__ import annotations

import torch
from torch import nn
from torchaudio.compliance.kaldi import get_mel_banks

from xvector.features.normalize import CMN

_EPS = torch.finfo(torch.float32).eps
#: Frames in the fixed dither pattern of eval mode (1 s at a 10 ms shift); chunked extraction
#: cuts long recordings at multiples of it, so every frame meets the same row as unchunked.
DITHER_PERIOD = 100
_DITHER_SEED = 20180415


def num_frames(num_samples: torch.Tensor, frame_length: int, frame_shift: int) -> torch.Tensor:
    """Frames Kaldi makes from ``num_samples`` with ``snip_edges=True`` (0 if too short)."""
    return torch.clamp((num_samples - frame_length) // frame_shift + 1, min=0)


class KaldiFrontEnd(nn.Module):
    """Shared framing, windowing and power spectrum of Kaldi's Fbank and MFCC.

    Args:
        sample_rate: audio sample rate in Hz.
        frame_length_ms: window length in ms (Kaldi default 25).
        frame_shift_ms: hop in ms (Kaldi default 10).
        dither: std of the Gaussian dither added to each frame, in units of the scaled
            waveform (Kaldi's default 1.0 = one 16-bit step): random in training, a fixed
            pattern in ``eval()`` (see the module docstring).
        eval_dither: apply the fixed dither pattern in ``eval()`` (default, as Kaldi dithers at
            train and test); False leaves evaluation features undithered.
        preemphasis: pre-emphasis coefficient.
        remove_dc_offset: subtract each frame's mean.
        wav_scale: factor applied to the waveform first. Kaldi reads 16-bit audio as integers
            (±32768); soundfile gives ±1.0, so 32768 reproduces Kaldi's feature values (and its
            energy floor and dither scale) exactly.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        dither: float = 1.0,
        preemphasis: float = 0.97,
        remove_dc_offset: bool = True,
        wav_scale: float = 32768.0,
        eval_dither: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.frame_length = int(sample_rate * frame_length_ms / 1000)
        self.frame_shift = int(sample_rate * frame_shift_ms / 1000)
        self.n_fft = 1 << (self.frame_length - 1).bit_length()  # round_to_power_of_two
        self.dither = dither
        self.eval_dither = eval_dither
        gen = torch.Generator().manual_seed(_DITHER_SEED)
        pattern = torch.randn(DITHER_PERIOD, self.frame_length, generator=gen)  # (P, L), unit std
        self.register_buffer("dither_pattern", pattern, persistent=False)
        self.preemphasis = preemphasis
        self.remove_dc_offset = remove_dc_offset
        self.wav_scale = wav_scale
        # Povey window: Hann (symmetric) to the power 0.85.
        window = torch.hann_window(self.frame_length, periodic=False, dtype=torch.float64).pow(0.85)
        self.register_buffer("window", window.float(), persistent=False)

    def frames(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame and window a ``(B, S)`` batch.

        Returns:
            ``power (B, T, n_fft // 2 + 1)`` spectrum and ``log_energy (B, T)`` (raw, before
            pre-emphasis, floored at float eps as Kaldi does).
        """
        x = wav.float() * self.wav_scale
        x = x.unfold(-1, self.frame_length, self.frame_shift)  # (B, T, L)
        if self.dither > 0 and self.training:
            x = x + torch.randn_like(x) * self.dither
        elif self.dither > 0 and self.eval_dither:
            rows = torch.arange(x.shape[-2], device=x.device) % DITHER_PERIOD
            x = x + self.dither_pattern[rows] * self.dither  # (T, L), the same for every utterance
        if self.remove_dc_offset:
            x = x - x.mean(dim=-1, keepdim=True)
        log_energy = x.pow(2).sum(dim=-1).clamp_min(_EPS).log()  # (B, T)
        if self.preemphasis != 0:
            prev = torch.cat([x[..., :1], x[..., :-1]], dim=-1)
            x = x - self.preemphasis * prev
        x = x * self.window
        spec = torch.fft.rfft(x, n=self.n_fft)  # (B, T, n_fft // 2 + 1)
        power = spec.real.pow(2) + spec.imag.pow(2)
        return power, log_energy

    def frame_lens(self, wav_lens: torch.Tensor) -> torch.Tensor:
        """Valid frames per utterance for ``wav_lens (B,)`` samples."""
        return num_frames(wav_lens, self.frame_length, self.frame_shift)


class Fbank(nn.Module):
    """Log-mel filterbank (Kaldi ``compute-fbank-feats``) with optional CMN.

    Args:
        num_mel_bins: number of mel bands (e.g. 80 as WeSpeaker, 24 as SpeechBrain/Snyder).
        sample_rate: audio sample rate in Hz.
        low_freq: lowest mel-bank edge in Hz.
        high_freq: highest edge in Hz; ``<= 0`` means Nyquist plus this offset (Kaldi).
        cmn: ``"none"``, ``"utterance"`` or ``"sliding"`` (Kaldi's 300-frame centred window).
        cmn_window: window of the sliding CMN in frames.
        vad: an :class:`~xvector.features.vad.EnergyVAD` to drop silent frames before the CMN
            (Kaldi's ``select-voiced-frames``), or None to keep every frame.
        **frontend: framing options of :class:`KaldiFrontEnd` (``dither``, ``frame_shift_ms``...).

    Shapes:
        ``wav (B, S)``, ``wav_lens (B,)`` samples → ``feats (B, T, num_mel_bins)``,
        ``frame_lens (B,)``.
    """

    def __init__(
        self,
        num_mel_bins: int = 80,
        sample_rate: int = 16000,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        cmn: str = "utterance",
        cmn_window: int = 300,
        vad: nn.Module | None = None,
        **frontend,
    ) -> None:
        super().__init__()
        self.frontend = KaldiFrontEnd(sample_rate=sample_rate, **frontend)
        self.vad = vad
        self.num_mel_bins = num_mel_bins
        banks, _ = get_mel_banks(
            num_mel_bins, self.frontend.n_fft, float(sample_rate), low_freq, high_freq, 100.0, -500.0, 1.0
        )
        # get_mel_banks covers n_fft/2 bins; Kaldi's Nyquist bin has zero weight.
        banks = torch.nn.functional.pad(banks, (0, 1))  # (num_mel_bins, n_fft // 2 + 1)
        self.register_buffer("mel_banks", banks.T.contiguous(), persistent=False)
        self.cmn = CMN(mode=cmn, window=cmn_window)

    @property
    def out_dim(self) -> int:
        return self.num_mel_bins

    def log_mel(
        self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Un-normalised log-mel energies ``(B, T, F)``, raw log-energy ``(B, T)``, ``frame_lens (B,)``."""
        if wav_lens is None:
            wav_lens = torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
        power, log_energy = self.frontend.frames(wav)
        log_mel = (power @ self.mel_banks).clamp_min(_EPS).log()  # (B, T, F)
        return log_mel, log_energy, self.frontend.frame_lens(wav_lens)

    def raw(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features before VAD and CMN ``(B, T, F)``, raw log-energy ``(B, T)``, ``frame_lens (B,)``.

        Frame-local, so features of consecutive chunks of a recording concatenate to the whole
        recording's (what :func:`xvector.inference.embed.chunked_features` relies on).
        """
        return self.log_mel(wav, wav_lens)

    def finish(self, feats: torch.Tensor, log_energy: torch.Tensor, frame_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAD (if any), then CMN over the frames kept: :meth:`raw`'s output → ``forward``'s."""
        if self.vad is not None:
            feats, frame_lens = self.vad(feats, log_energy, frame_lens)
        return self.cmn(feats, frame_lens), frame_lens

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.finish(*self.raw(wav, wav_lens))
