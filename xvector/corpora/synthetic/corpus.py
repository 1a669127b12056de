"""Synthetic multi-speaker corpus: wavs, Kaldi lists and trial lists with disjoint splits.

Voices come from :mod:`xvector.corpora.synthetic.voice`, recording channels from :mod:`xvector.corpora.synthetic.channel`.
Every speaker and utterance has its own RNG stream, so a seed gives byte-identical corpora for
any number of worker processes.

Example:
    >>> import numpy as np
    >>> spk = sample_speaker(np.random.default_rng(0))
    >>> rng = np.random.default_rng(1)
    >>> clean = synthesize_utterance(spk, rng, duration_sec=1.0)
    >>> wav = apply_channel(clean, rng, sample_rate=16000)
    >>> wav.shape, wav.dtype, bool(np.abs(wav).max() <= 1.0)
    ((16000,), dtype('float32'), True)
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from xvector.corpora.synthetic.channel import apply_channel
from xvector.corpora.synthetic.voice import (
    N_FFT,
    SpeakerParams,
    sample_speaker,
    synthesize_utterance,
)
from xvector.data.lists import utt2spk_to_spk2utt, write_kaldi_map, write_trials

__all__ = ["SpeakerParams", "apply_channel", "make_corpus", "make_trials", "sample_speaker", "synthesize_utterance"]

log = logging.getLogger(__name__)

# Seed-sequence stream tags keep speaker, utterance and trial RNGs apart (a SeedSequence
# ignores trailing zeros, so the tag sits second, never last).
_STREAM_SPEAKER, _STREAM_UTT, _STREAM_TRIALS = 1, 2, 3
_SPLITS = (("train", 0), ("test", 1), ("dev", 2))


def _render(job: tuple) -> int:
    """Synthesize, pass through a channel and write one utterance; returns its sample count."""
    path, seed, split_id, spk_index, utt_index, speaker, min_sec, max_sec, sample_rate = job
    # The RNG depends only on the utterance's coordinates, so output is independent of workers.
    rng = np.random.default_rng([seed, _STREAM_UTT, split_id, spk_index, utt_index])
    n = int(rng.integers(int(np.ceil(min_sec * sample_rate)), int(max_sec * sample_rate) + 1))
    clean = synthesize_utterance(speaker, rng, n / sample_rate, sample_rate)
    buf = io.BytesIO()  # soundfile fsyncs real files on close, which costs more than synthesis
    wav = apply_channel(clean, rng, sample_rate)
    sf.write(buf, wav, sample_rate, subtype="PCM_16", format="WAV")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue())
    return n


def _candidates(rng: np.random.Generator, pool: int, want: int) -> Iterator[int]:
    """Distinct indices below ``pool``: a small random sample, which nearly always holds
    ``want`` usable partners, then (lazily, rarely) all of them in random order."""
    n = min(pool, 2 * want + 8)
    yield from rng.choice(pool, size=n, replace=False).tolist()
    if n < pool:
        yield from rng.permutation(pool).tolist()


def make_trials(
    utt2spk: dict[str, str], rng: np.random.Generator, trials_per_utt: int = 10
) -> list[tuple[str, str, bool]]:
    """Draw a balanced trial list over the utterances of ``utt2spk``.

    Each utterance, as enrollment, gets up to ``trials_per_utt // 2`` same-speaker and up to
    ``trials_per_utt - trials_per_utt // 2`` other-speaker test partners; no self-trials and no
    pair twice (in either order), so late enrollments of small speakers may get fewer targets.

    Returns:
        ``(enroll, test, is_target)`` tuples, grouped by enrollment in sorted order.
    """
    # Group by speaker so that each speaker's utterances are one contiguous block.
    utts = sorted(utt2spk, key=lambda u: (utt2spk[u], u))
    start: dict[str, int] = {}
    for i, u in enumerate(utts):
        start.setdefault(utt2spk[u], i)
    size = Counter(utt2spk.values())
    n_target = trials_per_utt // 2
    seen: set[frozenset[str]] = set()
    trials = []
    for enroll in sorted(utts):
        lo, n_same = start[utt2spk[enroll]], size[utt2spk[enroll]]
        for target, pool, want in ((True, n_same, n_target),
                                   (False, len(utts) - n_same, trials_per_utt - n_target)):
            got = 0
            for j in _candidates(rng, pool, want):
                if got == want:
                    break
                test = utts[lo + j if target else (j if j < lo else j + n_same)]
                pair = frozenset((enroll, test))
                if test != enroll and pair not in seen:
                    seen.add(pair)
                    trials.append((enroll, test, target))
                    got += 1
    return trials


def make_corpus(
    out_dir: str | os.PathLike,
    *,
    n_train_speakers: int = 600,
    n_train_utts: int = 10,
    n_test_speakers: int = 40,
    n_test_utts: int = 20,
    n_dev_speakers: int = 20,
    n_dev_utts: int = 10,
    min_sec: float = 2.0,
    max_sec: float = 6.0,
    sample_rate: int = 16000,
    seed: int = 0,
    num_workers: int = 2,
    trials_per_utt: int = 10,
) -> dict:
    """Write a synthetic corpus with disjoint train / test / dev speakers.

    Layout: ``out_dir/wav/<spk>/<utt>.wav`` (16-bit PCM) and Kaldi lists ``train/{wav.scp,
    utt2spk,spk2utt}``, ``test/...`` and ``dev/...``, plus ``trials`` in test and dev (dev: held
    out speakers for validation EER). Speaker ids are ``<split>-spk0007``, utterance ids
    ``<spk>-utt012``; wav.scp holds absolute paths. A split with 0 speakers is skipped. Every
    speaker and utterance has its own RNG stream, so the same ``seed`` gives byte-identical
    files for any ``num_workers``, and a smaller corpus is a subset of a larger one.

    Returns:
        Summary: ``out_dir``, ``utterances``, ``hours``, ``seconds`` (wall time) and ``splits``
        (speakers, utterances and trials per split).

    Raises:
        ValueError: on bad sizes or durations, or a test / dev split too small for trials.

    Example:
        >>> import tempfile
        >>> s = make_corpus(tempfile.mkdtemp(), n_train_speakers=2, n_train_utts=1,
        ...                 n_test_speakers=2, n_test_utts=2, n_dev_speakers=0, min_sec=0.5,
        ...                 max_sec=0.5, num_workers=1, trials_per_utt=2)
        >>> s["utterances"], sorted(s["splits"])
        (6, ['test', 'train'])
    """
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    sizes = {"train": (n_train_speakers, n_train_utts), "test": (n_test_speakers, n_test_utts),
             "dev": (n_dev_speakers, n_dev_utts)}
    if n_train_speakers < 1 or n_train_utts < 1:
        raise ValueError(f"need >= 1 train speaker and utterance, got {sizes['train']}")
    for name in ("test", "dev"):
        n_spk, n_utt = sizes[name]
        if n_spk < 0 or (n_spk > 0 and min(n_spk, n_utt) < 2):
            raise ValueError(f"{name}: trials need >= 2 speakers with >= 2 utterances each, "
                             f"got (speakers, utts) = {sizes[name]}")
    if not 0 < min_sec <= max_sec or min_sec * sample_rate < N_FFT:
        raise ValueError(f"need {N_FFT / sample_rate:.3f} <= min_sec <= max_sec, "
                         f"got min_sec={min_sec}, max_sec={max_sec}")
    if sample_rate < 8000 or trials_per_utt < 2:
        raise ValueError(f"need sample_rate >= 8000 and trials_per_utt >= 2, got {sample_rate}, "
                         f"{trials_per_utt}")

    jobs, utt2spk = [], {name: {} for name in sizes}
    for name, split_id in _SPLITS:
        n_spk, n_utt = sizes[name]
        # Zero-padded so that C-locale order is index order; wider only for huge corpora.
        w_spk, w_utt = max(4, len(str(n_spk - 1))), max(3, len(str(n_utt - 1)))
        for s in range(n_spk):
            speaker = sample_speaker(np.random.default_rng([seed, _STREAM_SPEAKER, split_id, s]))
            spk_id = f"{name}-spk{s:0{w_spk}d}"
            for u in range(n_utt):
                utt = f"{spk_id}-utt{u:0{w_utt}d}"
                utt2spk[name][utt] = spk_id
                jobs.append((str(out / "wav" / spk_id / f"{utt}.wav"), seed, split_id, s, u,
                             speaker, min_sec, max_sec, sample_rate))
    if num_workers > 1:
        with ProcessPoolExecutor(num_workers) as pool:
            chunk = max(1, len(jobs) // (8 * num_workers))
            n_samples = list(pool.map(_render, jobs, chunksize=chunk))
    else:
        n_samples = [_render(job) for job in jobs]

    summary: dict = {"out_dir": str(out), "splits": {}}
    for name, split_id in _SPLITS:
        if not utt2spk[name]:
            continue
        d = out / name
        wavs = {u: str(out / "wav" / s / f"{u}.wav") for u, s in utt2spk[name].items()}
        write_kaldi_map(d / "wav.scp", wavs)
        write_kaldi_map(d / "utt2spk", utt2spk[name])
        write_kaldi_map(d / "spk2utt", utt2spk_to_spk2utt(utt2spk[name]))
        info = {"speakers": sizes[name][0], "utterances": len(wavs)}
        if name != "train":
            rng = np.random.default_rng([seed, _STREAM_TRIALS, split_id])
            trials = make_trials(utt2spk[name], rng, trials_per_utt)
            write_trials(d / "trials", trials)
            info["trials"] = len(trials)
        summary["splits"][name] = info
    summary["utterances"] = len(jobs)
    summary["hours"] = sum(n_samples) / sample_rate / 3600
    summary["seconds"] = time.perf_counter() - t0
    log.info("wrote %d utterances (%.2f h) to %s in %.1f s", len(jobs), summary["hours"], out,
             summary["seconds"])
    return summary
