"""Audio banks: many short files (noises, music, babble speech, room impulse responses) read once
into one flat tensor, so that batched augmentation crops them by index on the training device.

A bank holds every file's samples end to end in ``samples (N,)`` with ``offsets (K,)`` and
``lengths (K,)`` per file: int16 when every file is 16-bit PCM read without channel averaging
(exactly the float32 samples times 32768, half the memory: MUSAN is about 12 GB so), float32
otherwise. :meth:`AudioBank.crops` gathers crops of any files at any starts in one indexing
operation, wrapping a file shorter than the crop as :class:`~xvector.data.augment.AddNoise`
does. A bank is an ``nn.Module`` whose tensors are non-persistent buffers: ``.to(device)`` moves
it, and it never enters a checkpoint.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(root / "a.wav", np.array([1, 2, 3], dtype=np.int16), 16000, subtype="PCM_16")
    >>> sf.write(root / "b.wav", np.array([7, 8, 9, 10, 11], dtype=np.int16), 16000, subtype="PCM_16")
    >>> bank = AudioBank.from_files([root / "a.wav", root / "b.wav"])
    >>> bank.samples.dtype, bank.lengths.tolist()
    (torch.int16, [3, 5])
    >>> (bank.crops(torch.tensor([0, 1]), torch.tensor([0, 2]), 4) * 32768).round().tolist()
    [[1.0, 2.0, 3.0, 1.0], [9.0, 10.0, 11.0, 7.0]]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from xvector.data.audio import read_audio

PCM16_SCALE = 32768.0  # libsndfile's int16 <-> float normalisation


def as_float(samples: torch.Tensor) -> torch.Tensor:
    """float32 samples in [-1, 1] from int16 (divided by 32768) or float storage."""
    return samples.float() / PCM16_SCALE if samples.dtype == torch.int16 else samples.float()


class AudioBank(nn.Module):
    """Files end to end in one tensor: ``samples (N,)``, per-file ``offsets (K,)`` and ``lengths (K,)``.

    Args:
        samples: all files' samples, concatenated (int16 or float32).
        lengths: samples per file, in file order.
        names: the files, for error messages and ``repr``.
    """

    def __init__(self, samples: torch.Tensor, lengths: Sequence[int], names: Sequence[str] = ()) -> None:
        super().__init__()
        lengths_t = torch.as_tensor(list(lengths), dtype=torch.long)
        if len(lengths_t) == 0 or int(lengths_t.min()) < 1 or int(lengths_t.sum()) != len(samples):
            raise ValueError(f"bank lengths {lengths_t.tolist()[:5]}... do not tile {len(samples)} samples")
        offsets = torch.cumsum(lengths_t, 0) - lengths_t
        self.register_buffer("samples", samples, persistent=False)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("lengths", lengths_t, persistent=False)
        self.names = list(names)
        self.max_length = int(lengths_t.max())  # known on the host: shapes never need a device sync

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike], sample_rate: int = 16000,
                   multichannel: str = "mean") -> AudioBank:
        """Read every file whole (checked as :func:`~xvector.data.audio.load_audio` checks them).

        Raises:
            ValueError: naming a file that cannot be decoded, has another rate, no samples or
                non-finite samples.
        """
        arrays = [read_audio(p, sample_rate, multichannel=multichannel, int16=True)[0] for p in paths]
        if all(a.dtype == np.int16 for a in arrays):
            samples = torch.from_numpy(np.concatenate(arrays))
        else:
            samples = torch.from_numpy(np.concatenate([
                a.astype(np.float32) / np.float32(PCM16_SCALE) if a.dtype == np.int16 else a for a in arrays]))
        return cls(samples, [len(a) for a in arrays], [str(p) for p in paths])

    def __len__(self) -> int:
        return len(self.lengths)

    def positions(self, index: torch.Tensor, start: torch.Tensor, num_samples: int) -> torch.Tensor:
        """Flat sample positions ``index.shape + (num_samples,)`` of crops from ``start``, wrapping."""
        steps = torch.arange(num_samples, device=index.device)
        length = self.lengths[index].unsqueeze(-1)
        return self.offsets[index].unsqueeze(-1) + (start.unsqueeze(-1) + steps) % length

    def crops(self, index: torch.Tensor, start: torch.Tensor, num_samples: int) -> torch.Tensor:
        """float32 crops ``index.shape + (num_samples,)``: file ``index`` from ``start``, wrapped to
        its beginning when it ends first (``start`` is 0 for files shorter than the crop)."""
        return as_float(self.samples[self.positions(index, start, num_samples)])

    def padded(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole files ``(n, max_length)`` float32, zero after each file's end, and their lengths ``(n,)``."""
        steps = torch.arange(self.max_length, device=index.device)
        length = self.lengths[index]
        inside = steps < length.unsqueeze(-1)  # (n, R)
        pos = self.offsets[index].unsqueeze(-1) + torch.minimum(steps, length.unsqueeze(-1) - 1)
        return as_float(self.samples[pos]) * inside, length

    def extra_repr(self) -> str:
        return f"files={len(self)}, samples={len(self.samples)}, dtype={self.samples.dtype}"
