"""ResumableLoader: its state round trip continues an epoch batch for batch, skipping without loading."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from xvector.data.collate import EpochRandomSampler, EpochSampler, EpochSequentialSampler
from xvector.training.resumable import ResumableLoader


class _Draws(Dataset):
    """Item = (index, a draw from torch's RNG): the draws show whether the RNG stream continues."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        index = key[1] if isinstance(key, tuple) else key
        self.loaded.append(index)
        return index, float(torch.rand(()))


SAMPLERS = {
    "torch-shuffle": lambda n: EpochRandomSampler(range(n)),
    "seeded": lambda n: EpochSampler(n, seed=3),
    "in-order": lambda n: EpochSequentialSampler(range(n)),
}


def _loader(kind: str, n: int = 11, **kw) -> ResumableLoader:
    return ResumableLoader(_Draws(n), batch_size=2, drop_last=True, sampler=SAMPLERS[kind](n), collate_fn=list, **kw)


@pytest.mark.parametrize("kind", list(SAMPLERS))
def test_state_round_trip_continues_the_epoch_and_the_rng_stream(kind):
    torch.manual_seed(0)
    whole = _loader(kind)
    whole.sampler.set_epoch(2)
    expected = list(whole)
    assert len(expected) == 5

    torch.manual_seed(0)
    killed = _loader(kind)
    killed.sampler.set_epoch(2)
    it = iter(killed)
    done = [next(it), next(it)]
    state, rng = killed.state_dict(), torch.get_rng_state()  # what a checkpoint holds
    assert (state["epoch"], state["batches"]) == (2, 2)

    torch.manual_seed(99)  # a new process: other RNG state until the checkpoint is restored
    resumed = _loader(kind)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning does this before the epoch
    torch.set_rng_state(rng)
    rest = list(resumed)
    assert done + rest == expected  # same indices, same draws
    assert sorted(resumed.dataset.loaded) == sorted(i for batch in rest for i, _ in batch)  # skipped: not loaded
    assert resumed.state_dict()["batches"] == 5
    assert len(list(resumed)) == 5  # the next iteration is a whole epoch


def test_checkpoint_of_a_finished_epoch_skips_nothing_in_the_next():
    loader = _loader("seeded")
    first = list(loader)
    resumed = _loader("seeded")
    resumed.load_state_dict(loader.state_dict())  # epoch 0, 5 batches: an end-of-epoch checkpoint
    resumed.sampler.set_epoch(1)
    fresh = _loader("seeded")
    fresh.sampler.set_epoch(1)
    def order(batches):
        return [[i for i, _ in batch] for batch in batches]

    assert order(resumed) == order(fresh) != order(first)
    assert ResumableLoader(range(4)).state_dict() == {"epoch": None, "batches": 0, "rng": None}


def test_persistent_worker_skips_only_in_the_resumed_epoch():
    kw = dict(num_workers=1, persistent_workers=True)
    whole = _loader("seeded", **kw)
    expected = [[i for i, _ in b] for b in whole]
    killed = _loader("seeded")
    it = iter(killed)
    next(it)
    resumed = _loader("seeded", **kw)
    resumed.load_state_dict(killed.state_dict())
    assert [[i for i, _ in b] for b in resumed] == expected[1:]
    resumed.sampler.set_epoch(1)
    whole.sampler.set_epoch(1)
    assert [[i for i, _ in b] for b in resumed] == [[i for i, _ in b] for b in whole]
