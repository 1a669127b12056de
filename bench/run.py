#!/usr/bin/env python
"""The benchmark suite: xvector beside SpeechBrain on the same input, in the same run.

    python -m bench.run                 # all sections -> bench/RESULTS.md
    python -m bench.run --quick         # fewer repeats and smaller inputs (a smoke run)
    python -m bench.run --only frontend train

SpeechBrain comes with ``pip install -e '.[bench]'``; without it every peer column says
"skipped". Sections:

- ``frontend``: features of a (32, 48000) batch (32 × 3 s): Fbank 80, Fbank 24, MFCC 30;
- ``train``: one training step (forward + loss + backward + Adam) of the x-vector on 32 × 2 s of
  features (200 frames), 24- and 80-dim, same topology as SpeechBrain's ``Xvector``
  (512-512-512-512-1500 frame layers, one 512-dim segment layer, 1000 classes), in float32 and
  under bfloat16 autocast (both sides alike);
- ``flops``: the achieved GFLOP/s of that step against a measured float32 matmul peak;
- ``compile``: the 80-dim step with its forward and loss under ``torch.compile`` (inductor),
  float32 and bfloat16, beside SpeechBrain eager (its default) and compiled;
- ``pipeline``: training throughput with the real data loader (files → crops → features →
  step) against the same step on a batch held in memory;
- ``extract``: whole-utterance extraction of 10 s utterances at batch 1 and 16, front-end included,
  as ``xvector-extract`` runs it: float32 (BatchNorms folded), bfloat16 and int8 frame layers
  (features in float32 on both sides; SpeechBrain in float32 and bfloat16);
- ``scoring``: EER + minDCF on 1M trials against ``sklearn.metrics.roc_curve``, and
  SpeechBrain's ``EER`` at 10k/30k/100k trials (its cost grows as N²).

Set the MALLOC_* variables of ``recipes/synthetic/run.sh`` for both sides alike (the suite runs
both in one process, so they share whatever is set).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Row, markdown, ms, rate, timed  # noqa: E402
from xvector.atomic import atomic_write_text  # noqa: E402

SECTIONS = ("frontend", "train", "flops", "compile", "pipeline", "extract", "scoring")


def speechbrain_available() -> bool:
    try:
        import speechbrain  # noqa: F401
    except ImportError:
        return False
    return True


# --- front-end ------------------------------------------------------------------------------


def bench_frontend(repeats: int, peer: bool) -> list[Row]:
    from xvector.features.fbank import Fbank
    from xvector.features.mfcc import MFCC

    torch.manual_seed(0)
    wav = 0.1 * torch.randn(32, 48000)
    lens = torch.full((32,), 48000)
    audio_sec = 32 * 3.0
    cases = [
        ("Fbank 80", lambda: Fbank(num_mel_bins=80), dict(n_mels=80)),
        ("Fbank 24", lambda: Fbank(num_mel_bins=24), dict(n_mels=24)),
        ("MFCC 30", lambda: MFCC(num_ceps=30, num_mel_bins=30, high_freq=7600.0), dict(n_mels=30, n_mfcc=30)),
    ]
    rows = []
    for name, ours_fn, sb_kwargs in cases:
        ours = ours_fn().eval()
        with torch.inference_mode():
            t_ours = timed(lambda: ours(wav, lens), repeats)
            t_peer = None
            if peer:
                from speechbrain.lobes.features import MFCC as SBMFCC
                from speechbrain.lobes.features import Fbank as SBFbank

                if "n_mfcc" in sb_kwargs:
                    theirs = SBMFCC(deltas=False, context=False, **sb_kwargs).eval()
                else:
                    theirs = SBFbank(**sb_kwargs).eval()
                t_peer = timed(lambda: theirs(wav), repeats)
        rows.append(Row(f"front-end {name}, (32, 48000) batch", "audio s/s", rate(t_ours, audio_sec),
                        rate(t_peer, audio_sec) if t_peer else None,
                        "xvector: Kaldi-compatible (povey window, pre-emphasis, CMN)"))
    return rows


# --- training step --------------------------------------------------------------------------


def _train_step(net: torch.nn.Module, head: torch.nn.Module, logits, labels: torch.Tensor, compiled: bool):
    """One optimizer step (Adam) on ``cross_entropy(logits(), labels)``; ``logits`` compiled on request."""
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-3)
    logits = torch.compile(logits) if compiled else logits

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(logits().float(), labels).backward()
        opt.step()

    return step, sum(p.numel() for p in net.parameters())


def _our_step(in_dim: int, batch: int = 32, frames: int = 200, classes: int = 1000, compiled: bool = False):
    from xvector.losses.margin import Softmax
    from xvector.nets.tdnn import XVector

    torch.manual_seed(0)
    net = XVector(in_channels=in_dim, segment_dims=[])  # embedding = the one 512-dim segment layer
    head = Softmax(net.head_in_dim, classes)
    feats = torch.randn(batch, in_dim, frames)  # (B, F, T): features are Conv1d channels
    labels = torch.randint(0, classes, (batch,))
    return _train_step(net, head, lambda: head(net(feats), labels), labels, compiled)


def _peer_step(in_dim: int, batch: int = 32, frames: int = 200, classes: int = 1000, compiled: bool = False):
    from speechbrain.lobes.models.Xvector import Xvector

    torch.manual_seed(0)
    net = Xvector(in_channels=in_dim)  # 512-512-512-512-1500, lin_neurons=512
    head = torch.nn.Linear(512, classes)
    feats = torch.randn(batch, frames, in_dim)  # (B, T, F): SpeechBrain's layout
    labels = torch.randint(0, classes, (batch,))
    return _train_step(net, head, lambda: head(net(feats).squeeze(1)), labels, compiled)


def _bf16(step):
    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            step()
    return run


def bench_train(repeats: int, peer: bool) -> list[Row]:
    rows = []
    for precision in ("fp32", "bf16"):
        for in_dim in (24, 80):
            step, n_ours = _our_step(in_dim)
            step = _bf16(step) if precision == "bf16" else step
            t_ours = timed(step, repeats, warmup=2)
            t_peer, note = None, f"net params: xvector {n_ours:,}"
            if peer:
                peer_step, n_peer = _peer_step(in_dim)
                peer_step = _bf16(peer_step) if precision == "bf16" else peer_step
                t_peer = timed(peer_step, repeats, warmup=2)
                note += f", SpeechBrain {n_peer:,}"
            if precision == "bf16":
                note += "; both under torch.autocast(bfloat16)"
            rows.append(Row(f"training step, x-vector, {in_dim}-dim, 32 × 2 s, {precision}", "samples/s",
                            rate(t_ours, 32), rate(t_peer, 32) if t_peer else None, note))
    return rows


def bench_flops(repeats: int) -> list[Row]:
    from torch.utils.flop_counter import FlopCounterMode

    step, _ = _our_step(80)
    step()
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    t_step = timed(step, repeats, warmup=1)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    t_mm = timed(lambda: a @ b, max(repeats, 5), warmup=2)
    peak = rate(t_mm, 2 * n**3 / 1e9)
    achieved = rate(t_step, flops / 1e9)
    return [
        Row("float32 matmul peak (2048², torch.mm)", "GFLOP/s", peak, note="the machine's dense limit"),
        Row("training step, x-vector 80-dim, 32 × 2 s", "GFLOP/s", achieved,
            note=f"{flops / 1e9:.1f} GFLOP per step (FlopCounterMode); {100 * achieved[0] / peak[0]:.0f}% of peak"),
    ]


def bench_compile(repeats: int, peer: bool) -> list[Row]:
    """``torch.compile`` (inductor) of the 80-dim training step's forward and loss, and of the
    folded extraction net; compile time (first call) in the note. SpeechBrain's default is
    eager: the ratio is against that, with its compiled figure in the note."""
    import time

    rows = []
    for precision in ("fp32", "bf16"):
        wrap = _bf16 if precision == "bf16" else (lambda f: f)
        step, _ = _our_step(80, compiled=True)
        step = wrap(step)
        start = time.perf_counter()
        step()
        compile_s = time.perf_counter() - start
        t_ours = timed(step, repeats, warmup=2)
        t_peer, note = None, f"torch.compile, first step {compile_s:.0f} s"
        if peer:
            t_peer = timed(wrap(_peer_step(80)[0]), repeats, warmup=2)
            peer_c = wrap(_peer_step(80, compiled=True)[0])
            t_peer_c = timed(peer_c, repeats, warmup=2)
            note += (f"; SpeechBrain eager (its default); SpeechBrain compiled: {32 / t_peer_c[0]:.1f} samples/s, "
                     f"{t_peer_c[0] / t_ours[0]:.2f}x")
        rows.append(Row(f"training step, x-vector, 80-dim, 32 × 2 s, {precision}, torch.compile", "samples/s",
                        rate(t_ours, 32), rate(t_peer, 32) if t_peer else None, note))
    return rows


# --- full pipeline --------------------------------------------------------------------------


def _corpus(data: str | None) -> Path:
    if data:
        return Path(data)
    from xvector.corpora.synthetic.corpus import make_corpus

    out = Path(tempfile.mkdtemp(prefix="xvector-bench-")) / "corpus"
    make_corpus(out, n_train_speakers=64, n_train_utts=8, n_test_speakers=0, n_dev_speakers=0,
                min_sec=2.0, max_sec=6.0)
    return out


def bench_pipeline(steps: int, data: str | None, workers: list[int]) -> list[Row]:
    """The real loader feeding the step, for each data-loader worker count, against the same
    step on a batch held in memory (the pipeline's ceiling)."""
    import time

    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from xvector import CONFIG_DIR
    from xvector.training.system import SpeakerSystem

    corpus = _corpus(data)

    def config(num_workers: int):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("train", overrides=[
                "experiment=synthetic_xvector_aam", f"paths.data_dir={corpus}", "data.val_dir=null",
                f"data.num_workers={num_workers}",
            ])

    cfg = config(workers[0])
    torch.manual_seed(0)
    dm = instantiate(cfg.data)
    system = SpeakerSystem(features=instantiate(cfg.features), net=instantiate(cfg.model),
                           head=instantiate(cfg.head), optimizer=instantiate(cfg.optimizer),
                           num_classes=dm.num_speakers).train()
    opt = system.optimizer_factory(system.parameters())

    def step(batch: dict) -> None:
        opt.zero_grad(set_to_none=True)
        emb = system.embedder(batch["wav"], batch["wav_lens"])
        logits = system.head(system.embedder.net.classifier_input(emb), batch["labels"])
        F.cross_entropy(logits, batch["labels"]).backward()
        opt.step()

    def full_pipeline(loader) -> tuple[tuple[float, float, float], dict]:
        """Seconds per step with the loader feeding it; warm-up = the first 2 batches."""
        times, it, start, batch, done = [], iter(loader), None, None, 0
        while done < steps + 2:
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                continue
            step(batch)
            done += 1
            now = time.perf_counter()
            if start is not None:
                times.append(now - start)
            start = now if done >= 2 else None
        times = times[-steps:]
        return (float(np.median(times)), min(times), max(times)), batch

    batch_size = cfg.data.batch_size
    fulls = {}
    for num_workers in workers:
        fulls[num_workers], batch = full_pipeline(instantiate(config(num_workers).data).train_dataloader())
    r_model = rate(timed(lambda: step(batch), steps, warmup=1), batch_size)
    rows = []
    for num_workers, full in fulls.items():
        r_full = rate(full, batch_size)
        rows.append(Row(f"training, full pipeline (loader, {num_workers} worker(s) → fbank 80 → step), "
                        f"{batch_size} × 2 s", "samples/s", r_full,
                        note=f"{100 * r_full[0] / r_model[0]:.0f}% of model-only"))
    rows.append(Row(f"training, model only (same step, batch in memory), {batch_size} × 2 s", "samples/s", r_model,
                    note="synthetic_xvector_aam: fbank 80 + half-width x-vector + AAM"))
    return rows


# --- extraction -----------------------------------------------------------------------------


def bench_extract(repeats: int, peer: bool) -> list[Row]:
    """Extraction as ``xvector-extract`` runs it (BatchNorms folded; bf16 autocast or int8 frame
    layers by ``precision``), beside SpeechBrain in float32 and under bf16 autocast, and the
    trained net unfolded (the fold's gain)."""
    from xvector.features.fbank import Fbank
    from xvector.inference.embedder import Embedder, for_inference
    from xvector.nets.tdnn import XVector

    torch.manual_seed(0)
    trained = Embedder(Fbank(num_mel_bins=24), XVector(in_channels=24, segment_dims=[])).eval()
    for m in trained.modules():  # BatchNorm statistics as after training (speed does not depend on them)
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(0.0, 1.0)
            m.running_var.uniform_(0.5, 2.0)
    folded = for_inference(trained)  # bf16 runs the same folded net under autocast
    ours = {"fp32": folded, "bf16": folded, "int8": for_inference(trained, "int8")}
    if peer:
        from speechbrain.lobes.features import Fbank as SBFbank
        from speechbrain.lobes.models.Xvector import Xvector

        sb_fbank, sb_net = SBFbank(n_mels=24).eval(), Xvector(in_channels=24).eval()

    def sb_embed(wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cpu", enabled=False):  # features in float32 on both sides
            feats = sb_fbank(wav)
        return sb_net(feats)

    def run(fn, wav, bf16: bool):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            return timed(lambda: fn(wav), repeats, warmup=2)

    rows = []
    for batch in (1, 16):
        wav = 0.1 * torch.randn(batch, 160000)
        lens = torch.full((batch,), 160000)
        audio_sec = 10.0 * batch
        what = f"extraction, 10 s utterances, batch {batch}, front-end included (fbank 24)"
        t_peer = {p: run(sb_embed, wav, p == "bf16") if peer else None for p in ("fp32", "bf16")}
        t_unfolded = run(lambda w: trained(w, lens), wav, False)
        t = {p: run(lambda w, e=e: e(w, lens), wav, p == "bf16") for p, e in ours.items()}
        peer_rate = {p: rate(v, audio_sec) if v else None for p, v in t_peer.items()}
        fold_gain = t_unfolded[0] / t["fp32"][0]
        rows += [
            Row(f"{what}, fp32", "audio s/s", rate(t["fp32"], audio_sec), peer_rate["fp32"],
                f"xvector-extract default: BatchNorm folded ({fold_gain:.2f}x the unfolded net's "
                f"{rate(t_unfolded, audio_sec)[0]:.0f})"),
            Row(f"{what}, bf16", "audio s/s", rate(t["bf16"], audio_sec), peer_rate["bf16"],
                "xvector-extract precision=bf16; SpeechBrain under the same autocast"),
        ]
        int8_note = "xvector-extract precision=int8 against SpeechBrain fp32 (it has no int8 path)"
        if peer:
            int8_note += f"; {t_peer['bf16'][0] / t['int8'][0]:.2f}x SpeechBrain bf16"
        rows.append(Row(f"{what}, int8", "audio s/s", rate(t["int8"], audio_sec), peer_rate["fp32"], int8_note))
    return rows


# --- scoring --------------------------------------------------------------------------------


def bench_scoring(repeats: int, trials: int, peer: bool) -> list[Row]:
    from sklearn.metrics import roc_curve

    from xvector.metrics import verification_metrics

    rng = np.random.default_rng(0)
    labels = rng.random(trials) < 0.1
    scores = np.round(rng.standard_normal(trials) + 2.5 * labels, 4)
    t_ours = timed(lambda: verification_metrics(scores, labels), repeats)
    t_sk = timed(lambda: roc_curve(labels, scores, drop_intermediate=False), repeats)
    rows = [
        Row(f"EER + minDCF (3 priors), {trials:,} trials", "ms", ms(t_ours),
            note=f"sklearn roc_curve alone: {ms(t_sk)[0]:.0f} ms ({t_sk[0] / t_ours[0]:.2f}x ours)"),
        Row(f"sklearn.metrics.roc_curve alone, {trials:,} trials (same scores)", "ms", ms(t_sk),
            note="the reference for the scoring target"),
    ]
    if peer:
        from speechbrain.utils.metric_stats import EER as sb_eer

        from xvector.metrics import compute_eer

        s = torch.from_numpy(scores)
        for k in (10_000, 30_000, 100_000):
            lab = labels[:k]
            t_e = timed(lambda: compute_eer(scores[:k], lab), repeats)
            # SpeechBrain's EER loops over thresholds (O(N²)): one timed run at 100k (~2 min).
            slow = k >= 100_000
            t_p = timed(lambda: sb_eer(s[:k][lab], s[:k][~lab]), 1 if slow else max(1, repeats // 2), warmup=0 if slow else 1)
            rows.append(Row(f"EER, {k:,} trials", "ms", ms(t_e), ms(t_p)))
    return rows


def targets(rows: list[Row]) -> list[str]:
    """Issue 8's targets, each met or not, from the figures of this run (those it measured)."""
    def find(*parts: str, ends: str = "") -> Row | None:
        return next((r for r in rows if all(p in r.figure for p in parts) and r.figure.endswith(ends)), None)

    def measured(rs: dict[str, Row | None]) -> dict[str, float]:
        return {k: r.ratio for k, r in rs.items() if r is not None and r.ratio is not None}

    def listed(ratios: dict[str, float]) -> str:
        return ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())

    out = []
    step80 = "training step, x-vector, 80-dim"
    train = measured({"fp32": find(step80, ends="fp32"), "bf16": find(step80, ends="bf16"),
                      "fp32 compiled": find(step80, "fp32, torch.compile"),
                      "bf16 compiled": find(step80, "bf16, torch.compile")})
    if train:
        line = (f"- Training step ≥ 1.5x SpeechBrain (same precision): {listed(train)}: "
                f"**{'met' if max(train.values()) >= 1.5 else 'not met'}**.")
        peak, step = find("matmul peak"), find("training step, x-vector 80-dim", "32 × 2 s")
        if peak is not None and step is not None and step.unit == "GFLOP/s":
            line += (f" The fp32 step already runs at {100 * step.ours[0] / peak.ours[0]:.0f}% of the measured matmul "
                     f"peak, so the same FLOPs cannot run more than {peak.ours[0] / step.ours[0]:.2f}x faster here.")
        out.append(line)
    extract = measured({f"{p} batch {b}": find(f"batch {b},", f"), {p}") for p in ("fp32", "bf16", "int8")
                        for b in (1, 16)})
    if extract:
        met = max(extract.values()) >= 2
        out.append(f"- Extraction ≥ 2x SpeechBrain (int8 against its fp32, the others at the same precision): "
                   f"{listed(extract)}: **{'met' if met else 'not met'}**{' with precision=int8' if met else ''}.")
    ours, sk = find("EER + minDCF"), find("roc_curve alone")
    if ours is not None and sk is not None:
        met = ours.ours[0] <= sk.ours[0]
        out.append(f"- Scoring no slower than sklearn's roc_curve: {ours.ours[0]:.0f} vs {sk.ours[0]:.0f} ms: "
                   f"**{'met' if met else 'not met'}**.")
    model = find("model only")
    fulls = [r for r in rows if r.figure.startswith("training, full pipeline")]
    if model is not None and fulls:
        best = max(r.ours[0] for r in fulls) / model.ours[0]
        out.append(f"- Full pipeline ≥ 0.9 of model-only: {best:.2f}: **{'met' if best >= 0.9 else 'not met'}**.")
    return ["## Targets (from this run)", "", *out] if out else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="few repeats, small inputs")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per figure")
    parser.add_argument("--data", help="a corpus root with train/ (default: a small synthetic one)")
    parser.add_argument("--num-workers", type=int, nargs="+", default=[1, 2], help="pipeline loader workers")
    parser.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    peer = speechbrain_available()
    print(f"SpeechBrain {'found' if peer else 'not installed: peer figures skipped'}", flush=True)
    rows: list[Row] = []
    runners = {
        "frontend": lambda: bench_frontend(repeats, peer),
        "train": lambda: bench_train(repeats, peer),
        "flops": lambda: bench_flops(repeats),
        "compile": lambda: bench_compile(repeats, peer),
        "pipeline": lambda: bench_pipeline(4 if args.quick else 20, args.data, args.num_workers),
        "extract": lambda: bench_extract(repeats, peer),
        "scoring": lambda: bench_scoring(repeats, 100_000 if args.quick else 1_000_000, peer),
    }
    for name in args.only:
        section = runners[name]()
        for r in section:
            ratio = "" if r.ratio is None else f"  ratio {r.ratio:.2f}x"
            peer_txt = "" if r.peer is None else f"  SpeechBrain {r.peer[0]:.3g}"
            print(f"[{name}] {r.figure}: {r.ours[0]:.3g} {r.unit}{peer_txt}{ratio}", flush=True)
        rows += section
    command = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    notes = [] if peer else ["SpeechBrain is not installed (`pip install -e '.[bench]'`): peer figures skipped."]
    notes += targets(rows)
    atomic_write_text(args.out, markdown("Benchmarks: xvector beside SpeechBrain", command.strip(), rows, notes))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
