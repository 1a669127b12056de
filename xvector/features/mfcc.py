"""Kaldi-compatible MFCC (``compute-mfcc-feats``), batched over ``(B, S)`` waveforms.

Log-mel energies from the shared Kaldi front-end, a DCT-II (orthonormal, Kaldi's first row),
cepstral liftering, and c0 replaced by the raw log-energy when ``use_energy`` (Kaldi's default).
Matches ``torchaudio.compliance.kaldi.mfcc`` to float32 rounding (``tests/features/test_mfcc.py``).

Example:
    >>> import torch
    >>> mfcc = MFCC(num_ceps=30, num_mel_bins=30)
    >>> feats, frame_lens = mfcc(torch.randn(1, 16000))
    >>> feats.shape
    torch.Size([1, 98, 30])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchaudio.functional import create_dct

from xvector.features.fbank import Fbank
from xvector.features.normalize import CMN


class MFCC(nn.Module):
    """Mel-frequency cepstral coefficients with optional CMN.

    Args:
        num_ceps: cepstra kept (Kaldi v2 x-vector: 30; Kaldi default: 13).
        num_mel_bins: mel bands before the DCT (Kaldi v2: 30; default 23).
        cepstral_lifter: lifter coefficient Q (0 disables).
        use_energy: replace c0 by the frame's raw log-energy.
        energy_floor: floor on that energy (linear; Kaldi default 0 = none).
        cmn: ``"none"``, ``"utterance"`` or ``"sliding"``.
        vad: an :class:`~xvector.features.vad.EnergyVAD` to drop silent frames before the CMN,
            or None.
        **fbank: options of :class:`~xvector.features.fbank.Fbank` (``low_freq``, ``high_freq``,
            ``sample_rate``, ``dither``, ...).

    Shapes:
        ``wav (B, S)``, ``wav_lens (B,)`` → ``feats (B, T, num_ceps)``, ``frame_lens (B,)``.
    """

    def __init__(
        self,
        num_ceps: int = 13,
        num_mel_bins: int = 23,
        cepstral_lifter: float = 22.0,
        use_energy: bool = True,
        energy_floor: float = 0.0,
        cmn: str = "utterance",
        vad: nn.Module | None = None,
        **fbank,
    ) -> None:
        super().__init__()
        if num_ceps > num_mel_bins:
            raise ValueError(f"num_ceps={num_ceps} cannot exceed num_mel_bins={num_mel_bins}")
        self.fbank = Fbank(num_mel_bins=num_mel_bins, cmn="none", **fbank)
        self.num_ceps = num_ceps
        self.use_energy = use_energy
        self.log_energy_floor = math.log(energy_floor) if energy_floor > 0 else None
        dct = create_dct(num_mel_bins, num_mel_bins, "ortho")  # (n_mels, n_mfcc)
        dct[:, 0] = math.sqrt(1.0 / num_mel_bins)  # Kaldi's first basis row
        dct = dct[:, :num_ceps]
        if cepstral_lifter:
            i = torch.arange(num_ceps, dtype=torch.float32)
            dct = dct * (1.0 + 0.5 * cepstral_lifter * torch.sin(math.pi * i / cepstral_lifter))
        self.register_buffer("dct", dct, persistent=False)
        self.cmn = CMN(mode=cmn, window=self.fbank.cmn.window)
        self.vad = vad

    @property
    def out_dim(self) -> int:
        return self.num_ceps

    def raw(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cepstra before VAD and CMN ``(B, T, num_ceps)``, raw log-energy ``(B, T)``, ``frame_lens (B,)``."""
        log_mel, log_energy, frame_lens = self.fbank.log_mel(wav, wav_lens)
        feats = log_mel @ self.dct  # (B, T, num_ceps)
        if self.use_energy:
            if self.log_energy_floor is not None:
                log_energy = log_energy.clamp_min(self.log_energy_floor)
            feats = torch.cat([log_energy.unsqueeze(-1), feats[..., 1:]], dim=-1)
        return feats, log_energy, frame_lens

    def finish(self, feats: torch.Tensor, log_energy: torch.Tensor, frame_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """VAD (if any), then CMN over the frames kept."""
        if self.vad is not None:
            feats, frame_lens = self.vad(feats, log_energy, frame_lens)
        return self.cmn(feats, frame_lens), frame_lens

    def forward(self, wav: torch.Tensor, wav_lens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.finish(*self.raw(wav, wav_lens))
