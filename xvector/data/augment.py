"""Online waveform augmentation: additive noise (MUSAN), reverberation (RIRs), speed perturbation
(and a random recording channel: :mod:`xvector.data.channel`).

Transforms are ``nn.Module`` s called as ``transform(wav (S,), rng) -> (S,)`` inside the data
workers (:class:`~xvector.data.datasets.CropDataset`), with a ``numpy.random.Generator`` that
the dataset seeds per ``(seed, epoch, utterance)``, so an augmented epoch is the same for any
number of workers. Each transform fires with its own ``prob``; :class:`Compose` chains them
independently, :class:`OneOf` applies at most one (Kaldi's and WeSpeaker's recipes give each
augmented copy a single kind of corruption).

The SNR ranges of ``configs/augment/musan_rir.yaml`` span Kaldi's ``egs/voxceleb/v2/run.sh``
choices: noise ``--fg-snrs 15:10:5:0``, music ``--bg-snrs 15:10:8:5``, babble ``--bg-snrs
20:17:15:13`` over ``--num-bg-noises 3:4:5:6:7`` speech files. Here SNRs are uniform over
those ranges and babble's summed speech is scaled to one SNR, as in WeSpeaker (Kaldi draws an
SNR per babble source and adds foreground noises at 1 s intervals).

Each leaf transform splits into :meth:`Transform.draw` (its random numbers, from the item's
``rng``) and :meth:`Transform.apply` (the signal processing). :meth:`Transform.plan` makes the
same draws as ``forward`` without touching audio, so the data workers can plan the augmentation
of a crop and :class:`~xvector.data.batch_augment.BatchAugment` apply it to the whole batch on
the training device (``data.augment_on=device``): the same numbers, hence the same
distributions and, for one seed, the same augmented crops as this CPU path.

Example:
    >>> import torch
    >>> wav, noise = torch.randn(16000), torch.randn(16000)
    >>> mixed = mix_at_snr(wav, noise, snr_db=10.0)
    >>> round(float(10 * torch.log10(wav.pow(2).mean() / (mixed - wav).pow(2).mean())), 3)
    10.0
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch import nn

from xvector.data.audio import audio_info, load_audio

# Kaldi's egs/voxceleb/v2 reverberates with the small and medium simulated rooms only.
KALDI_RIR_PATTERNS = ("simulated_rirs/smallroom/*/*.wav", "simulated_rirs/mediumroom/*/*.wav")


def list_files(root: str | os.PathLike, patterns: str | Sequence[str]) -> list[Path]:
    """Sorted files under ``root`` matching glob ``patterns`` (``**`` recurses).

    Raises:
        ValueError: naming ``root`` and the patterns when nothing matches.
    """
    root = Path(root)
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    files = sorted({p for pat in patterns for p in root.glob(pat) if p.is_file()})
    if not files:
        raise ValueError(f"{root}: no files match {patterns}")
    return files


def mix_at_snr(wav: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``wav + g * noise`` with ``g`` set so that ``10 log10(P(wav) / P(g * noise)) = snr_db``.

    Powers are means of squares over the whole ``(S,)`` signals; silent noise or silent speech
    leaves ``wav`` unchanged.
    """
    p_wav, p_noise = wav.double().pow(2).mean(), noise.double().pow(2).mean()
    if p_wav <= 0 or p_noise <= 0:
        return wav
    gain = torch.sqrt(p_wav / (p_noise * 10 ** (snr_db / 10)))
    return (wav.double() + gain * noise.double()).to(wav.dtype)


def reverberate(wav: torch.Tensor, rir: torch.Tensor) -> torch.Tensor:
    """Convolve ``wav (S,)`` with ``rir (R,)``, aligned at the direct path, power kept.

    The output starts at the RIR's largest-magnitude tap (the direct path), so reverberation
    adds no delay, and is rescaled to the input's mean power. A delta RIR is the identity.
    """
    peak = int(rir.abs().argmax())
    wet = AF.fftconvolve(wav.double(), rir.double())[peak : peak + len(wav)]  # (S,)
    p_wav, p_wet = wav.double().pow(2).mean(), wet.pow(2).mean()
    if p_wet > 0:
        wet = wet * torch.sqrt(p_wav / p_wet)
    return wet.to(wav.dtype)


