#!/usr/bin/env python
"""Benchmark of enrolment and 1:N identification: 10k queries against 100k enrolled speakers.

    python bench/bench_identify.py                       # writes bench/RESULTS_identify.md
    python bench/bench_identify.py --speakers 20000 --queries 2000 --out /tmp/r.md

Synthetic embeddings (no corpus has 100k speakers here): speaker centres drawn from a Gaussian
with a decaying spectrum (variance of dimension i ∝ 1/sqrt(i), as trained embeddings spend
most variance in few directions), utterances = centre + isotropic noise at an SNR where the
top-1 accuracy is realistic rather than 100%. Every speaker enrols from ``--enroll-utts``
utterances (the "large list": 300k utterances by default); queries are new utterances of
enrolled speakers (80%) and of speakers not enrolled (20%, the non-mated searches).

Figures: enrolment (store build from the list, add, remove, save, load), exact blocked search
(cosine and PLDA back ends), FAISS (``Flat``, ``IVF<n>,Flat`` at several ``nprobe``, ``HNSW``)
with build time, search time and recall against the exact search, memory (peak of traced
allocations per step: numpy's arrays, FAISS's own not included; and the process's peak RSS),
beside scikit-learn's brute-force ``NearestNeighbors(metric="cosine")`` on the same vectors
(SpeechBrain, the peer of the other benchmarks, has no 1:N search).
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine_line  # noqa: E402
from xvector.atomic import atomic_write_text  # noqa: E402
from xvector.metrics import identification_metrics  # noqa: E402
from xvector.scoring.backends import CosineBackend, PLDABackend  # noqa: E402
from xvector.scoring.identify import FaissIndex, candidate_ids, exact_search, recall_at_k  # noqa: E402
from xvector.scoring.lda import KaldiChain  # noqa: E402
from xvector.scoring.store import SpeakerStore  # noqa: E402

ROWS: list[tuple[str, str, str, str, str]] = []  # figure, xvector, reference, ratio, note


def measure(fn, repeats: int = 1):
    """``(median seconds, peak traced MiB, result)`` of ``fn()`` run ``repeats`` times."""
    times, peak, result = [], 0.0, None
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return float(np.median(times)), peak, result


def row(figure: str, ours: str, ref: str = "–", ratio: str = "–", note: str = "") -> None:
    ROWS.append((figure, ours, ref, ratio, note))
    print(f"{figure:70s} {ours:>28s} {ref:>14s} {ratio:>7s} {note}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--speakers", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--enroll-utts", type=int, default=3)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).with_name("RESULTS_identify.md")))
    args = p.parse_args()
    rng = np.random.default_rng(0)
    s, d, q = args.speakers, args.dim, args.queries
    scale = (np.arange(1, d + 1) ** -0.25).astype(np.float32)  # std of dimension i: variance ∝ 1/sqrt(i)
    noise = 0.35 * float(np.sqrt((scale**2).mean()))
    centres = rng.standard_normal((s, d), dtype=np.float32) * scale
    n_mated = int(0.8 * q)
    unknown = rng.standard_normal((q - n_mated, d), dtype=np.float32) * scale
    truth = rng.integers(0, s, size=n_mated)
    queries = np.vstack([centres[truth], unknown]) + noise * rng.standard_normal((q, d), dtype=np.float32)
    spk_ids = [f"spk{i:07d}" for i in range(s)]
    print(f"{s} speakers x {args.enroll_utts} utterances, {q} queries ({n_mated} mated), dim {d}", flush=True)

    # ---- enrolment of a large list
    n_enrol = s * args.enroll_utts
    owner = np.repeat(np.arange(s), args.enroll_utts)
    enrol = centres[owner] + noise * rng.standard_normal((n_enrol, d), dtype=np.float32)
    utt_ids = [f"{spk_ids[o]}-u{j}" for o, j in zip(owner, np.tile(np.arange(args.enroll_utts), s))]
    enroll_map = {spk_ids[i]: utt_ids[i * args.enroll_utts:(i + 1) * args.enroll_utts] for i in range(s)}
    mean = enrol[: 20000].astype(np.float64).mean(0)

    def build() -> SpeakerStore:
        st = SpeakerStore(CosineBackend(mean))
        st.add_map(enroll_map, utt_ids, enrol)
        return st

    sec, mib, store = measure(build)
    row(f"enrol a list: {n_enrol:,} embeddings → {s:,} speaker models (add_map)", f"{sec:.2f} s, {n_enrol / sec:,.0f} utt/s",
        note=f"peak traced {mib:.0f} MiB; the inputs alone are {enrol.nbytes / 2**20:.0f} MiB")
    n_grow = min(1000, s)
    extra = centres[:n_grow] + noise * rng.standard_normal((n_grow, d), dtype=np.float32)
    sec, mib, _ = measure(lambda: store.add(spk_ids[:n_grow], extra, existing="add"))
    row(f"grow {n_grow:,} enrolled speakers by one utterance each", f"{1e3 * sec:.0f} ms", note=f"peak traced {mib:.0f} MiB")
    path = Path(args.out).with_suffix(".store.npz")
    sec, _, _ = measure(lambda: store.save(path))
    size = path.stat().st_size / 2**20
    sec_load, _, store = measure(lambda: SpeakerStore.load(path))
    path.unlink()
    row(f"save / load the {s:,}-speaker store ({size:.0f} MiB)", f"{sec:.2f} s / {sec_load:.2f} s")

    # ---- exact search
    k = args.k
    sec, mib, (rows, scores) = measure(lambda: exact_search(store, queries, k), args.repeats)
    exact_rows, exact_sec = rows, sec
    row(f"exact search, cosine: {q:,} queries x {s:,} speakers, top {k}", f"{sec:.2f} s, {q / sec:,.0f} queries/s",
        note=f"peak traced {mib:.0f} MiB")
    names = candidate_ids(store, rows)
    truth_ids = np.array([spk_ids[t] for t in truth] + ["unknown"] * (q - n_mated))
    mated = np.arange(q) < n_mated
    m = identification_metrics(names, scores, truth_ids, mated, ks=(1, k), fpirs=(0.01,))
    row("exact search: top-1 / top-10 accuracy, DIR at FPIR 1% (synthetic data)",
        f"{100 * m['top1_acc']:.1f}% / {100 * m[f'top{k}_acc']:.1f}% / {100 * m['dir_at_fpir_0.01']:.1f}%")

    from sklearn.neighbors import NearestNeighbors

    unit = store.speaker_features()  # the models the search sees (centred, unit length)
    qf = store.query_features(queries)
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(unit.astype(np.float32))
    ref_sec, ref_mib, (_, ref_rows) = measure(lambda: nn.kneighbors(qf.astype(np.float32)), 1)
    agree = recall_at_k(exact_rows, ref_rows)
    row("same search, scikit-learn NearestNeighbors(metric=cosine, brute)", f"{exact_sec:.2f} s", f"{ref_sec:.2f} s",
        f"{ref_sec / exact_sec:.2f}x", f"same top {k}: {100 * agree:.2f}%; sklearn peak traced {ref_mib:.0f} MiB")
    unit = qf = nn = None  # free them before the next rows

    # PLDA back end: features of 2 E + 1 columns
    n_train = min(2000, s)  # PLDA trained on 10 utterances each of up to 2000 of the speakers
    labels = np.repeat(np.arange(n_train), 10)
    train = centres[:n_train][labels] + noise * rng.standard_normal((10 * n_train, d), dtype=np.float32)
    chain = KaldiChain(lda_dim=min(200, d), plda_iter=3).fit(train, labels)
    pstore = SpeakerStore(PLDABackend.from_chain(chain))
    pstore.add_map(enroll_map, utt_ids, enrol)
    sec, mib, (prow, pscores) = measure(lambda: exact_search(pstore, queries, k), 1)
    pm = identification_metrics(candidate_ids(pstore, prow), pscores, truth_ids, mated, ks=(1,), fpirs=(0.01,))
    row(f"exact search, LDA {chain.lda.dim} + PLDA (n-utterance LLR), same queries",
        f"{sec:.2f} s, {q / sec:,.0f} queries/s",
        note=f"top-1 {100 * pm['top1_acc']:.1f}%, DIR@FPIR1% {100 * pm['dir_at_fpir_0.01']:.1f}%; peak traced {mib:.0f} MiB")
    pstore = train = None

    # ---- approximate search (FAISS)
    if importlib.util.find_spec("faiss") is None:
        row("FAISS", "skipped: pip install faiss-cpu")
    else:
        import faiss

        faiss.omp_set_num_threads(2)
        nlist = int(4 * np.sqrt(s))
        for factory, params in [("Flat", [None]), (f"IVF{nlist},Flat", [{"nprobe": n} for n in (4, 16, 64)]),
                                ("HNSW32,Flat", [{"efSearch": e} for e in (64, 256)])]:
            t0 = time.perf_counter()
            index = FaissIndex(store, factory, params[0])
            build_sec = time.perf_counter() - t0
            for prm in params:
                if prm:
                    faiss.ParameterSpace().set_index_parameter(index.index, *next(iter(prm.items())))
                sec, _, (arows, _) = measure(lambda: index.search(queries, k), args.repeats if factory != "Flat" else 1)
                label = factory + (f", {', '.join(f'{a}={b}' for a, b in prm.items())}" if prm else "")
                row(f"FAISS {label}: build {build_sec:.1f} s", f"{sec:.2f} s, {q / sec:,.0f} queries/s",
                    f"{exact_sec:.2f} s", f"{exact_sec / sec:.2f}x",
                    f"recall@1 {100 * recall_at_k(exact_rows, arows, 1):.2f}%, recall@{k} "
                    f"{100 * recall_at_k(exact_rows, arows):.2f}% (against exact)")
            del index

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cmd = "python bench/bench_identify.py" + "".join(
        f" --{a.replace('_', '-')} {v}" for a, v in vars(args).items() if a != "out" and v != p.get_default(a))
    lines = [
        "# Identification benchmark",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {machine_line()}  ",
        f"Data: {s:,} speakers enrolled from {args.enroll_utts} utterances each, {q:,} queries ({n_mated:,} mated), "
        f"dim {d}, synthetic (see the script's docstring). Process peak RSS {rss:,.0f} MiB.",
        "",
        "Times: median of the repeats after none (one run for the slow rows). \"reference\": the exact search or "
        "scikit-learn, as the row says; ratio = how many times faster than the reference.",
        "",
        "| figure | xvector | reference | ratio | note |",
        "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {r} | {n} |" for a, b, c, r, n in ROWS],
    ]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
