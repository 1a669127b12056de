#!/usr/bin/env python3
"""Verify a pair of recordings with the exported ONNX model only: onnxruntime + numpy + soundfile.

    python scripts/onnx_verify.py enroll.wav test.wav --model exp/x/model [--json]

For deployment without PyTorch: the model directory's ``embedder.onnx`` (``xvector-export
--format onnx``) holds the whole embedder, Kaldi Fbank front-end and CMN included, so this
script only reads audio, runs the graph on a padded batch with lengths, and applies the
directory's mean, calibration and threshold exactly as ``xvector-verify`` does (same output
line). Audio at another rate is resampled with ``scipy.signal.resample_poly`` when scipy is
installed (otherwise it is an error). Nothing here imports torch or xvector.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Float32 mono ``(S,)`` at ``sample_rate`` (channels averaged)."""
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: cannot decode audio ({err})") from err
    if data.shape[0] == 0 or not np.isfinite(data).all():
        raise ValueError(f"{path}: empty audio or NaN/inf samples")
    wav = data.mean(axis=1)
    if rate != sample_rate:
        try:
            from scipy.signal import resample_poly
        except ImportError as err:
            raise ValueError(f"{path}: {rate} Hz, the model needs {sample_rate} Hz (install scipy to resample)") from err
        g = math.gcd(rate, sample_rate)
        wav = resample_poly(wav, sample_rate // g, rate // g).astype(np.float32)
    return wav


def verify(model_dir: str, enroll: str, test: str, threshold: float | None = None) -> dict:
    """Score, LLR and decision for two files, as ``xvector.inference.api.SpeakerModel.verify``."""
    d = Path(model_dir)
    if not (d / "embedder.onnx").is_file():
        raise ValueError(f"{d}: no embedder.onnx (make one with xvector-export --format onnx)")
    info = json.loads((d / "info.json").read_text(encoding="utf-8"))
    wavs = [read_audio(p, info["sample_rate"]) for p in (enroll, test)]
    for path, w in zip((enroll, test), wavs):
        if len(w) < info["min_samples"]:
            raise ValueError(f"{path}: {len(w)} samples, the model needs at least {info['min_samples']}")
    lens = np.array([len(w) for w in wavs], dtype=np.int64)
    batch = np.zeros((2, int(lens.max())), dtype=np.float32)
    for i, w in enumerate(wavs):
        batch[i, : len(w)] = w
    sess = ort.InferenceSession(str(d / "embedder.onnx"), providers=["CPUExecutionProvider"])
    emb = sess.run(None, {"wav": batch, "wav_lens": lens})[0].astype(np.float64)  # (2, D)
    if (d / "mean.npy").is_file():
        emb = emb - np.load(d / "mean.npy")
    norms = np.linalg.norm(emb, axis=1)
    score = float(emb[0] @ emb[1] / (norms[0] * norms[1])) if norms.all() else 0.0
    cal = json.loads((d / "calibration.json").read_text()) if (d / "calibration.json").is_file() else None
    llr = cal["scale"] * score + cal["offset"] if cal else None
    on = thr = None
    if threshold is not None:
        on, thr = ("llr" if llr is not None else "score"), threshold
    elif (d / "threshold.json").is_file():
        t = json.loads((d / "threshold.json").read_text())
        on, thr = t.get("on", "score"), float(t["threshold"])
    elif llr is not None:
        on, thr = "llr", 0.0  # Bayes decision at a target prior of 0.5
    decision = None if on is None else bool((llr if on == "llr" else score) >= thr)
    return {"score": score, "llr": llr, "decision": decision, "threshold": thr, "on": on}


def format_result(r: dict) -> str:
    parts = [f"score {r['score']:.4f}"]
    if r["llr"] is not None:
        parts.append(f"llr {r['llr']:.3f}")
    if r["decision"] is None:
        parts.append("decision: none (the model has no threshold)")
    else:
        verdict = "same speaker" if r["decision"] else "different speakers"
        parts.append(f"decision: {verdict} ({r['on']} {'>=' if r['decision'] else '<'} {r['threshold']:.4f})")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Same speaker? ONNX Runtime only (no torch).")
    p.add_argument("enroll")
    p.add_argument("test")
    p.add_argument("--model", required=True, help="model directory with embedder.onnx")
    p.add_argument("--threshold", type=float)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        result = verify(args.model, args.enroll, args.test, args.threshold)
    except ValueError as err:
        sys.exit(f"onnx_verify: {err}")
    print(json.dumps(result) if args.json else format_result(result))


if __name__ == "__main__":
    main()