def speed_perturb(wav: torch.Tensor, speed: float, sample_rate: int = 16000) -> torch.Tensor:
    """Play ``wav (S,)`` ``speed`` times faster (pitch and tempo, like ``sox speed``).

    Resamples from ``speed * sample_rate`` to ``sample_rate``: the output has
    ``ceil(S / speed)`` samples (e.g. 11000 samples at 1.1 → 10000).
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if speed == 1.0:
        return wav
    return AF.resample(wav, int(round(speed * sample_rate)), sample_rate)


def _crop_or_wrap(x: np.ndarray, num_samples: int) -> np.ndarray:
    return x[:num_samples] if len(x) >= num_samples else np.resize(x, num_samples)


class Transform(nn.Module):
    """Base: ``forward(wav, rng)`` applies :meth:`transform` with probability ``prob``.

    The coin is always drawn first, so a transform's draws stay aligned whatever ``prob`` is.
    A leaf implements :meth:`draw` and :meth:`apply` (or overrides :meth:`transform` alone, which
    then runs in the data workers only).
    """

    def __init__(self, prob: float = 1.0) -> None:
        super().__init__()
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.prob = prob

    def draw(self, num_samples: int, rng: np.random.Generator) -> dict:
        """The random parameters of one application to a ``num_samples`` crop (numbers and lists)."""
        raise NotImplementedError(f"{type(self).__name__} has no draw(): it cannot be planned for the device")

    def apply(self, wav: torch.Tensor, params: dict) -> torch.Tensor:
        """Apply to ``wav (S,)`` with the parameters :meth:`draw` gave."""
        raise NotImplementedError

    def transform(self, wav: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return self.apply(wav, self.draw(len(wav), rng))

    def forward(self, wav: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        return self.transform(wav, rng) if rng.random() < self.prob else wav

    def plan(self, num_samples: int, rng: np.random.Generator) -> list[tuple[Transform, dict]]:
        """What ``forward`` would do to a ``num_samples`` crop, drawing the same numbers from
        ``rng``: the leaf transforms that fire, in the order they apply, with their parameters."""
        return self.plan_fired(num_samples, rng) if rng.random() < self.prob else []

    def plan_fired(self, num_samples: int, rng: np.random.Generator) -> list[tuple[Transform, dict]]:
        """:meth:`plan` once the coin has come up (as :meth:`transform` is ``forward`` after it)."""
        return [(self, self.draw(num_samples, rng))]

    def leaves(self) -> list[Transform]:
        """The leaf transforms, in the order they would apply (depth first)."""
        return [self]

    def batched(self) -> nn.Module:
        """The batched, on-device form of this leaf (:mod:`xvector.data.batch_augment`)."""
        raise ValueError(f"{type(self).__name__} has no batched form for data.augment_on=device; "
                         "use data.augment_on=workers")


class AddNoise(Transform):
    """Add ``num_sources`` random noise files, summed, at an SNR drawn from ``snr_db``.

    Args:
        noise_dir: folder of noise files, e.g. ``musan/noise`` (MUSAN layout).
        snr_db: ``(low, high)`` dB; the SNR is uniform in it, re the crop's mean power.
        num_sources: ``(low, high)`` inclusive number of files summed (babble: ``(3, 7)``).
        prob: probability of adding noise to an item.
        sample_rate: in Hz; every noise file must have it.
        pattern: glob of the files under ``noise_dir``.
    """

    def __init__(self, noise_dir: str | os.PathLike, snr_db: Sequence[float] = (0.0, 15.0),
                 num_sources: Sequence[int] = (1, 1), prob: float = 1.0,
                 sample_rate: int = 16000, pattern: str = "**/*.wav") -> None:
        super().__init__(prob)
        if len(snr_db) != 2 or snr_db[0] > snr_db[1]:
            raise ValueError(f"snr_db must be (low, high) with low <= high, got {snr_db}")
        if len(num_sources) != 2 or not 1 <= num_sources[0] <= num_sources[1]:
            raise ValueError(f"num_sources must be (low, high) with 1 <= low <= high, got {num_sources}")
        self.files = list_files(noise_dir, pattern)
        self.snr_db = (float(snr_db[0]), float(snr_db[1]))
        self.num_sources = (int(num_sources[0]), int(num_sources[1]))
        self.sample_rate = sample_rate
        self.lengths = [audio_info(f)[0] for f in self.files]

    def draw(self, num_samples: int, rng: np.random.Generator) -> dict:
        """Source count, files, crop starts and SNR: ``{"index": [..], "start": [..], "snr_db": x}``."""
        k = int(rng.integers(self.num_sources[0], self.num_sources[1] + 1))
        picks = rng.choice(len(self.files), size=k, replace=k > len(self.files))
        starts = []
        for i in picks:
            n = self.lengths[int(i)]
            starts.append(int(rng.integers(0, n - num_samples + 1)) if n > num_samples else 0)
        return {"index": [int(i) for i in picks], "start": starts, "snr_db": float(rng.uniform(*self.snr_db))}

    def read_noise(self, index: int, num_samples: int, start: int) -> np.ndarray:
        """``num_samples`` of noise file ``index`` from ``start``, wrapped when the file is shorter."""
        n = self.lengths[index]
        x = load_audio(self.files[index], self.sample_rate, start, min(n, num_samples))
        return _crop_or_wrap(x, num_samples)

    def apply(self, wav: torch.Tensor, params: dict) -> torch.Tensor:
        noise = sum(self.read_noise(i, len(wav), s).astype(np.float64) for i, s in zip(params["index"], params["start"]))
        return mix_at_snr(wav, torch.from_numpy(noise), params["snr_db"])

    def batched(self) -> nn.Module:
        from xvector.data.batch_augment import BatchedNoise

        return BatchedNoise(self.files, self.sample_rate)


class Reverberate(Transform):
    """Convolve with a random room impulse response (:func:`reverberate`).

    Args:
        rir_dir: an ``RIRS_NOISES`` folder.
        patterns: globs of the RIR files under it; Kaldi's small and medium simulated rooms by
            default (add ``"real_rirs_isotropic_noises/*rir*.wav"`` for the real ones).
        prob: probability of reverberating an item.
        sample_rate: in Hz; every RIR must have it. Multi-channel RIRs use their first channel.
    """

    def __init__(self, rir_dir: str | os.PathLike, patterns: Sequence[str] = KALDI_RIR_PATTERNS,
                 prob: float = 1.0, sample_rate: int = 16000) -> None:
        super().__init__(prob)
        self.files = list_files(rir_dir, patterns)
        self.sample_rate = sample_rate

    def read_rir(self, index: int) -> torch.Tensor:
        path = self.files[index]
        try:
            rir, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError) as err:
            raise ValueError(f"{path}: cannot decode RIR ({err})") from err
        if sr != self.sample_rate or len(rir) == 0 or not np.any(rir[:, 0]):
            raise ValueError(f"{path}: RIR must be non-zero at {self.sample_rate} Hz (got {sr} Hz, {len(rir)} samples)")
        return torch.from_numpy(np.ascontiguousarray(rir[:, 0]))

    def draw(self, num_samples: int, rng: np.random.Generator) -> dict:
        return {"index": int(rng.integers(len(self.files)))}

    def apply(self, wav: torch.Tensor, params: dict) -> torch.Tensor:
        return reverberate(wav, self.read_rir(params["index"]))

    def batched(self) -> nn.Module:
        from xvector.data.batch_augment import BatchedReverb

        return BatchedReverb(self.files, self.sample_rate)


def _as_module_dict(transforms: Mapping[str, Transform] | Sequence[Transform]) -> nn.ModuleDict:
    items = transforms.items() if isinstance(transforms, Mapping) else enumerate(transforms)
    return nn.ModuleDict({str(k): t for k, t in items if t is not None})


class Compose(Transform):
    """Apply each transform in order, each with its own probability (``prob`` gates them all)."""

    def __init__(self, transforms: Mapping[str, Transform] | Sequence[Transform], prob: float = 1.0) -> None:
        super().__init__(prob)
        self.transforms = _as_module_dict(transforms)

    def transform(self, wav: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        for t in self.transforms.values():
            wav = t(wav, rng)
        return wav

    def plan_fired(self, num_samples: int, rng: np.random.Generator) -> list[tuple[Transform, dict]]:
        return [step for t in self.transforms.values() for step in t.plan(num_samples, rng)]

    def leaves(self) -> list[Transform]:
        return [leaf for t in self.transforms.values() for leaf in t.leaves()]


class OneOf(Transform):
    """Apply at most one transform: transform ``i`` is chosen with probability ``prob_i``.

    One uniform draw picks it (the ``prob`` s must sum to at most 1; the rest is "no
    augmentation"); the chosen transform then runs unconditionally.
    """

    def __init__(self, transforms: Mapping[str, Transform] | Sequence[Transform], prob: float = 1.0) -> None:
        super().__init__(prob)
        self.transforms = _as_module_dict(transforms)
        self.cum_probs = np.cumsum([t.prob for t in self.transforms.values()])
        if len(self.cum_probs) and self.cum_probs[-1] > 1.0 + 1e-9:
            raise ValueError(f"OneOf: probabilities of {list(self.transforms)} sum to {self.cum_probs[-1]:.3f} > 1")

    def transform(self, wav: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        i = int(np.searchsorted(self.cum_probs, rng.random(), side="right"))
        return list(self.transforms.values())[i].transform(wav, rng) if i < len(self.cum_probs) else wav

    def plan_fired(self, num_samples: int, rng: np.random.Generator) -> list[tuple[Transform, dict]]:
        i = int(np.searchsorted(self.cum_probs, rng.random(), side="right"))
        return list(self.transforms.values())[i].plan_fired(num_samples, rng) if i < len(self.cum_probs) else []

    def leaves(self) -> list[Transform]:
        return [leaf for t in self.transforms.values() for leaf in t.leaves()]
