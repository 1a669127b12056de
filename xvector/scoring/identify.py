"""1:N identification against a speaker store: exact blocked search, an optional FAISS index — numpy only.

**Exact search** (:func:`exact_search`) scores every query against every enrolled speaker by
matrix products of the back-end's features (:mod:`xvector.scoring.backends`), one block of
``block_speakers`` models at a time, keeping a running top-k per query. Memory is the query
features plus one ``(block_queries, block_speakers)`` float32 score block (64 MiB by default)
plus one block of model features, whatever the store's size, so a store of millions of
speakers is searched on one machine with the store itself the only large array. Within a block,
only queries whose scores can enter their top-k are partitioned.

**Approximate search** (:class:`FaissIndex`, ``pip install 'xvector[ann]'``) puts the same
features in a FAISS inner-product index (any ``index_factory`` string, e.g. ``"IVF1024,Flat"``;
the default picks an IVF size from the store's), and :func:`recall_at_k` measures it against
the exact search.

:func:`identify` turns a search into :class:`Identification` s: the top-k candidates with
scores (and LLRs when the store is calibrated, or PLDA) and the open-set decision: the best
candidate when its score (or LLR) reaches the threshold, else "unknown".

Example:
    >>> import numpy as np
    >>> from xvector.scoring.backends import CosineBackend
    >>> from xvector.scoring.store import SpeakerStore
    >>> store = SpeakerStore(CosineBackend(in_dim=2), threshold={"threshold": 0.9, "on": "score"})
    >>> store.add(["east", "north", "west"], np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    >>> for result in identify(store, np.array([[1.0, 0.2], [-1.0, -0.9]]), top_k=2):
    ...     print(result)
    east (score 0.9806 >= 0.9000); candidates: east 0.9806, north 0.1961
    unknown (best west score 0.7433 < 0.9000); candidates: west 0.7433, north -0.6690
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xvector.scoring.store import SpeakerStore


def _merge(best_s: np.ndarray, best_i: np.ndarray, scores: np.ndarray, offset: int, k: int) -> None:
    """Fold a score block ``(b, n)`` (speakers ``offset..``) into running top-k ``(b, k)`` in place."""
    # Only rows with a score above their current k-th best can change: after the first blocks
    # that is a few rows, and the (b, n) partition, the costly step, runs on those alone.
    kth = best_s.min(axis=1)
    rows = np.flatnonzero((scores > kth[:, None]).any(axis=1))
    if rows.size == 0:
        return
    block = scores[rows]
    if block.shape[1] > k:
        top = np.argpartition(block, block.shape[1] - k, axis=1)[:, -k:]
    else:
        top = np.broadcast_to(np.arange(block.shape[1]), (len(rows), block.shape[1]))
    cand_s = np.concatenate([best_s[rows], np.take_along_axis(block, top, axis=1)], axis=1)
    cand_i = np.concatenate([best_i[rows], top + offset], axis=1)
    keep = np.argpartition(cand_s, cand_s.shape[1] - k, axis=1)[:, -k:]
    best_s[rows] = np.take_along_axis(cand_s, keep, axis=1)
    best_i[rows] = np.take_along_axis(cand_i, keep, axis=1)


def _sorted(best_s: np.ndarray, best_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Best first; equal scores by speaker row, so results do not depend on the block sizes.
    order = np.lexsort((best_i, -best_s), axis=1)
    return np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_s, order, axis=1)


def exact_search(store: SpeakerStore, embeddings: np.ndarray, k: int = 5, block_speakers: int = 4096,
                 block_queries: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best-scoring enrolled speakers of each query, by exhaustive blocked search.

    Args:
        store: the enrolled speakers and their back-end.
        embeddings: ``(Q, D)`` raw query embeddings.
        k: candidates per query (clipped to the store's size).
        block_speakers, block_queries: the score block's shape (memory ``4 * product`` bytes).

    Returns:
        ``(rows (Q, k) int64, scores (Q, k) float32)``: store rows best first, and their
        back-end scores (float32 products; within ~1e-6 of the float64 trial scores for cosine).

    Raises:
        ValueError: for an empty store, ``k < 1`` or embeddings of the wrong shape.
    """
    if len(store) == 0:
        raise ValueError("the speaker store is empty: enrol speakers first")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(store))
    queries = store.query_features(embeddings).astype(np.float32)  # (Q, F)
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(store), block_speakers):
        feats = np.ascontiguousarray(store.speaker_features(slice(start, start + block_speakers)), dtype=np.float32)
        for q in range(0, len(queries), block_queries):
            part = slice(q, q + block_queries)
            _merge(best_s[part], best_i[part], queries[part] @ feats.T, start, k)
    return _sorted(best_s, best_i)


