#!/usr/bin/env python
"""VoxCeleb1 / VoxCeleb2 → Kaldi data directories and the official Vox1-O/E/H trial lists.

    python recipes/voxceleb/local/prepare_voxceleb.py --vox1 /corpora/voxceleb1 \\
        --vox2 /corpora/voxceleb2 --vox2-flac /corpora/voxceleb2_flac --out data/voxceleb --jobs 16

Layouts read (as distributed):
  VoxCeleb1  <vox1>/wav/<id10001>/<youtube id>/<00001>.wav (dev and test zips unpacked together),
             trial lists beside it (or in --trial-dir): veri_test.txt, veri_test2.txt,
             list_test_all.txt, list_test_all2.txt, list_test_hard.txt, list_test_hard2.txt;
             each line ``1 id10270/5r0dWxy17C8/00001.wav id10270/...`` (1 target, 0 nontarget).
  VoxCeleb2  <vox2>/dev/aac/<id00012>/<youtube id>/<00001>.m4a, converted with ffmpeg to 16 kHz
             mono flac under --vox2-flac (parallel, resumable: existing files are skipped).

Written: <out>/vox1/{wav.scp,utt2spk,spk2utt} (all of VoxCeleb1, which Vox1-E/H need),
<out>/vox1/trials_vox1_{O,E,H}[_cleaned] and <out>/vox1/trials (Vox1-O cleaned, the list
validation and the default scoring use), <out>/vox1_dev (VoxCeleb1 without Vox1-O's 40 test
speakers), <out>/vox2_dev/{wav.scp,utt2spk,spk2utt} and, with both corpora, their union
<out>/vox2_dev_vox1_dev (VoxCeleb1 and 2 speaker ids do not overlap: id1xxxx vs id0xxxx). Utterance ids are ``id10270-5r0dWxy17C8-00001``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xvector.corpora.convert import convert_files, mirror_paths
from xvector.corpora.prepare import Utterance, scan_tree, utterance_id, write_lists
from xvector.data.lists import Trial, iter_lines, split_fields, write_trials

# Official list file → Kaldi trial list name. The "2" lists are the cleaned versions.
TRIAL_LISTS = {
    "veri_test2.txt": "vox1_O_cleaned",
    "list_test_all2.txt": "vox1_E_cleaned",
    "list_test_hard2.txt": "vox1_H_cleaned",
    "veri_test.txt": "vox1_O",
    "list_test_all.txt": "vox1_E",
    "list_test_hard.txt": "vox1_H",
}
LABELS = {"1": True, "0": False}
# VoxCeleb1's test split (Vox1-O's 40 speakers); the other 1211 are its dev split.
VOX1_TEST_SPEAKERS = frozenset(f"id{n}" for n in range(10270, 10310))


def vox_utt_id(rel: str) -> str:
    """``id10270/5r0dWxy17C8/00001.wav`` → ``id10270-5r0dWxy17C8-00001`` (the ids of the lists)."""
    parts = Path(rel).parts
    if len(parts) != 3:
        raise ValueError(f"expected <speaker>/<video>/<n>.wav, got {rel!r}")
    return utterance_id(parts[0], Path(*parts[1:]))


def read_vox_trials(path: str | Path, known: set[str] | None = None) -> list[Trial]:
    """An official VoxCeleb trial list as :class:`Trial` s.

    Raises:
        ValueError: naming ``path:line`` for a malformed line, a label other than 0/1 or, with
            ``known``, an utterance not in the data directory; or the file when it is empty.
    """
    trials = []
    for lineno, line in iter_lines(path):
        fields = split_fields(line)
        if len(fields) != 3 or fields[0] not in LABELS:
            raise ValueError(f"{path}:{lineno}: expected '1|0 <spk/video/n.wav> <spk/video/n.wav>', got {line!r}")
        try:
            enroll, test = vox_utt_id(fields[1]), vox_utt_id(fields[2])
        except ValueError as err:
            raise ValueError(f"{path}:{lineno}: {err}") from None
        for utt in (enroll, test):
            if known is not None and utt not in known:
                raise ValueError(f"{path}:{lineno}: utterance {utt!r} is not in VoxCeleb1's wav.scp")
        trials.append(Trial(enroll, test, LABELS[fields[0]]))
    if not trials:
        raise ValueError(f"{path}: trial list is empty")
    return trials


def prepare_vox1(vox1: Path, out: Path, trial_dir: Path | None = None) -> tuple[list[str], list[Utterance]]:
    """VoxCeleb1 lists into ``out`` and every official trial list found.

    Returns:
        The names of the trial lists written, and the utterances of VoxCeleb1's dev speakers.
    """
    utts = scan_tree(vox1 / "wav", extensions=(".wav",))
    write_lists(out, utts)
    dev = [u for u in utts if u[1] not in VOX1_TEST_SPEAKERS]
    if dev:  # Kaldi's v2 recipe adds VoxCeleb1 dev to its training data
        write_lists(out.parent / "vox1_dev", dev)
    known = {u for u, _, _ in utts}
    names = []
    for filename, name in TRIAL_LISTS.items():
        src = (trial_dir or vox1) / filename
        if src.is_file():
            trials = read_vox_trials(src, known)
            write_trials(out / f"trials_{name}", trials)
            if not names:  # the first found, in TRIAL_LISTS order: Vox1-O cleaned if present
                write_trials(out / "trials", trials)
            names.append(name)
    return names, dev


def prepare_vox2(vox2: Path, flac_root: Path, out: Path, jobs: int = 4,
                 ffmpeg: str = "ffmpeg") -> tuple[str, list[Utterance]]:
    """Convert VoxCeleb2 dev m4a to flac (resumably), then write its lists.

    Returns:
        The conversion summary and the utterances written.

    Raises:
        ValueError: naming the folder when it holds no m4a files or some failed to convert.
    """
    aac = vox2 / "dev" / "aac"
    if not aac.is_dir():
        raise ValueError(f"{aac}: not a folder (expected VoxCeleb2's dev/aac/<id>/<video>/<n>.m4a)")
    sources = sorted(str(p) for p in aac.rglob("*.m4a"))
    if not sources:
        raise ValueError(f"{aac}: no .m4a files")
    report = convert_files(mirror_paths(aac, flac_root / "dev", sources, ".flac"), jobs=jobs, ffmpeg=ffmpeg)
    if report.failed:
        raise ValueError(f"{aac}: {report.summary()}; re-run to retry (converted files are kept)")
    utts = scan_tree(flac_root / "dev", extensions=(".flac",))
    write_lists(out, utts)
    return report.summary(), utts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vox1", type=Path, help="VoxCeleb1 root (holding wav/)")
    p.add_argument("--trial-dir", type=Path, default=None, help="folder of the official lists (default --vox1)")
    p.add_argument("--vox2", type=Path, help="VoxCeleb2 root (holding dev/aac/)")
    p.add_argument("--vox2-flac", type=Path, help="where VoxCeleb2's converted flac files go")
    p.add_argument("--out", type=Path, default=Path("data/voxceleb"), help="output: vox1/ and vox2_dev/")
    p.add_argument("--jobs", type=int, default=8, help="parallel ffmpeg processes")
    p.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    vox1_dev: list[Utterance] = []
    try:
        if args.vox1:
            names, vox1_dev = prepare_vox1(args.vox1, args.out / "vox1", args.trial_dir)
            print(f"{args.out / 'vox1'}: lists, trial lists {names or 'none found'}")
        if args.vox2:
            if not args.vox2_flac:
                raise ValueError("--vox2 needs --vox2-flac (where converted files go)")
            summary, vox2 = prepare_vox2(args.vox2, args.vox2_flac, args.out / "vox2_dev", args.jobs, args.ffmpeg)
            print(f"{args.out / 'vox2_dev'}: lists; {summary}")
            if vox1_dev:  # Kaldi v2's kind of training set (it adds VoxCeleb2 test too)
                write_lists(args.out / "vox2_dev_vox1_dev", vox2 + vox1_dev)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
