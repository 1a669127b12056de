"""A training DataLoader that resumes mid-epoch where it stopped, batch for batch.

Lightning (2.x) saves ``state_dict()`` of every training loader that has one in each
checkpoint, and calls ``load_state_dict()`` on the new loader when ``trainer.fit(ckpt_path=...)``
resumes. :class:`ResumableLoader` saves which epoch it was in, how many batches Lightning had
taken, and torch's RNG state when the epoch's iteration began. Resumed in the same epoch, it
replays that RNG state while its sampler starts (so a sampler shuffling with torch's RNG, and
the workers' base seed, come out as before), skips the batches already trained on without
loading them (the sampler's indices are drawn, the audio is not read), and hands the RNG back
as the checkpoint left it. Resumed in a later epoch (an end-of-epoch checkpoint), it skips
nothing.

Exact when the items do not depend on how many were loaded before them: a seeded dataset
(``data.seed``, per ``(epoch, index)``) with any number of workers, or torch-RNG crops
(``data.seed=null``) read in the main process (``num_workers=0``). With ``data.seed=null`` and
worker processes, the skipped items never advance the workers' RNG, so the crops of the rest
of that epoch differ (the order does not).

The epoch comes from the sampler's ``epoch`` attribute (Lightning calls ``set_epoch`` before
each epoch, also on its distributed samplers); a loader whose sampler has none never skips.

Example:
    >>> import torch
    >>> from xvector.data.collate import EpochRandomSampler
    >>> def loader():  # shuffled with torch's RNG
    ...     return ResumableLoader(range(10), batch_size=2, sampler=EpochRandomSampler(range(10)), collate_fn=list)
    >>> _ = torch.manual_seed(0)
    >>> whole = list(loader())
    >>> _ = torch.manual_seed(0)
    >>> interrupted = loader()
    >>> it = iter(interrupted)
    >>> done = [next(it), next(it)]      # a checkpoint after 2 batches, then a kill
    >>> resumed = loader()
    >>> resumed.load_state_dict(interrupted.state_dict())
    >>> done + list(resumed) == whole    # the other 3 batches, in the interrupted order
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader


class _Skip:
    """The batches the next iteration of the index sampler drops, and the RNG state to set after."""

    def __init__(self) -> None:
        self.batches, self.rng = 0, None

    def take(self) -> tuple[int, torch.Tensor | None]:
        taken = (self.batches, self.rng)
        self.batches, self.rng = 0, None
        return taken


class _SkippingIndexSampler:
    """The loader's index sampler, whose iteration first drops the batches a resume skips.

    Holds the loader's :class:`_Skip`, not the loader: the loader keeps its (persistent-worker)
    iterator, which keeps this; a cycle would leave the workers to the garbage collector, whose
    shutdown of them waits out a timeout.
    """

    def __init__(self, inner: Any, skip: _Skip) -> None:
        self.inner, self.skip = inner, skip

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator:
        # A generator: it runs at the first index request, after the data-loader iterator drew
        # its base seed, as the plain sampler would.
        indices = iter(self.inner)
        skip, rng = self.skip.take()
        for _ in range(skip):
            next(indices, None)
        if rng is not None:
            torch.set_rng_state(rng)  # back to the checkpoint's stream, for the items themselves
        yield from indices


class ResumableLoader(DataLoader):
    """A :class:`~torch.utils.data.DataLoader` with Lightning's ``state_dict`` / ``load_state_dict``.

    Takes exactly the arguments of ``DataLoader`` (so Lightning can rebuild it around its
    distributed sampler). See the module docstring for what a resume restores.
    """

    _position: dict[str, Any] | None = None  # epoch, batches taken, RNG at the epoch's start
    _resume: dict[str, Any] | None = None  # a loaded position not yet used

    @property
    def _skip(self) -> _Skip:
        if "_skip_state" not in self.__dict__:
            self._skip_state = _Skip()
        return self._skip_state

    @property
    def _index_sampler(self):
        return _SkippingIndexSampler(super()._index_sampler, self._skip)

    def _epoch(self) -> int | None:
        for sampler in (getattr(self.batch_sampler, "sampler", None), self.sampler):
            if sampler is not None and getattr(sampler, "epoch", None) is not None:
                return int(sampler.epoch)
        return None

    def state_dict(self) -> dict[str, Any]:
        """``{"epoch", "batches", "rng"}``: the epoch being read, the batches handed out in it, and
        torch's RNG state when its iteration began (None before the first iteration)."""
        position = self._position or {"epoch": None, "batches": 0, "rng": None}
        return {**position, "rng": None if position["rng"] is None else position["rng"].clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state`` at the next iteration, if that iteration is in the same epoch."""
        self._resume = dict(state)

    def __iter__(self) -> Iterator:
        return self._batches()

    def _batches(self) -> Iterator:
        # Runs at the first next(), after Lightning has set the sampler's epoch.
        epoch, now = self._epoch(), torch.get_rng_state()
        resume, self._resume = self._resume, None
        skip = 0
        if resume and epoch is not None and resume.get("epoch") == epoch and resume.get("rng") is not None:
            skip = int(resume.get("batches", 0))
        start_rng = resume["rng"] if skip else now
        self._position = {"epoch": epoch, "batches": skip, "rng": start_rng.clone()}
        if skip:
            torch.set_rng_state(start_rng)
            self._skip.batches, self._skip.rng = skip, now
        for batch in super().__iter__():
            self._position["batches"] += 1
            yield batch
