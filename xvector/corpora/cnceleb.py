"""CN-Celeb 1 / 2 → Kaldi data directories, the enrolment map and the evaluation trials.

Layouts read (as distributed in ``cn-celeb_v2.tar.gz`` / ``cn-celeb2_v2.tar.gz``; wav or flac —
the lists name ``.wav`` files, and a listed file is found under either extension)::

    CN-Celeb_flac/data/<id00000>/<genre>-<session>-<n>.flac   all 1000 speakers
    CN-Celeb_flac/dev/dev.lst                                 the 800 training speakers
    CN-Celeb_flac/eval/enroll/<id00800>-enroll.flac           each model's enrolment audio, joined
    CN-Celeb_flac/eval/test/<id00800>-<genre>-<session>-<n>.flac
    CN-Celeb_flac/eval/lists/enroll.lst    <model> enroll/<model>.wav
    CN-Celeb_flac/eval/lists/enroll.map    <model> <spk>/<file>.wav ...   the utterances joined
    CN-Celeb_flac/eval/lists/trials.lst    <model> test/<file>.wav 1|0
    CN-Celeb2_flac/data/<id10000>/...flac, CN-Celeb2_flac/spk.lst         (training only)

Written (utterance ids ``<spk>-<genre>-<session>-<n>``, as Kaldi's and WeSpeaker's recipes)::

    <out>/train/            CN-Celeb1 dev speakers (+ CN-Celeb2): wav.scp utt2spk spk2utt
    <out>/eval/             test utterances and the enrolment utterances of enroll.map
                            (wav.scp utt2spk spk2utt), enroll.map (<model> <utt> ...) and
                            trials (<model> <test utt> target|nontarget): score it with
                            ``xvector-score enroll_map=<out>/eval/enroll.map`` (CNC-Eval-Avg)
    <out>/eval_enroll/      the joined enrolment files keyed by model id: extract them and
                            score with ``enroll_mode=concat enroll_embeddings=...`` (CNC-Eval-Concat)
"""

from __future__ import annotations

import os
from pathlib import Path

from xvector.corpora.prepare import Utterance, write_lists
from xvector.data.enrollment import write_enroll_map
from xvector.data.lists import Trial, iter_lines, split_fields, write_trials

AUDIO = (".flac", ".wav")
LABELS = {"1": True, "0": False}


def find_audio(root: Path, rel: str) -> Path:
    """``root/rel`` under its own extension or the other of wav/flac (ValueError naming it)."""
    base = root / rel
    for path in (base, *(base.with_suffix(ext) for ext in AUDIO)):
        if path.is_file():
            return path
    raise ValueError(f"{base}: audio file does not exist (as .wav or .flac)")


def _speaker_list(path: Path) -> list[str]:
    speakers = [f[0] for _, line in iter_lines(path) if (f := split_fields(line))]
    if not speakers:
        raise ValueError(f"{path}: speaker list is empty")
    return speakers


def _utt_id(rel: str) -> str:
    """``id00800/singing-01-002.wav`` or ``test/id00800-singing-01-002.wav`` → ``id00800-singing-01-002``."""
    parts = Path(rel).with_suffix("").parts
    return parts[-1] if len(parts) < 2 or parts[-1].startswith(parts[-2] + "-") or parts[-2] in ("test", "enroll") \
        else f"{parts[-2]}-{parts[-1]}"


def train_utterances(root: Path, speaker_list: Path) -> list[Utterance]:
    """The utterances of the listed speakers under ``root/data`` (ValueError for a missing speaker folder)."""
    out: list[Utterance] = []
    for spk in _speaker_list(speaker_list):
        folder = root / "data" / spk
        if not folder.is_dir():
            raise ValueError(f"{speaker_list}: speaker {spk!r} has no folder {folder}")
        out += [(f"{spk}-{p.stem}", spk, p) for p in sorted(folder.iterdir())
                if p.suffix.lower() in AUDIO and not p.name.startswith(".")]
    return out


