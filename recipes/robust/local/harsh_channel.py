#!/usr/bin/env python
"""A copy of a robustness split with every utterance through a harsher random channel.

    python recipes/robust/local/harsh_channel.py data/robust/tts/dev data/robust/tts/dev_channel
    python recipes/robust/local/evaluate.py --data data/robust/tts --split dev --model M --exp E

The corpus's own channel (``xvector.corpora.conditions.random_channel``: a smooth EQ of 4 dB
standard deviation, a high-pass at 60-400 Hz and a low-pass at 3-7.8 kHz) is drawn for half the
utterances. Here every utterance gets one drawn with twice the EQ (8 dB) and narrower band
limits (high-pass 100-600 Hz, low-pass 2.5-5 kHz), each its own, so every trial compares two
different channels: a check of how much an embedding keeps of the channel, which the corpus's
milder channel hardly tests (a front-end that keeps the long-term spectrum, ``features.cmn=level``,
won the benchmark's dev conditions and lost here; recipes/robust/README.md). The copy keeps the
utterance ids, ``utt2spk``, ``spk2utt`` and every ``trials*`` list; audio goes to ``<out>/wav``
as 16-bit WAV, like the corpus's. ``evaluate.py`` scores ``<split>_channel`` as the condition
``channel`` when it exists. The same seed gives the same channels.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from xvector.atomic import atomic_output
from xvector.corpora.conditions import random_channel
from xvector.data.lists import read_kaldi_map, write_kaldi_map


def harsh_channel_copy(
    src: Path,
    out: Path,
    seed: int = 7,
    eq_db_std: float = 8.0,
    low_cut_hz: tuple[float, float] = (100.0, 600.0),
    high_cut_hz: tuple[float, float] = (2500.0, 5000.0),
) -> int:
    """Write ``out``: ``src``'s utterances (wav.scp order) each through its own random channel.

    Returns the number of utterances written.
    """
    rng = np.random.default_rng(seed)
    wav_scp = {}
    for utt, path in read_kaldi_map(src / "wav.scp").items():
        try:
            wav, sr = sf.read(path, dtype="float32", always_2d=False)
        except (OSError, RuntimeError) as e:
            raise SystemExit(f"{src / 'wav.scp'}: utterance {utt}: cannot read {path}: {e}") from None
        y = random_channel(wav, rng, sr, eq_db_std=eq_db_std, low_cut_hz=low_cut_hz, high_cut_hz=high_cut_hz)
        target = (out / "wav" / f"{utt}.wav").resolve()
        with atomic_output(target) as tmp:
            sf.write(tmp, np.clip(y, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
        wav_scp[utt] = str(target)
    for name in ["utt2spk", "spk2utt", *sorted(p.name for p in src.glob("trials*"))]:
        if (src / name).is_file():
            with atomic_output(out / name) as tmp:
                shutil.copyfile(src / name, tmp)
    write_kaldi_map(out / "wav.scp", wav_scp)  # last: a dir with a wav.scp is complete
    return len(wav_scp)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", type=Path, help="a split of a robust corpus, e.g. data/robust/tts/dev")
    p.add_argument("out", type=Path, help="the copy, e.g. data/robust/tts/dev_channel")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--eq-db-std", type=float, default=8.0)
    args = p.parse_args(argv)
    n = harsh_channel_copy(args.src, args.out, seed=args.seed, eq_db_std=args.eq_db_std)
    print(f"{args.out}: {n} utterances through a harsher channel")


if __name__ == "__main__":
    main()
