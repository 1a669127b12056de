"""Combine Kaldi data directories into one, e.g. a fine-tuning set mixed with some source data.

Kaldi's ``utils/combine_data.sh`` concatenates data dirs whose ids are already distinct. Here
each input gets a prefix (``--prefix tgt src``) so speakers of two corpora never merge into one
class, and an input can be subsampled: at most ``max_speakers`` speakers and
``max_utts_per_speaker`` utterances each, drawn with a seed (the same output for the same seed).
That is how a fine-tuning run keeps some of the data the model was trained on (the "source
mixing" of ``recipes/custom/README.md``, Fine-tuning) without a change to the data module.

Example:
    >>> import tempfile, pathlib
    >>> from xvector.data.lists import write_kaldi_map
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name, spk in (("a", "s1"), ("b", "s1")):
    ...     (d / name).mkdir()
    ...     _ = (d / name / "x.wav").write_bytes(b"")
    ...     write_kaldi_map(d / name / "wav.scp", {f"{spk}-u1": str(d / name / "x.wav")})
    ...     write_kaldi_map(d / name / "utt2spk", {f"{spk}-u1": spk})
    >>> summary = combine_data_dirs([d / "a", d / "b"], d / "out", prefixes=["tgt", "src"])
    >>> (d / "out" / "utt2spk").read_text().split()
    ['src-s1-u1', 'src-s1', 'tgt-s1-u1', 'tgt-s1']
    >>> summary["speakers"], summary["utterances"]
    (2, 2)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xvector.data.lists import load_data_dir, utt2spk_to_spk2utt, write_kaldi_map


def combine_data_dirs(
    dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    prefixes: Sequence[str] | None = None,
    max_speakers: Sequence[int | None] | None = None,
    max_utts_per_speaker: Sequence[int | None] | None = None,
    seed: int = 0,
) -> dict:
    """Write ``out/{wav.scp, utt2spk, spk2utt}`` holding the (subsampled, prefixed) utterances of ``dirs``.

    Args:
        dirs: Kaldi data dirs (``wav.scp``, ``utt2spk``).
        out: the combined dir (created; its lists are written atomically).
        prefixes: one per dir, prepended as ``<prefix>-`` to speaker and utterance ids;
            ``None``: ids are kept (utterance ids must then be distinct across dirs; a speaker
            id in two dirs is one speaker, as in Kaldi).
        max_speakers: per dir, keep at most this many speakers (random; None: all).
        max_utts_per_speaker: per dir, keep at most this many utterances of each (None: all).
        seed: draws of the subsampling.

    Returns:
        ``{"speakers": n, "utterances": n, "per_dir": [(speakers, utterances), ...]}``.

    Raises:
        ValueError: on mismatched argument lengths, an id in two dirs, or a bad input dir.
    """
    n = len(dirs)
    for name, value in (("prefixes", prefixes), ("max_speakers", max_speakers),
                        ("max_utts_per_speaker", max_utts_per_speaker)):
        if value is not None and len(value) != n:
            raise ValueError(f"{name}: one entry per data dir ({n}), got {len(value)}")
    rng = np.random.default_rng(seed)
    wavs, utt2spk, per_dir = {}, {}, []
    for i, src in enumerate(dirs):
        data = load_data_dir(src)
        spk2utt = utt2spk_to_spk2utt(data.utt2spk)
        speakers = list(spk2utt)
        cap = max_speakers[i] if max_speakers else None
        if cap is not None and cap < len(speakers):
            speakers = sorted(rng.choice(speakers, size=cap, replace=False).tolist())
        per = max_utts_per_speaker[i] if max_utts_per_speaker else None
        prefix = f"{prefixes[i]}-" if prefixes else ""
        kept = 0
        for spk in speakers:
            utts = spk2utt[spk]
            if per is not None and per < len(utts):
                utts = sorted(rng.choice(utts, size=per, replace=False).tolist())
            for utt in utts:
                new = prefix + utt
                if new in wavs:
                    raise ValueError(f"{src}: utterance id {new!r} is also in an earlier data dir (give prefixes)")
                wavs[new], utt2spk[new] = str(data.wavs[utt]), prefix + spk
                kept += 1
        per_dir.append((len(speakers), kept))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out / "wav.scp", wavs)
    write_kaldi_map(out / "utt2spk", utt2spk)
    write_kaldi_map(out / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return {"speakers": len(set(utt2spk.values())), "utterances": len(wavs), "per_dir": per_dir}
