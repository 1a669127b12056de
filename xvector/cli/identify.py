"""``xvector-identify``: who is speaking? Search a speaker store; report candidates, decisions, metrics.

    # recordings, with the model that made the store: one line each
    xvector-identify exp/x/store.npz query.wav other.wav --model exp/x/model --top-k 3
    query.wav: alice (llr 3.2100 >= 0.0000); candidates: alice 0.7312, bob 0.4120, carol 0.2040
    # a list of embeddings (xvector-extract), evaluated against its speakers
    xvector-identify exp/x/store.npz --embeddings exp/x/test.npz --utt2spk data/test_enroll/query_utt2spk \\
        --output-dir exp/x/identify
    # the same through a FAISS index (pip install 'xvector[ann]'), with its recall against exact search
    xvector-identify exp/x/store.npz --embeddings ... --index faiss --faiss-factory IVF1024,Flat --nprobe 16 \\
        --output-dir exp/x/identify_ivf

``--output-dir`` receives ``topk`` (``<query> <rank> <speaker> <score> [<llr>]``), ``decisions``
(``<query> <speaker>|<unknown> <score> [<llr>]``) and, with ``--utt2spk``, ``metrics.json``:
top-1/top-k accuracy over the queries whose speaker is enrolled, DIR (rank 1) at each
``--fpir`` against the queries whose speaker is not, the decision threshold's DIR and FPIR, and
search timing (and recall against exact search for ``--index faiss``). A query's speaker is
enrolled when a store id equals it. The decision accepts the best candidate when its LLR (a
calibrated or PLDA store) or score reaches ``--threshold`` (default: the store's; without one
every query gets its best candidate). A threshold chosen for 1:1 verification accepts more
impostors in a 1:N search (FPIR grows with the number enrolled): set it from the DIR/FPIR
figures. Errors exit with status 1 and a one-line message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="xvector-identify", description=__doc__.split("\n\n")[0].strip("`"))
    p.add_argument("store", help="speaker store (.npz, from xvector-enroll)")
    p.add_argument("files", nargs="*", help="recordings to identify (needs --model)")
    p.add_argument("--model", help="model directory or checkpoint (embeds audio; must be the store's)")
    p.add_argument("--embeddings", help=".npz of query embeddings (xvector-extract)")
    p.add_argument("--wav-scp", help="wav.scp of queries (needs --model)")
    p.add_argument("--utt2spk", help="only these queries, with their speakers: writes metrics.json")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--threshold", type=float, help="open-set threshold (on LLRs for a calibrated store)")
    p.add_argument("--fpir", type=float, nargs="+", default=[0.01, 0.1], help="operating points for DIR")
    p.add_argument("--index", choices=("exact", "faiss"), default="exact")
    p.add_argument("--faiss-factory", help="faiss index_factory string (default: IVF of ~4 sqrt(S) lists)")
    p.add_argument("--nprobe", type=int, default=16, help="IVF lists probed per query")
    p.add_argument("--output-dir", help="write topk, decisions (and metrics.json) here")
    p.add_argument("--json", action="store_true", help="print one JSON object per query")
    return p.parse_args(argv)


def _queries(args: argparse.Namespace, store) -> tuple[list[str], "object"]:
    import numpy as np

    from xvector.data.lists import read_kaldi_map

    given = [bool(args.files), bool(args.embeddings), bool(args.wav_scp)]
    if sum(given) != 1:
        raise ValueError("give the queries as files, --embeddings or --wav-scp (one of them)")
    if (args.files or args.wav_scp) and not args.model:
        raise ValueError("embedding audio needs --model (the model the store was enrolled with)")
    keep = read_kaldi_map(args.utt2spk, check_sorted=False) if args.utt2spk else None
    if args.embeddings:
        from xvector.embeddings import load_embeddings

        ids, emb = load_embeddings(args.embeddings)
        if keep is not None:
            row = {u: i for i, u in enumerate(ids)}
            missing = [u for u in keep if u not in row]
            if missing:
                raise ValueError(f"{args.utt2spk}: no embedding for query {missing[0]!r} in {args.embeddings}")
            ids, emb = list(keep), emb[[row[u] for u in keep]]
        if emb.shape[1] != store.embed_dim:
            raise ValueError(f"{args.embeddings}: {emb.shape[1]}-dim embeddings, the store's are {store.embed_dim}-dim")
        return ids, emb
    from xvector.inference.api import load_model
    from xvector.inference.enrollment import check_model

    model = load_model(args.model)
    check_model(store, model, args.store)
    if args.files:
        ids, paths = list(args.files), list(args.files)
    else:
        from xvector.data.lists import read_wav_scp

        wavs = read_wav_scp(args.wav_scp)
        ids = list(keep) if keep is not None else list(wavs)
        missing = [u for u in ids if u not in wavs]
        if missing:
            raise ValueError(f"{args.utt2spk}: query {missing[0]!r} is not in {args.wav_scp}")
        paths = [wavs[u] for u in ids]
    return ids, np.atleast_2d(model.embed(paths))


def identify(args: argparse.Namespace) -> list[str]:
    """Carry out the command; returns the lines to print."""
    from xvector.atomic import atomic_write_text
    from xvector.scoring.identify import (
        FaissIndex,
        exact_search,
        recall_at_k,
        top_k_lines,
    )
    from xvector.scoring.identify import (
        identify as decide,
    )
    from xvector.scoring.store import SpeakerStore

    store = SpeakerStore.load(args.store)
    ids, emb = _queries(args, store)
    k = max(1, args.top_k)
    exact = None
    if args.index == "exact" or args.utt2spk:  # with --utt2spk, faiss's recall is measured against it
        start = time.perf_counter()
        exact = exact_search(store, emb, k)
        search = {"index": "exact", "seconds": time.perf_counter() - start, "queries": len(ids), "speakers": len(store)}
        rows, scores = exact
    if args.index == "faiss":
        start = time.perf_counter()
        ivf = "IVF" in (args.faiss_factory or ("IVF" if len(store) >= 10000 else "Flat"))
        index = FaissIndex(store, args.faiss_factory, {"nprobe": args.nprobe} if ivf else None)
        built = time.perf_counter()
        rows, scores = index.search(emb, k)
        search = {"index": f"faiss {index.factory}", "build_seconds": built - start,
                  "seconds": time.perf_counter() - built, "queries": len(ids), "speakers": len(store),
                  "params": index.params}
        if exact is not None:
            search.update({f"recall_at_{rows.shape[1]}":
                           recall_at_k(exact[0], rows), "recall_at_1": recall_at_k(exact[0], rows, 1)})
    results = decide(store, emb, k, args.threshold, rows_scores=(rows, scores))
    lines = []
    for query, result in zip(ids, results):
        if args.json:
            lines.append(json.dumps({"query": query, "speaker": result.speaker, "threshold": result.threshold,
                                     "on": result.on, "candidates": [list(c) for c in result.candidates]}))
        elif args.output_dir is None:
            lines.append(f"{query}: {result}")
    if args.output_dir:
        out = Path(args.output_dir)
        atomic_write_text(out / "topk", "".join(top_k_lines(store, ids, rows, scores)))
        dec = []
        for query, r in zip(ids, results):
            best, score, llr = r.candidates[0]
            name = r.speaker if r.speaker is not None else "<unknown>"
            dec.append(f"{query} {name} {score:.6f}{'' if llr is None else f' {llr:.6f}'}\n")
        atomic_write_text(out / "decisions", "".join(dec))
        if args.utt2spk:
            metrics = evaluate(store, ids, rows, scores, results, args)
            metrics["search"] = search
            atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
            lines.append(summary_line(metrics))
        else:
            lines.append(f"identified {len(ids)} queries against {len(store)} speakers; wrote {out}/topk, decisions")
    return lines


def evaluate(store, ids, rows, scores, results, args) -> dict:
    """Identification metrics of the search against ``--utt2spk``'s speakers."""
    import numpy as np

    from xvector.data.lists import read_kaldi_map
    from xvector.metrics import identification_metrics, open_set_rates, open_set_scores
    from xvector.scoring.identify import candidate_ids

    utt2spk = read_kaldi_map(args.utt2spk, check_sorted=False)
    truth = np.array([utt2spk[q] for q in ids])
    mated = np.array([t in store for t in truth])
    names = candidate_ids(store, rows)
    llrs = store.to_llr(scores)
    on_llr = results[0].on == "llr" if results else False
    values = llrs if on_llr and llrs is not None else scores
    metrics = identification_metrics(names, values, truth, mated, ks=(1, min(5, rows.shape[1]), rows.shape[1]),
                                     fpirs=args.fpir)
    metrics["scores_are"] = "llr" if on_llr else "score"
    thr = results[0].threshold if results else None
    if thr is not None and mated.any() and (~mated).any():
        m, n = open_set_scores(names, values, truth, mated)
        dir_, fpir = open_set_rates(m, n, thr)
        metrics["decision"] = {"threshold": thr, "on": results[0].on, "dir": dir_, "fpir": fpir}
    return metrics


def summary_line(m: dict) -> str:
    """``top-1 93.10%  top-5 98.00%  DIR@FPIR=1% 71.20%  searches 710 (510 mated)``."""
    parts = [f"top-1 {100 * m['top1_acc']:.2f}%"] if "top1_acc" in m else []
    parts += [f"top-{k[3:-4]} {100 * v:.2f}%" for k, v in m.items() if k.startswith("top") and k != "top1_acc"]
    parts += [f"DIR@FPIR={100 * float(k[12:]):g}% {100 * v:.2f}%" for k, v in m.items()
              if k.startswith("dir_at_fpir_") and not k.endswith("threshold")]
    parts.append(f"searches {m['num_searches']} ({m['num_mated']} mated)")
    return "  ".join(parts)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        lines = identify(args)
    except ValueError as err:
        print(f"xvector-identify: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    print("\n".join(lines))


if __name__ == "__main__":
    main()
