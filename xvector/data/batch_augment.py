"""Batched augmentation on the training device: speed perturbation, noise / music / babble and
reverberation of a whole batch of crops, with the noise and RIR banks held in device memory.

With ``data.augment_on=device`` the data workers only read and crop: each item is the crop that
speed perturbation needs (``ceil(chunk * speed)`` samples, int16 where the file allows), its
speed index, and the augmentation *plan* that :meth:`~xvector.data.augment.Transform.plan`
drew from the item's RNG - the very numbers the CPU path (``augment_on=workers``) draws, so both
paths have the same distributions and, for one seed, give the same crops (to float32 rounding;
``tests/data/test_batch_augment.py`` compares them). :func:`collate_planned` turns the plans
into index tensors, and :class:`BatchAugment`, called from the training step, applies them:

* speed: the rows of each factor go through one ``torchaudio.transforms.Resample`` (the kernels
  of :func:`torchaudio.functional.resample`, built once), cut to the chunk;
* noise, music, babble (:class:`BatchedNoise`): the drawn files are cropped out of an
  :class:`~xvector.data.banks.AudioBank` by index (wrapping short files), summed over sources
  and added at the drawn SNR (powers over the crop, as :func:`~xvector.data.augment.mix_at_snr`);
* reverberation (:class:`BatchedReverb`): one FFT convolution of the rows with their RIRs,
  aligned at each RIR's direct path and rescaled to the input power, as
  :func:`~xvector.data.augment.reverberate`;
* a recording channel (:class:`~xvector.data.channel.BatchedChannel`): the rows' spectra times
  their drawn filters' responses.

Which rows a leaf touches is fixed on the host by the collate, so the step makes no device-to-host
copy: nothing in here waits for the GPU. Fbank and CMN follow in the model, on the same device.

Example:
    >>> import torch
    >>> aug = BatchAugment(None, speeds=(1.0, 1.1), sample_rate=16000, chunk=1600)
    >>> items = [{"wav": torch.zeros(1760, dtype=torch.int16), "utt": "a", "label": 3, "speed": 1, "aug": []},
    ...          {"wav": torch.zeros(1600, dtype=torch.int16), "utt": "b", "label": 0, "speed": 0, "aug": []}]
    >>> wav, wav_lens = aug(collate_planned(items))
    >>> wav.shape, wav.dtype, wav_lens.tolist()
    (torch.Size([2, 1600]), torch.float32, [1600, 1600])
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import nn
from torchaudio.transforms import Resample

from xvector.data.banks import AudioBank, as_float


def resampled_length(num_samples: int, orig_freq: int, new_freq: int) -> int:
    """Samples :func:`torchaudio.functional.resample` returns for ``num_samples`` input samples."""
    g = math.gcd(orig_freq, new_freq)
    return math.ceil(new_freq // g * num_samples / (orig_freq // g))


def fft_length(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (sizes every FFT library handles fast)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def collate_planned(items: Sequence[dict]) -> dict:
    """Batch planned crops: ``wav (B, S_max)`` (int16 when every item is), ``wav_lens (B,)``,
    ``labels``, ``utts``, ``speed_rows`` (per speed index, the rows using it) and ``aug`` (per
    leaf transform: the rows it fires on, ``rows (n,)``, and its drawn parameters as tensors).

    A list-valued parameter (e.g. the babble files) is zero-padded to the longest, with its
    length in ``count (n,)``.
    """
    lens = [len(it["wav"]) for it in items]
    int16 = all(it["wav"].dtype == torch.int16 for it in items)
    wav = torch.zeros(len(items), max(lens), dtype=torch.int16 if int16 else torch.float32)
    for i, it in enumerate(items):
        wav[i, : lens[i]] = it["wav"] if int16 else as_float(it["wav"])
    speeds = [int(it["speed"]) for it in items]
    batch = {
        "wav": wav,
        "wav_lens": torch.tensor(lens, dtype=torch.long),
        "utts": [it["utt"] for it in items],
        "labels": torch.tensor([it["label"] for it in items], dtype=torch.long),
        "speed_rows": [torch.tensor([i for i, s in enumerate(speeds) if s == k], dtype=torch.long)
                       for k in range(max(speeds) + 1)],
        "aug": [],
    }
    for j in range(len(items[0]["aug"])):
        fired = [(i, it["aug"][j]) for i, it in enumerate(items) if it["aug"][j] is not None]
        batch["aug"].append(_collate_params(fired))
    return batch


def _collate_params(fired: list[tuple[int, dict]]) -> dict:
    out = {"rows": torch.tensor([i for i, _ in fired], dtype=torch.long)}
    for key in fired[0][1] if fired else ():
        values = [p[key] for _, p in fired]
        if isinstance(values[0], (list, tuple)):
            width = max(len(v) for v in values)
            floats = any(isinstance(x, float) for v in values for x in v)  # file indices, or drawn numbers
            out[key] = torch.tensor([list(v) + [0] * (width - len(v)) for v in values],
                                    dtype=torch.float32 if floats else torch.long)
            out["count"] = torch.tensor([len(v) for v in values], dtype=torch.long)
        else:
            out[key] = torch.tensor(values, dtype=torch.float32 if isinstance(values[0], float) else torch.long)
    return out


class BatchedNoise(nn.Module):
    """:class:`~xvector.data.augment.AddNoise` on a batch: ``x (n, S)`` + drawn files at drawn SNRs.

    Args:
        files: the noise files (read once into an :class:`~xvector.data.banks.AudioBank`).
        sample_rate: in Hz; every file must have it.
    """

    def __init__(self, files: Sequence[str | os.PathLike], sample_rate: int = 16000) -> None:
        super().__init__()
        self.bank = AudioBank.from_files(files, sample_rate)

    def forward(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        index, start, count = params["index"], params["start"], params["count"]  # (n, K), (n, K), (n,)
        used = torch.arange(index.shape[1], device=x.device) < count.unsqueeze(-1)  # (n, K)
        noise = (self.bank.crops(index, start, x.shape[-1]) * used.unsqueeze(-1)).sum(1)  # (n, S)
        p_x, p_noise = x.pow(2).mean(-1), noise.pow(2).mean(-1)  # (n,)
        target = p_noise * torch.pow(10.0, params["snr_db"] / 10)
        # silent speech or silent noise: unchanged, as mix_at_snr
        gain = torch.where((p_x > 0) & (p_noise > 0), torch.sqrt(p_x / target.clamp_min(1e-30)), 0.0)
        return x + gain.unsqueeze(-1) * noise


class BatchedReverb(nn.Module):
    """:class:`~xvector.data.augment.Reverberate` on a batch: ``x (n, S)`` convolved with drawn RIRs.

    Every RIR is read once (first channel, as the CPU path) with its direct-path position (its
    largest-magnitude tap) precomputed.

    Raises:
        ValueError: naming an RIR that cannot be read, has another rate or is all zero.
    """

    def __init__(self, files: Sequence[str | os.PathLike], sample_rate: int = 16000) -> None:
        super().__init__()
        self.bank = AudioBank.from_files(files, sample_rate, multichannel="first")
        peaks = []
        for k, name in enumerate(self.bank.names):
            rir = as_float(self.bank.samples[self.bank.offsets[k] : self.bank.offsets[k] + self.bank.lengths[k]])
            if not rir.any():
                raise ValueError(f"{name}: RIR must be non-zero at {sample_rate} Hz")
            peaks.append(int(rir.abs().argmax()))
        self.register_buffer("peaks", torch.tensor(peaks, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor, params: dict) -> torch.Tensor:
        index = params["index"]  # (n,)
        rir, _ = self.bank.padded(index)  # (n, R), zero after each RIR
        n_fft = fft_length(x.shape[-1] + rir.shape[-1] - 1)  # linear, not circular, convolution
        wet = torch.fft.irfft(torch.fft.rfft(x, n_fft) * torch.fft.rfft(rir, n_fft), n_fft)  # (n, n_fft)
        steps = torch.arange(x.shape[-1], device=x.device)
        wet = wet.gather(1, self.peaks[index].unsqueeze(-1) + steps)  # from the direct path: no delay
        p_x, p_wet = x.pow(2).mean(-1), wet.pow(2).mean(-1)
        scale = torch.where(p_wet > 0, torch.sqrt(p_x / p_wet.clamp_min(1e-30)), 1.0)
        return wet * scale.unsqueeze(-1)


class BatchAugment(nn.Module):
    """Speed perturbation and the augmentation plans of a :func:`collate_planned` batch, applied
    on the batch's device: ``batch`` → ``wav (B, chunk)`` float32, ``wav_lens (B,)``.

    Args:
        augment: the crop transform of the data config, a :class:`~xvector.data.augment.Transform`
            (not imported here: the transforms import this module for their batched forms; its
            leaves need one:
            :class:`~xvector.data.augment.AddNoise`, :class:`~xvector.data.augment.Reverberate`,
            :class:`~xvector.data.channel.RandomChannel`),
            or None. Its files are read here, once.
        speeds: speed factors; index ``k`` of a batch's ``speed_rows`` is ``speeds[k]``.
        sample_rate: in Hz.
        chunk: training crop length in samples.

    Raises:
        ValueError: when a leaf has no batched form or appears twice.
    """

    def __init__(self, augment: nn.Module | None, speeds: Sequence[float], sample_rate: int, chunk: int) -> None:
        super().__init__()
        self.speeds, self.chunk = tuple(float(s) for s in speeds), int(chunk)
        self.needs = [chunk if s == 1.0 else math.ceil(chunk * s) for s in self.speeds]
        self.resamplers = nn.ModuleList()
        for s in self.speeds:
            self.resamplers.append(nn.Identity() if s == 1.0 else Resample(int(round(s * sample_rate)), sample_rate))
        leaves = augment.leaves() if augment is not None else []
        if len({id(leaf) for leaf in leaves}) != len(leaves):
            raise ValueError("a transform appears twice in the augmentation: give each its own entry")
        self.ops = nn.ModuleList(leaf.batched() for leaf in leaves)

    @property
    def device(self) -> torch.device:
        return next(iter(self.buffers()), torch.empty(0)).device

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        if "speed_rows" not in batch or len(batch.get("aug", ())) != len(self.ops):
            raise ValueError("the batch has no augmentation plan for these transforms: augment_on=device needs "
                             "the data module's planned crops (data.augment_on=device)")
        wav = as_float(batch["wav"])  # (B, S_max)
        if self.speeds == (1.0,):
            out = wav[:, : self.chunk]
        else:
            out = wav.new_zeros(wav.shape[0], self.chunk)
            for resample, need, rows in zip(self.resamplers, self.needs, batch["speed_rows"]):
                if rows.shape[0]:  # host-side shape: no device sync
                    out[rows] = resample(wav[rows, :need])[:, : self.chunk]
        for op, params in zip(self.ops, batch["aug"]):
            rows = params["rows"]
            if rows.shape[0]:
                out[rows] = op(out[rows], params)
        return out.contiguous(), torch.full((out.shape[0],), out.shape[1], dtype=torch.long, device=out.device)
