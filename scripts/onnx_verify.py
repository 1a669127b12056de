#!/usr/bin/env python3
"""Verify a pair of recordings with the exported ONNX model only: onnxruntime + numpy + soundfile.

    python scripts/onnx_verify.py enroll.wav test.wav --model exp/x/model [--json]

For deployment without PyTorch: the model directory's ``embedder.onnx`` (``xvector-export
--format onnx``) holds the whole embedder, Kaldi Fbank front-end and CMN included, so this
script only reads audio, runs the graph on a padded batch with lengths, and applies the
directory's mean, calibration and threshold exactly as ``xvector-verify`` does (same output
line). Audio at another rate is resampled by :func:`resample`, a numpy port of
``torchaudio.functional.resample`` (the resampler ``xvector-verify`` uses), so both tools see
the same samples; files that are missing, truncated, silent or hold NaN are refused as there.
Nothing here imports torch or xvector.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import soundfile as sf


def resample(wav: np.ndarray, orig_rate: int, new_rate: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> np.ndarray:
    """``torchaudio.functional.resample`` (``sinc_interp_hann``) in numpy: ``(S,)`` → ``(ceil(S * new / orig),)``.

    The same windowed-sinc polyphase filter: for the reduced rates ``orig``/``new`` (divided by
    their gcd) and cutoff ``min(orig, new) * rolloff``, output phase ``c`` of every block of
    ``new`` samples is the dot product of a Hann-windowed sinc kernel (``lowpass_filter_width``
    zero crossings each side) with the zero-padded input, stepping ``orig`` input samples per
    block. The kernel and sums are float64 here (torch uses the input's float32), so the two
    differ by float32 rounding only.
    """
    if orig_rate == new_rate:
        return wav
    g = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // g, int(new_rate) // g
    base = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64) / orig  # (K,), K = 2 width + orig
    t = (np.arange(0, -new, -1, dtype=np.float64)[:, None] / new + idx[None, :]) * base  # (new, K)
    t = np.clip(t, -lowpass_filter_width, lowpass_filter_width)
    window = np.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t *= math.pi
    sinc = np.sin(t) / np.where(t == 0, 1.0, t)
    kernel = np.where(t == 0, 1.0, sinc) * window * (base / orig)  # (new, K)
    padded = np.pad(np.asarray(wav, dtype=np.float64), (width, width + orig))
    frames = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape[1])[::orig]  # (n, K), a view
    out = (frames @ kernel.T).reshape(-1)  # (n * new,): block j, phase c at j * new + c
    return out[: math.ceil(new * len(wav) / orig)].astype(np.float32)


def _truncated(path: str) -> tuple[int, int] | None:
    """``(declared, present)`` bytes of a RIFF/WAVE data chunk cut short, else None."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(f.fileno()).st_size
        while len(chunk := f.read(8)) == 8:
            length = struct.unpack("<I", chunk[4:])[0]
            if chunk[:4] == b"data":
                present = size - f.tell()
                return (length, present) if 0 < length < 0xFFFFFFFF and present < length else None
            f.seek(length + (length & 1), 1)
    return None


def read_audio(path: str, sample_rate: int) -> np.ndarray:
    """Float32 mono ``(S,)`` at ``sample_rate`` (channels averaged), checked as ``xvector-verify`` does."""
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not an audio file")
    if not os.path.exists(path):
        raise ValueError(f"{path}: audio file does not exist")
    cut = _truncated(path)
    if cut:
        raise ValueError(f"{path}: truncated wav: its header declares {cut[0]} data bytes, the file holds {cut[1]}")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise ValueError(f"{path}: cannot decode audio ({err})") from err
    if data.shape[0] == 0:
        raise ValueError(f"{path}: no samples (empty audio)")
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: audio contains NaN or infinite samples")
    wav = data.mean(axis=1)
    if not wav.any():
        raise ValueError(f"{path}: all {len(wav)} samples are zero (silent audio)")
    return resample(wav, rate, sample_rate)


def _finite_json(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        values = [float(data[k]) for k in keys]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: need numeric {', '.join(keys)} ({err})") from err
    if not all(map(math.isfinite, values)):
        raise ValueError(f"{path}: {', '.join(keys)} must be finite, got {values}")
    return data


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
    if not np.isfinite(emb).all():
        raise ValueError(f"{d / 'embedder.onnx'}: the graph gave a non-finite embedding")
    if (d / "mean.npy").is_file():
        mean = np.load(d / "mean.npy", allow_pickle=False)
        if mean.shape != emb.shape[1:] or not np.isfinite(mean).all():
            raise ValueError(f"{d / 'mean.npy'}: need a finite ({emb.shape[1]},) mean, got shape {mean.shape}")
        emb = emb - mean
    norms = np.linalg.norm(emb, axis=1)
    if not norms.all():
        raise ValueError(f"{(enroll, test)[int(np.argmin(norms))]}: zero embedding after the mean: cosine is undefined")
    score = float(emb[0] @ emb[1] / (norms[0] * norms[1]))
    cal = _finite_json(d / "calibration.json", ("scale", "offset")) if (d / "calibration.json").is_file() else None
    llr = cal["scale"] * score + cal["offset"] if cal else None
    on = thr = None
    if threshold is not None:
        if not math.isfinite(threshold):
            raise ValueError(f"--threshold {threshold}: must be a finite number")
        on, thr = ("llr" if llr is not None else "score"), threshold
    elif (d / "threshold.json").is_file():
        t = _finite_json(d / "threshold.json", ("threshold",))
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