def read_cnceleb_trials(path: Path) -> list[Trial]:
    """``<model> test/<file>.wav 1|0`` lines as trials of model id against test utterance id."""
    trials = []
    for lineno, line in iter_lines(path):
        f = split_fields(line)
        if len(f) != 3 or f[2] not in LABELS:
            raise ValueError(f"{path}:{lineno}: expected '<model> test/<file>.wav 1|0', got {line!r}")
        trials.append(Trial(f[0], _utt_id(f[1]), LABELS[f[2]]))
    if not trials:
        raise ValueError(f"{path}: trial list is empty")
    return trials


def prepare_cnceleb(cn1: str | os.PathLike, out: str | os.PathLike, cn2: str | os.PathLike | None = None) -> str:
    """Write ``train/``, ``eval/`` (+ ``enroll.map``, ``trials``) and ``eval_enroll/`` under ``out``.

    Returns:
        A one-line summary (utterances, speakers, models, trials).

    Raises:
        ValueError: naming the list file and line for a malformed line, a listed file that
            does not exist, a trial whose model is not in ``enroll.map``.
    """
    cn1, out = Path(cn1), Path(out)
    lists = cn1 / "eval" / "lists"
    for need in (cn1 / "dev" / "dev.lst", lists / "enroll.map", lists / "trials.lst"):
        if not need.is_file():
            raise ValueError(f"{need}: missing (expected CN-Celeb's data/, dev/dev.lst and eval/lists/)")
    train = train_utterances(cn1, cn1 / "dev" / "dev.lst")
    if cn2 is not None:
        train += train_utterances(Path(cn2), Path(cn2) / "spk.lst")
    write_lists(out / "train", train)

    evals: dict[str, Utterance] = {}
    enroll_map: dict[str, list[str]] = {}
    for lineno, line in iter_lines(lists / "enroll.map"):
        f = split_fields(line)
        if len(f) < 2:
            raise ValueError(f"{lists / 'enroll.map'}:{lineno}: expected '<model> <spk>/<file>.wav ...', got {line!r}")
        utts = []
        for rel in f[1:]:
            try:
                path = find_audio(cn1 / "data", rel)
            except ValueError as err:
                raise ValueError(f"{lists / 'enroll.map'}:{lineno}: {err}") from None
            utt = _utt_id(rel)
            evals.setdefault(utt, (utt, utt.split("-")[0], path))
            utts.append(utt)
        enroll_map[f[0]] = utts
    trials = read_cnceleb_trials(lists / "trials.lst")
    for lineno, t in enumerate(trials, start=1):
        if t.enroll not in enroll_map:
            raise ValueError(f"{lists / 'trials.lst'}:{lineno}: model {t.enroll!r} is not in enroll.map")
        if t.test not in evals:
            try:
                path = find_audio(cn1 / "eval" / "test", t.test)
            except ValueError as err:
                raise ValueError(f"{lists / 'trials.lst'}:{lineno}: {err}") from None
            evals[t.test] = (t.test, t.test.split("-")[0], path)
    write_lists(out / "eval", list(evals.values()))
    write_enroll_map(out / "eval" / "enroll.map", enroll_map)
    write_trials(out / "eval" / "trials", trials)

    joined = []
    if (lists / "enroll.lst").is_file():
        for lineno, line in iter_lines(lists / "enroll.lst"):
            f = split_fields(line)
            if len(f) != 2:
                raise ValueError(f"{lists / 'enroll.lst'}:{lineno}: expected '<model> enroll/<model>.wav', got {line!r}")
            try:
                joined.append((f[0], f[0].split("-")[0], find_audio(cn1 / "eval", f[1])))
            except ValueError as err:
                raise ValueError(f"{lists / 'enroll.lst'}:{lineno}: {err}") from None
        write_lists(out / "eval_enroll", joined)
    n_target = sum(t.target for t in trials)
    return (f"train: {len(train)} utterances of {len({s for _, s, _ in train})} speakers; eval: {len(evals)} "
            f"utterances, {len(enroll_map)} models, {len(trials)} trials ({n_target} target); "
            f"eval_enroll: {len(joined)} joined enrolment files")
