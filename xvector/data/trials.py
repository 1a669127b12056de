"""Balanced random trial lists over the speakers of a data directory.

Target trials pair two different utterances of one speaker, nontarget trials utterances of two
speakers. The trials are spread evenly over speakers (each speaker enrolls about the same number
of both kinds, fewer only when it has too few utterances), no pair appears twice in either
order, and no utterance is compared with itself. The list is a function of ``utt2spk`` and the
seed alone, and comes out sorted.

Example:
    >>> utt2spk = {f"s{s}-u{u}": f"s{s}" for s in range(3) for u in range(3)}
    >>> trials = make_trials(utt2spk, num_targets=6, num_nontargets=6, seed=0)
    >>> sum(t.target for t in trials), sum(not t.target for t in trials)
    (6, 6)
    >>> make_trials(utt2spk, 6, 6, seed=0) == trials
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from xvector.data.lists import Trial, utt2spk_to_spk2utt

Pair = tuple[int, int]  # indices into the utterance list, smaller first


def even_quotas(total: int, capacities: Sequence[int]) -> list[int]:
    """Split ``total`` as evenly as possible under per-item ``capacities`` (water-filling).

    Example:
        >>> even_quotas(10, [1, 5, 5])
        [1, 5, 4]
    """
    quotas = [0] * len(capacities)
    open_ = [i for i, c in enumerate(capacities) if c > 0]
    left = total
    while left > 0 and open_:
        share, extra = divmod(left, len(open_))
        nxt = []
        for rank, i in enumerate(open_):
            give = min(share + (rank < extra), capacities[i] - quotas[i])
            quotas[i] += give
            left -= give
            if quotas[i] < capacities[i]:
                nxt.append(i)
        open_ = nxt
    return quotas


def _sample_pairs(rng: np.random.Generator, n: int, capacity: int, draw: Callable[[], Pair],
                  enumerate_all: Callable[[], list[Pair]], taken: set[Pair]) -> list[Pair]:
    """``n`` new pairs: rejection sampling while that is cheap, else a shuffle of all pairs."""
    out: list[Pair] = []
    misses = 0
    if n <= capacity // 2:
        while len(out) < n and misses < 20 * n + 100:
            pair = draw()
            if pair in taken:
                misses += 1
                continue
            taken.add(pair)
            out.append(pair)
        if len(out) == n:
            return out
    pool = [p for p in enumerate_all() if p not in taken]
    if len(pool) < n - len(out):
        raise ValueError(f"only {len(out) + len(pool)} distinct pairs left for a speaker that needs {n}")
    for k in rng.permutation(len(pool))[: n - len(out)]:
        taken.add(pool[k])
        out.append(pool[k])
    return out


def make_trials(utt2spk: Mapping[str, str], num_targets: int, num_nontargets: int, seed: int = 0,
                *, clip: bool = False) -> list[Trial]:
    """A random trial list with ``num_targets`` target and ``num_nontargets`` nontarget trials.

    Args:
        utt2spk: utterance id → speaker id.
        num_targets: target trials wanted.
        num_nontargets: nontarget trials wanted.
        seed: RNG seed; the list depends only on ``utt2spk`` and the seed.
        clip: ask for at most as many trials of a kind as distinct pairs exist, instead of raising.

    Raises:
        ValueError: for fewer than two speakers (nontargets need two), a speaker with fewer than
            two utterances when targets are asked for (named), or more trials of a kind than
            distinct pairs exist (the maximum is given).
    """
    if num_targets < 0 or num_nontargets < 0:
        raise ValueError(f"trial counts must be >= 0, got {num_targets} and {num_nontargets}")
    spk2utt = utt2spk_to_spk2utt(utt2spk)
    speakers = list(spk2utt)
    if len(speakers) < 2:
        raise ValueError(f"{len(speakers)} speaker(s): trials need at least two speakers")
    if num_targets > 0:
        single = [s for s in speakers if len(spk2utt[s]) < 2]
        if single:
            raise ValueError(
                f"speaker {single[0]!r} has one utterance ({len(single)} such speakers): target trials "
                "need two per speaker; remove them or ask for --targets 0"
            )
    utts = [u for s in speakers for u in spk2utt[s]]
    index = {u: i for i, u in enumerate(utts)}
    groups = [np.array([index[u] for u in spk2utt[s]]) for s in speakers]
    rng = np.random.default_rng(seed)
    taken: set[Pair] = set()
    order = lambda a, b: (min(a, b), max(a, b))  # noqa: E731

    sizes = [len(g) for g in groups]
    target_caps = [n * (n - 1) // 2 for n in sizes]
    num_targets = min(num_targets, sum(target_caps)) if clip else num_targets
    if num_targets > sum(target_caps):
        raise ValueError(f"asked for {num_targets} target trials; only {sum(target_caps)} distinct pairs exist")
    pairs: list[tuple[Pair, bool]] = []
    for g, quota, cap in zip(groups, even_quotas(num_targets, target_caps), target_caps):
        def draw(g=g) -> Pair:
            a, b = rng.choice(g, size=2, replace=False)
            return order(int(a), int(b))

        def every(g=g) -> list[Pair]:
            return [(int(a), int(b)) for i, a in enumerate(g) for b in g[i + 1:]]

        pairs += [(p, True) for p in _sample_pairs(rng, quota, cap, draw, every, taken)]

    total = len(utts)
    nontarget_caps = [n * (total - n) for n in sizes]  # pairs involving each speaker
    all_nontargets = sum(nontarget_caps) // 2
    num_nontargets = min(num_nontargets, all_nontargets) if clip else num_nontargets
    if num_nontargets > all_nontargets:
        raise ValueError(f"asked for {num_nontargets} nontarget trials; only {all_nontargets} distinct pairs exist")
    owner = np.concatenate([np.full(n, s) for s, n in enumerate(sizes)])
    if num_nontargets > all_nontargets // 2:  # most pairs: shuffle them all (small sets only)
        every = [(a, b) for a in range(total) for b in range(a + 1, total) if owner[a] != owner[b]]
        pairs += [(every[k], False) for k in sorted(rng.permutation(len(every))[:num_nontargets])]
    else:
        for s, (g, quota) in enumerate(zip(groups, even_quotas(num_nontargets, nontarget_caps))):
            others = np.flatnonzero(owner != s)

            def draw(g=g, others=others) -> Pair:
                return order(int(rng.choice(g)), int(rng.choice(others)))

            def involving(g=g, others=others) -> list[Pair]:
                return [order(int(a), int(b)) for a in g for b in others]

            pairs += [(p, False) for p in _sample_pairs(rng, quota, nontarget_caps[s], draw, involving, taken)]
    # Enroll the smaller index's utterance; randomise which side is which per pair.
    flips = rng.random(len(pairs)) < 0.5
    trials = [Trial(utts[b], utts[a], t) if f else Trial(utts[a], utts[b], t) for ((a, b), t), f in zip(pairs, flips)]
    return sorted(trials, key=lambda t: (t.enroll.encode(), t.test.encode()))
