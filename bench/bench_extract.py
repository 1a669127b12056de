#!/usr/bin/env python3
"""Extraction benchmark: throughput, 1-hour peak memory, ONNX real-time factor, vs SpeechBrain.

    scripts/env.sh python bench/bench_extract.py            # full run → bench/RESULTS_extract.md
    scripts/env.sh python bench/bench_extract.py --quick    # smoke run (fewer repeats, 10 min file)

Measures, on the default x-vector (80 Fbank, 512-512-512-512-1500, 512-dim embedding; random
weights: speed and memory do not depend on their values):

1. **Throughput** in audio seconds per wall second on 10 s utterances at batch 1 and 16,
   front-end (Kaldi Fbank + CMN) included, with torch's default thread count.
2. **Peak RSS** of a fresh process extracting one long recording (1 h by default) through
   ``extract_embeddings`` (file read, chunked front-end, chunked TDNN, exact pooling); the
   target is < 2 GiB. ``ru_maxrss`` of the child, with its RSS before extraction beside it.
3. **ONNX real-time factor** on one thread (onnxruntime, ``intra_op_num_threads=1``) of the
   exported graph (front-end inside) on 10 s utterances: compute seconds per audio second.
4. **SpeechBrain** ``speechbrain.lobes.models.Xvector.Xvector`` (with its ``Fbank``, 24 mels, as
   its VoxCeleb recipe) on the same 10 s input at batch 1 and 16, when speechbrain is
   importable; otherwise the row says it was skipped (``pip install -e '.[bench]'``). Ours is
   also run with 24 mel bins for a like-for-like row. The throughput runners are interleaved
   round by round (best of the rounds) so a shared machine's load falls on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
UTT_SEC = 10.0
RATE = 16000


def default_config() -> dict:
    """The repository's default front-end and net configs (configs/features, configs/model)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "data": {"sample_rate": RATE},
        "features": OmegaConf.load(ROOT / "configs" / "features" / "fbank.yaml"),
        "model": OmegaConf.load(ROOT / "configs" / "model" / "xvector.yaml"),
    })
    return OmegaConf.to_container(cfg, resolve=True)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB.

    ``VmHWM`` from ``/proc/self/status`` on Linux: ``getrusage``'s ``ru_maxrss`` survives
    ``fork`` + ``exec``, so a child started by a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _utterances(n_utts: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(n_utts, int(UTT_SEC * RATE), generator=gen)  # (N, S)


def xvector_runner(embedder, batch: int, wav: torch.Tensor):
    """One pass over ``wav (N, S)`` in batches of ``batch``, front-end included."""
    from xvector.inference.embed import embed_batch

    lens = torch.full((batch,), wav.shape[1])

    def run():
        for start in range(0, len(wav), batch):
            x = wav[start : start + batch]
            embed_batch(embedder, x, lens[: len(x)])

    return run


def speechbrain_runner(batch: int, wav: torch.Tensor):
    """SpeechBrain's Fbank (24 mels) + ``Xvector`` over the same input, or a skip message."""
    try:
        from speechbrain.lobes.features import Fbank as SBFbank
        from speechbrain.lobes.models.Xvector import Xvector
    except ImportError as err:
        return f"skipped: speechbrain not importable ({err.__class__.__name__}; pip install -e '.[bench]')"
    torch.manual_seed(0)
    fbank, net = SBFbank(n_mels=24).eval(), Xvector(in_channels=24).eval()

    @torch.inference_mode()
    def run():
        for start in range(0, len(wav), batch):
            x = wav[start : start + batch]
            net(fbank(x), torch.ones(len(x)))

    return run


def round_robin(runners: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each runner over ``repeats`` rounds, the runners interleaved per round
    so that load from other jobs on a shared machine spreads over all of them alike."""
    for fn in runners.values():
        fn()  # warm-up
    best = {name: float("inf") for name in runners}
    for _ in range(repeats):
        for name, fn in runners.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def onnx_rtf(embedder, n_utts: int, repeats: int) -> tuple[float, float]:
    """(1-thread RTF of the exported graph, export seconds) on 10 s utterances, one at a time."""
    import onnxruntime as ort

    from xvector.cli.export import export_onnx

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        path = export_onnx(embedder, Path(d) / "embedder.onnx")
        export_sec = time.perf_counter() - t
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        wav = (0.1 * rng.standard_normal((n_utts, int(UTT_SEC * RATE)))).astype(np.float32)
        lens = np.array([wav.shape[1]], dtype=np.int64)

        def run():
            for row in wav:
                sess.run(None, {"wav": row[None], "wav_lens": lens})

        return _best_time(run, repeats) / (n_utts * UTT_SEC), export_sec


def long_recording_child(hours: float, model_path: str, workdir: str) -> dict:
    """In a fresh process: extract one ``hours``-long file; report peak RSS and time.

    The model is a directory from ``write_model_dir``; ``rss_before_mib`` is the peak after
    imports, loading it and writing the test file (torch's CUDA build alone is ~500 MB).
    """
    import soundfile as sf

    from xvector.inference.embedder import for_inference
    from xvector.inference.extraction import extract_embeddings
    from xvector.inference.model_dir import load_model_dir

    model = load_model_dir(model_path)
    path = Path(workdir) / "long.wav"
    n = int(hours * 3600 * RATE)
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:  # written in pieces: low RSS
        rng = np.random.default_rng(0)
        for start in range(0, n, 60 * RATE):
            f.write((0.1 * rng.standard_normal(min(60 * RATE, n - start))).astype(np.float32))
    (Path(workdir) / "wav.scp").write_text(f"long {path}\n")
    before = peak_rss_mib()
    t = time.perf_counter()
    result = extract_embeddings(for_inference(model.embedder), Path(workdir) / "wav.scp", RATE)
    wall = time.perf_counter() - t
    assert result.ids == ["long"], result.failures
    return {"peak_rss_mib": peak_rss_mib(), "rss_before_mib": before, "wall_s": wall,
            "audio_s": hours * 3600}


def write_results(path: Path, argv: list[str], info: dict, rows: list[tuple[str, str]], notes: list[str]) -> None:
    from xvector.atomic import atomic_write_text

    lines = [
        "# Extraction benchmark",
        "",
        f"Command: `{' '.join(['python', 'bench/bench_extract.py', *argv])}`  ",
        f"Machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']} with {info['threads']} threads, "
        f"Python {info['python']}  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "Model: the default x-vector (80-dim Fbank + utterance CMN, TDNN 512-512-512-512-1500, 512-dim",
        "embedding), random weights. 10 s utterances of noise at 16 kHz, front-end included.",
        "",
        "| measurement | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        *notes,
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, 16 utterances, a 10 min recording")
    p.add_argument("--hours", type=float, help="length of the long recording (default 1, --quick 1/6)")
    p.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_extract.md"))
    p.add_argument("--child-long", nargs=3, metavar=("HOURS", "MODEL", "DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_long:
        hours, model_path, d = args.child_long
        print(json.dumps(long_recording_child(float(hours), model_path, d)))
        return

    from xvector.inference.embedder import for_inference
    from xvector.inference.model_dir import init_checkpoint, load_model_dir, write_model_dir

    repeats, n_utts = (1, 16) if args.quick else (3, 32)
    hours = args.hours if args.hours is not None else (1 / 6 if args.quick else 1.0)
    info = machine()
    rows: list[tuple[str, str]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        ckpt = init_checkpoint(Path(d) / "xvector.ckpt", default_config())
        trained = load_model_dir(ckpt).embedder
        embedder = for_inference(trained)  # as xvector-extract runs it: BatchNorms folded
        cfg24 = default_config()
        cfg24["features"]["num_mel_bins"] = 24  # SpeechBrain's / Snyder's front-end size
        embedder24 = for_inference(load_model_dir(init_checkpoint(Path(d) / "xvector24.ckpt", cfg24)).embedder)
        int8 = for_inference(trained, "int8")
        wav = _utterances(n_utts)
        runners, skipped = {}, {}
        for batch in (1, 16):
            runners[f"xvector (80 fbank), batch {batch}"] = xvector_runner(embedder, batch, wav)
            runners[f"xvector (24 fbank), batch {batch}"] = xvector_runner(embedder24, batch, wav)
            runners[f"xvector (80 fbank) precision=int8, batch {batch}"] = xvector_runner(int8, batch, wav)
            sb = speechbrain_runner(batch, wav)
            if isinstance(sb, str):
                skipped[f"SpeechBrain Xvector (24 fbank), batch {batch}"] = sb
            else:
                runners[f"SpeechBrain Xvector (24 fbank), batch {batch}"] = sb
        best = round_robin(runners, repeats)
        threads = torch.get_num_threads()
        for name in sorted({*best, *skipped}, key=lambda k: (k.split("batch ")[1], k)):
            value = skipped.get(name) or f"{len(wav) * UTT_SEC / best[name]:.1f} audio s / wall s"
            rows.append((f"throughput: {name} ({threads} threads)", value))
            print(rows[-1], flush=True)
        rtf, export_sec = onnx_rtf(embedder, max(4, n_utts // 4), repeats)
        rows.append(("ONNX (onnxruntime, 1 thread) real-time factor, 10 s utterances",
                     f"{rtf:.4f} ({1 / rtf:.0f}x faster than real time); export took {export_sec:.1f} s"))
        print(rows[-1], flush=True)
        model_dir = write_model_dir(Path(d) / "model", ckpt)  # what a deployment loads: no Lightning
        child = subprocess.run([sys.executable, __file__, "--child-long", str(hours), str(model_dir), d],
                               capture_output=True, text=True, check=False)
        if child.returncode != 0:
            rows.append((f"{hours:g} h recording", f"failed: {child.stderr.strip().splitlines()[-1:]}"))
        else:
            r = json.loads(child.stdout.strip().splitlines()[-1])
            verdict = "OK" if r["peak_rss_mib"] < 2048 else "OVER the 2 GiB target"
            rows.append((f"{hours:.3g} h recording: peak RSS (fresh process, chunk_sec=100)",
                         f"{r['peak_rss_mib']:.0f} MiB ({verdict}; {r['rss_before_mib']:.0f} MiB before extraction)"))
            rows.append((f"{hours:.3g} h recording: extraction speed",
                         f"{r['audio_s'] / r['wall_s']:.1f} audio s / wall s ({r['wall_s']:.1f} s)"))
        print(rows[-1], flush=True)
    if args.quick:
        notes.append("A --quick smoke run (1 repeat, 10 min long recording): figures are indicative only.")
    notes.append("Throughput is the best of the repeats; the machine may have been shared with other jobs.")
    write_results(Path(args.out), argv, info, rows, notes)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
