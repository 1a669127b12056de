"""``xvector-enroll``: build or change a speaker store (one file: models, back end, model identity).

    # from an enrolment map and the embeddings of its utterances (xvector-extract), cosine
    xvector-enroll exp/x/store.npz --spk2utt data/enroll/spk2utt --embeddings exp/x/enroll.npz \\
        --mean-embeddings exp/x/train.npz
    # ... with the LDA + PLDA back end and a calibration from an xvector-score run
    xvector-enroll exp/x/store.npz --spk2utt ... --embeddings ... --backend plda \\
        --train-embeddings exp/x/train.npz --train-utt2spk data/train/utt2spk --score-dir exp/x/scores_plda
    # from audio with a model (its training mean, calibration and threshold are taken), or
    # from the concatenated audio of each speaker
    xvector-enroll exp/x/store.npz --model exp/x/model --wav-scp data/enroll/wav.scp --spk2utt data/enroll/spk2utt
    xvector-enroll exp/x/store.npz --model exp/x/model --mode concat --wav-scp ... --spk2utt ...
    # one more speaker from files, more recordings for a known one, removing one
    xvector-enroll exp/x/store.npz --model exp/x/model --speaker alice a1.wav a2.wav
    xvector-enroll exp/x/store.npz --model exp/x/model --speaker alice a3.wav --existing add
    xvector-enroll exp/x/store.npz --remove alice bob

An existing store keeps its mode and back end (``--new`` starts again); its calibration and
threshold can be replaced. The store is rewritten atomically; speakers not named are not
recomputed. ``--save-embeddings`` also writes the raw embeddings that were enrolled (in
``concat`` mode: one per speaker, of its joined audio, for ``xvector-score enroll_mode=concat``).
For long lists, extract the embeddings first (``xvector-extract``: batched, resumable) and
enrol from them. Errors exit with status 1 and a one-line message.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-enroll", description=__doc__.split("\n\n")[0].strip("`"))
    p.add_argument("store", help="speaker store (.npz) to create or change")
    p.add_argument("files", nargs="*", help="recordings of --speaker (needs --model)")
    p.add_argument("--speaker", help="enrol FILES as this speaker")
    p.add_argument("--spk2utt", help="enrolment map: <speaker> <utt1> [<utt2> ...] per line")
    p.add_argument("--embeddings", help=".npz of the map's utterances (concat: of each speaker's joined audio)")
    p.add_argument("--wav-scp", help="wav.scp of the map's utterances (needs --model)")
    p.add_argument("--model", help="model directory or checkpoint (embeds audio; recorded in the store)")
    p.add_argument("--mode", choices=("avg", "concat"), help="new store: mean of embeddings (default) or joined audio")
    p.add_argument("--mean-embeddings", help="new cosine store: subtract the mean of these embeddings")
    p.add_argument("--backend", choices=("cosine", "plda"), default=None, help="new store's back end (default cosine)")
    p.add_argument("--train-embeddings", help="plda: labelled training embeddings (.npz)")
    p.add_argument("--train-utt2spk", help="plda: their utt2spk")
    p.add_argument("--lda-dim", type=int, default=200)
    p.add_argument("--plda-iter", type=int, default=10)
    p.add_argument("--calibration", help="calibration.json ({'scale', 'offset'}): LLRs in the results")
    p.add_argument("--threshold", help="threshold.json ({'threshold', 'on'}): the open-set decision")
    p.add_argument("--score-dir", help="an xvector-score output dir: its calibration.json and threshold.json")
    p.add_argument("--existing", choices=("error", "add", "replace"), default="error",
                   help="speakers already enrolled: refuse (default), add the new recordings, or replace them")
    p.add_argument("--remove", nargs="+", metavar="SPEAKER", help="remove these speakers")
    p.add_argument("--save-embeddings", help="also write the enrolled raw embeddings here (.npz)")
    p.add_argument("--new", action="store_true", help="start a new store even if STORE exists")
    return p.parse_args(argv)


def _scoring_files(args: argparse.Namespace) -> tuple[dict | None, dict | None]:
    from xvector.inference.model_dir import check_calibration, read_json_object

    cal, thr = args.calibration, args.threshold
    if args.score_dir:
        d = Path(args.score_dir)
        cal = cal or ((d / "calibration.json") if (d / "calibration.json").is_file() else None)
        thr = thr or ((d / "threshold.json") if (d / "threshold.json").is_file() else None)
    cal = read_json_object(cal, "calibration") if cal else None
    thr = read_json_object(thr, "threshold") if thr else None
    if cal is not None:
        cal = check_calibration(cal, str(args.calibration or args.score_dir))
    if thr is not None:
        thr.setdefault("on", "score")
        if "threshold" not in thr or thr["on"] not in ("score", "llr"):
            raise ValueError(f"{args.threshold or args.score_dir}: need a 'threshold' on 'score' or 'llr', got {thr}")
    return cal, thr


def _backend(args: argparse.Namespace, dim: int, model_mean: np.ndarray | None):
    from xvector.embeddings import load_embeddings
    from xvector.scoring.backends import CosineBackend, PLDABackend

    if (args.backend or "cosine") == "cosine":
        if args.train_embeddings or args.train_utt2spk:
            raise ValueError("--train-embeddings/--train-utt2spk train the PLDA back end: add --backend plda")
        if args.mean_embeddings:
            _, emb = load_embeddings(args.mean_embeddings)
            return CosineBackend(emb.astype(np.float64).mean(0), in_dim=dim)
        return CosineBackend(model_mean, in_dim=dim)
    if not (args.train_embeddings and args.train_utt2spk):
        raise ValueError("--backend plda needs --train-embeddings and --train-utt2spk")
    if args.mean_embeddings:
        raise ValueError("--mean-embeddings applies to cosine; the PLDA back end centres on its training mean")
    from xvector.embeddings import load_labelled_embeddings
    from xvector.scoring.lda import KaldiChain

    _, emb, labels = load_labelled_embeddings([(args.train_embeddings, args.train_utt2spk)])
    try:
        chain = KaldiChain(args.lda_dim, args.plda_iter).fit(emb, labels)
    except ValueError as err:
        raise ValueError(f"{args.train_embeddings}: {err}") from None
    return PLDABackend.from_chain(chain)


def enroll(args: argparse.Namespace) -> str:
    """Carry out the command; returns the summary line."""
    from xvector.data.enrollment import read_enroll_map
    from xvector.embeddings import load_embeddings, save_embeddings
    from xvector.scoring.store import SpeakerStore

    store_path = Path(args.store)
    sources = [bool(args.files or args.speaker), bool(args.spk2utt)]
    if sum(sources) > 1:
        raise ValueError("give either --speaker with files, or --spk2utt (with --embeddings or --wav-scp)")
    if bool(args.files) != bool(args.speaker):
        raise ValueError("--speaker NAME and its recordings go together")
    if args.spk2utt and bool(args.embeddings) == bool(args.wav_scp):
        raise ValueError("--spk2utt needs one of --embeddings (enrol embeddings) or --wav-scp (embed audio)")
    if (args.files or args.wav_scp) and not args.model:
        raise ValueError("embedding audio needs --model (a model directory or checkpoint)")
    model = None
    if args.model:
        from xvector.inference.api import load_model

        model = load_model(args.model)
    exists = store_path.exists() and not args.new
    if exists:
        store = SpeakerStore.load(store_path)
        fixed = [f"--{n.replace('_', '-')}" for n in ("mode", "mean_embeddings", "backend", "train_embeddings")
                 if getattr(args, n)]
        if fixed:
            raise ValueError(f"{store_path}: exists with its own mode and back end; {', '.join(fixed)} apply to a "
                             "new store (--new starts one)")
    else:
        if args.remove and not sources[0] and not sources[1]:
            raise ValueError(f"{store_path}: speaker store does not exist")
        dim = model.embed_dim if model is not None else None
        if dim is None:
            if not args.embeddings:
                raise ValueError("a new store needs --embeddings or --model (to know the embedding size)")
            dim = load_embeddings(args.embeddings)[1].shape[1]
        backend = _backend(args, dim, None if model is None else model.mean)
        if model is not None:
            from xvector.inference.enrollment import new_store

            store = new_store(model, args.mode or "avg", backend)
        else:
            store = SpeakerStore(backend, args.mode or "avg")
    if model is not None:
        from xvector.inference.enrollment import check_model, model_identity

        check_model(store, model, str(store_path))
        store.model = store.model or model_identity(model)
    cal, thr = _scoring_files(args)
    if cal is not None:
        store.calibration = cal
    if thr is not None:
        if thr["on"] == "llr" and not store.outputs_llr:
            raise ValueError(f"{args.threshold or args.score_dir}: threshold on LLRs but the store has no calibration")
        store.threshold = thr
    before = len(store)
    if args.remove:
        store.remove(args.remove)
    if args.save_embeddings and (store.mode != "concat" or not (args.speaker or args.wav_scp)):
        raise ValueError("--save-embeddings keeps the embeddings of joined audio (concat mode, from audio); "
                         "for per-utterance embeddings use xvector-extract")
    if args.speaker or args.wav_scp:
        from xvector.data.lists import read_wav_scp
        from xvector.inference.enrollment import embed_speakers

        if args.speaker:
            speakers, source = {args.speaker: list(args.files)}, {"files": [str(f) for f in args.files]}
        else:
            wavs = read_wav_scp(args.wav_scp)
            speakers = {}
            for spk, utts in read_enroll_map(args.spk2utt).items():
                missing = [u for u in utts if u not in wavs]
                if missing:
                    raise ValueError(f"{args.spk2utt}: speaker {spk!r}: utterance {missing[0]!r} is not in {args.wav_scp}")
                speakers[spk] = [wavs[u] for u in utts]
            source = {"spk2utt": str(args.spk2utt), "wav_scp": str(args.wav_scp)}
        names, emb = embed_speakers(model, speakers, store.mode)
        store.add(names, emb, args.existing, source=source)
        if args.save_embeddings:
            save_embeddings(args.save_embeddings, names, emb)
    elif args.spk2utt:
        ids, emb = load_embeddings(args.embeddings)
        store.add_map(read_enroll_map(args.spk2utt), ids, emb, args.existing,
                      source={"spk2utt": str(args.spk2utt), "embeddings": str(args.embeddings)}, map_name=args.spk2utt)
    store.save(store_path)
    return (f"{store_path}: {len(store)} speakers ({len(store) - before:+d}), mode {store.mode}, back end "
            f"{store.backend.kind}{', calibrated' if store.calibration else ''}"
            f"{', threshold ' + format(store.threshold['threshold'], 'g') + ' on ' + store.threshold['on'] if store.threshold else ''}")


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    args = parse_args(argv)
    try:
        print(enroll(args))
    except ValueError as err:
        print(f"xvector-enroll: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