def recall_at_k(exact: np.ndarray, approx: np.ndarray, k: int | None = None) -> float:
    """Mean fraction of each query's exact top-``k`` rows that the approximate top-``k`` found.

    Example:
        >>> recall_at_k(np.array([[0, 1], [2, 3]]), np.array([[1, 0], [2, 5]]))
        0.75
    """
    exact, approx = np.asarray(exact), np.asarray(approx)
    k = exact.shape[1] if k is None else k
    if exact.shape[0] != approx.shape[0] or min(exact.shape[1], approx.shape[1]) < k:
        raise ValueError(f"need two (Q, >={k}) candidate arrays, got {exact.shape} and {approx.shape}")
    hits = (exact[:, :k, None] == approx[:, None, :k]).any(axis=2)
    return float(hits.mean())


class FaissIndex:
    """An approximate inner-product index over a store's speaker features (FAISS).

    Args:
        store: the enrolled speakers (the index is a snapshot: rebuild it after enrolling).
        factory: a ``faiss.index_factory`` description; None picks ``"IVF<n>,Flat"`` with
            ``n ≈ 4 sqrt(S)`` lists (``"Flat"``, exact, below 10,000 speakers).
        params: search-time parameters, e.g. ``{"nprobe": 16}`` (IVF) or ``{"efSearch": 64}``
            (HNSW), set through ``faiss.ParameterSpace``.
        train_size: models the IVF quantiser is trained on (a random sample; FAISS wants at
            least 39 per list).
        seed: sample and k-means seed.

    Raises:
        ValueError: when faiss is not installed (``pip install faiss-cpu``) or the store is empty.
    """

    def __init__(self, store: SpeakerStore, factory: str | None = None, params: dict | None = None,
                 train_size: int = 262144, seed: int = 0, block: int = 65536) -> None:
        try:
            import faiss
        except ImportError:
            raise ValueError("approximate search needs FAISS: pip install faiss-cpu (or 'xvector[ann]')") from None
        if len(store) == 0:
            raise ValueError("the speaker store is empty: enrol speakers first")
        self.store = store
        n = len(store)
        self.factory = factory or ("Flat" if n < 10000 else f"IVF{int(4 * math.sqrt(n))},Flat")
        dim = store.speaker_features(slice(0, 1)).shape[1]
        self.index = faiss.index_factory(dim, self.factory, faiss.METRIC_INNER_PRODUCT)
        if not self.index.is_trained:
            rng = np.random.default_rng(seed)
            sample = np.sort(rng.choice(n, size=min(n, train_size), replace=False))
            train = np.ascontiguousarray(store.speaker_features(sample), dtype=np.float32)
            ivf = faiss.extract_index_ivf(self.index) if "IVF" in self.factory else None
            if ivf is not None:
                ivf.cp.seed = seed
            self.index.train(train)
        for start in range(0, n, block):
            self.index.add(np.ascontiguousarray(store.speaker_features(slice(start, start + block)), dtype=np.float32))
        self.params = dict(params or {})
        space = faiss.ParameterSpace()
        for name, value in self.params.items():
            space.set_index_parameter(self.index, name, value)

    def search(self, embeddings: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """As :func:`exact_search`: ``(rows (Q, k), scores (Q, k))``; rows of -1 where fewer were found."""
        k = min(k, len(self.store))
        queries = np.ascontiguousarray(self.store.query_features(embeddings), dtype=np.float32)
        scores, rows = self.index.search(queries, k)
        return rows.astype(np.int64), scores


@dataclass(frozen=True)
class Identification:
    """Outcome of one search.

    Attributes:
        candidates: ``(speaker, score, llr)`` best first (``llr`` None when uncalibrated cosine).
        speaker: the decision: the best candidate when it reaches the threshold, else None
            ("unknown"); the best candidate when there is no threshold (closed set).
        threshold: the threshold applied, or None; ``on``: ``"score"`` or ``"llr"``.
    """

    candidates: tuple[tuple[str, float, float | None], ...]
    speaker: str | None
    threshold: float | None = None
    on: str | None = None

    def __str__(self) -> str:
        best, score, llr = self.candidates[0]
        value = llr if self.on == "llr" else score
        if self.threshold is None:
            head = f"{best} (closed set: no threshold)"
        elif self.speaker is None:
            head = f"unknown (best {best} {self.on} {value:.4f} < {self.threshold:.4f})"
        else:
            head = f"{best} ({self.on} {value:.4f} >= {self.threshold:.4f})"
        cands = ", ".join(f"{s} {v:.4f}" for s, v, _ in self.candidates)
        return f"{head}; candidates: {cands}"


def decide_threshold(store: SpeakerStore, threshold: float | None = None) -> tuple[float | None, str | None]:
    """``(threshold, on)``: an explicit one (on LLRs when the store gives LLRs, else on scores),
    else the store's own, else none (closed-set: the best candidate is the answer)."""
    if threshold is not None:
        return float(threshold), ("llr" if store.outputs_llr else "score")
    if store.threshold is not None:
        on = store.threshold.get("on", "score")
        if on == "llr" and not store.outputs_llr:
            raise ValueError("the store's threshold is on LLRs but it has no calibration")
        return float(store.threshold["threshold"]), on
    return None, None


def identify(store: SpeakerStore, embeddings: np.ndarray, top_k: int = 5, threshold: float | None = None,
             index: FaissIndex | None = None, rows_scores: tuple[np.ndarray, np.ndarray] | None = None
             ) -> list[Identification]:
    """Identify each of ``embeddings (Q, D)``: top-k candidates and the open-set decision.

    Args:
        store: enrolled speakers.
        top_k: candidates reported per query.
        threshold: accept the best candidate when its score (LLR, when the store gives LLRs)
            is at least this; default: the store's threshold, else no decision threshold.
        index: search with this approximate index instead of exactly.
        rows_scores: an already computed search (``(rows, scores)``) to format instead.
    """
    rows, scores = rows_scores if rows_scores is not None else (
        index.search(embeddings, top_k) if index is not None else exact_search(store, embeddings, top_k))
    thr, on = decide_threshold(store, threshold)
    llrs = store.to_llr(scores)
    out = []
    for q in range(len(rows)):
        valid = rows[q] >= 0
        cands = tuple((store.ids[r], float(s), None if llrs is None else float(lv))
                      for r, s, lv in zip(rows[q][valid], scores[q][valid],
                                          (llrs[q][valid] if llrs is not None else [None] * int(valid.sum()))))
        best = cands[0]
        value = best[2] if on == "llr" else best[1]
        speaker = best[0] if thr is None or value >= thr else None
        out.append(Identification(cands, speaker, thr, on))
    return out


def candidate_ids(store: SpeakerStore, rows: np.ndarray) -> np.ndarray:
    """``(Q, k)`` speaker ids of search rows (``""`` where a row is -1)."""
    ids = np.asarray(store.ids + [""], dtype=str)
    return ids[np.where(rows >= 0, rows, len(store.ids))]


def top_k_lines(store: SpeakerStore, queries: Sequence[str], rows: np.ndarray, scores: np.ndarray) -> list[str]:
    """``<query> <rank> <speaker> <score> [<llr>]`` lines (rank from 1), the ``topk`` file's rows."""
    llrs = store.to_llr(scores)
    names = candidate_ids(store, rows)
    lines = []
    for q, query in enumerate(queries):
        for r in range(rows.shape[1]):
            if rows[q, r] < 0:
                continue
            extra = "" if llrs is None else f" {llrs[q, r]:.6f}"
            lines.append(f"{query} {r + 1} {names[q, r]} {scores[q, r]:.6f}{extra}\n")
    return lines
