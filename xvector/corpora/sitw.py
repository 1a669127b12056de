"""Speakers in the Wild (SITW) → data directories, enrolment maps and the core-core trials;
and VoxCeleb training lists without the speakers SITW shares with VoxCeleb1.

Layout read (``sitw_database.v4``)::

    <sitw>/{dev,eval}/audio/<id>.flac
    <sitw>/{dev,eval}/lists/enroll-core.lst   <model> audio/<id>.flac
    <sitw>/{dev,eval}/keys/core-core.lst      <model> audio/<id>.flac tgt|imp

Written, for each of ``dev`` and ``eval`` found: ``<out>/sitw_<part>/`` with ``wav.scp``,
``utt2spk`` and ``spk2utt`` over every file the lists name (id = file name without extension;
SITW's test speakers are not labelled, so each recording is its own "speaker", as in Kaldi's
``make_sitw.sh``), ``enroll.map`` (``<model> <utt>``, one core enrolment each) and ``trials``
(``<model> <utt> target|nontarget``): ``xvector-score enroll_map=<out>/sitw_eval/enroll.map``.

SITW's celebrities include 60 of VoxCeleb1's (``voxceleb1_sitw_overlap.txt``, OpenSLR 49:
names, one per line). :func:`drop_overlap` writes a copy of a VoxCeleb training directory
without them, mapping names to VoxCeleb1 ids through ``vox1_meta.csv`` (``id10001<TAB>
A.J._Buckley<TAB>...``). Neither file is downloaded here: both come with the corpora.
"""

from __future__ import annotations

import os
from pathlib import Path

from xvector.corpora.prepare import write_lists
from xvector.data.enrollment import write_enroll_map
from xvector.data.lists import Trial, iter_lines, load_data_dir, split_fields, write_trials

KEY_LABELS = {"tgt": True, "imp": False}


def _file_id(rel: str) -> str:
    return Path(rel).stem


def prepare_sitw_part(part_dir: Path, out: Path) -> str:
    """One of SITW's ``dev`` / ``eval`` halves → ``out`` (see the module docstring)."""
    enroll_lst, key = part_dir / "lists" / "enroll-core.lst", part_dir / "keys" / "core-core.lst"
    for need in (enroll_lst, key):
        if not need.is_file():
            raise ValueError(f"{need}: missing (expected SITW's lists/enroll-core.lst and keys/core-core.lst)")
    files: dict[str, Path] = {}

    def audio(rel: str, where: str) -> str:
        path = part_dir / rel
        if not path.is_file():
            raise ValueError(f"{where}: audio file does not exist: {path}")
        utt = _file_id(rel)
        if files.setdefault(utt, path) != path:
            raise ValueError(f"{where}: {path} and {files[utt]} have the same id {utt!r}")
        return utt

    enroll_map: dict[str, list[str]] = {}
    for lineno, line in iter_lines(enroll_lst):
        f = split_fields(line)
        if len(f) < 2:
            raise ValueError(f"{enroll_lst}:{lineno}: expected '<model> audio/<id>.flac', got {line!r}")
        if f[0] in enroll_map:
            raise ValueError(f"{enroll_lst}:{lineno}: model {f[0]!r} is listed twice")
        enroll_map[f[0]] = [audio(f[1], f"{enroll_lst}:{lineno}")]
    trials = []
    for lineno, line in iter_lines(key):
        f = split_fields(line)
        if len(f) != 3 or f[2] not in KEY_LABELS:
            raise ValueError(f"{key}:{lineno}: expected '<model> audio/<id>.flac tgt|imp', got {line!r}")
        if f[0] not in enroll_map:
            raise ValueError(f"{key}:{lineno}: model {f[0]!r} is not in {enroll_lst.name}")
        trials.append(Trial(f[0], audio(f[1], f"{key}:{lineno}"), KEY_LABELS[f[2]]))
    if not trials:
        raise ValueError(f"{key}: trial list is empty")
    write_lists(out, [(u, u, p) for u, p in files.items()])
    write_enroll_map(out / "enroll.map", enroll_map)
    write_trials(out / "trials", trials)
    return f"{out}: {len(files)} recordings, {len(enroll_map)} models, {len(trials)} core-core trials " \
           f"({sum(t.target for t in trials)} target)"


def prepare_sitw(sitw: str | os.PathLike, out: str | os.PathLike) -> list[str]:
    """Every half (``dev``, ``eval``) present under ``sitw``; returns one summary line each."""
    sitw, out = Path(sitw), Path(out)
    parts = [p for p in ("dev", "eval") if (sitw / p).is_dir()]
    if not parts:
        raise ValueError(f"{sitw}: no dev/ or eval/ folder (expected sitw_database.v4's layout)")
    return [prepare_sitw_part(sitw / p, out / f"sitw_{p}") for p in parts]


def read_overlap(overlap: str | os.PathLike, vox1_meta: str | os.PathLike | None = None) -> set[str]:
    """VoxCeleb1 speaker ids of the overlap list: ids as they are, names through ``vox1_meta``.

    Raises:
        ValueError: naming the overlap file and line for a name the meta file lacks (or any
            name when no meta file is given).
    """
    names: dict[str, str] = {}
    if vox1_meta is not None:
        for lineno, line in iter_lines(vox1_meta):
            f = [c.strip() for c in (line.split("\t") if "\t" in line else line.split())]
            if lineno == 1 and f and f[0].lower().startswith("voxceleb1"):
                continue  # header
            if len(f) >= 2:
                names[f[1]] = f[0]
    ids = set()
    for lineno, line in iter_lines(overlap):
        entry = line.strip()
        if not entry:
            continue
        if entry.startswith("id1") and entry[2:].isdigit():
            ids.add(entry)
        elif entry in names:
            ids.add(names[entry])
        else:
            where = "in " + str(vox1_meta) if vox1_meta is not None else "(give vox1_meta.csv to map names to ids)"
            raise ValueError(f"{overlap}:{lineno}: speaker {entry!r} is not a VoxCeleb1 id nor a name {where}")
    if not ids:
        raise ValueError(f"{overlap}: no speakers listed")
    return ids


def drop_overlap(train_dir: str | os.PathLike, out_dir: str | os.PathLike, speakers: set[str]) -> str:
    """Copy the lists of ``train_dir`` into ``out_dir`` without ``speakers``; returns a summary."""
    data = load_data_dir(train_dir, check_exists=False)
    kept = [(u, s, data.wavs[u]) for u, s in data.utt2spk.items() if s not in speakers]
    present = speakers & set(data.utt2spk.values())
    if not kept:
        raise ValueError(f"{train_dir}: every speaker is in the overlap list")
    write_lists(out_dir, kept)
    return (f"{out_dir}: dropped {len(present)} speakers ({len(data.utt2spk) - len(kept)} utterances) of the "
            f"{len(speakers)} listed; {len({s for _, s, _ in kept})} speakers left")
