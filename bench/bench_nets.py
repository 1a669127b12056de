#!/usr/bin/env python
"""Training-step and extraction speed of the nets, beside ECAPA-TDNN and SpeechBrain's ECAPA.

    python bench/bench_nets.py                      # -> bench/RESULTS_nets.md
    python bench/bench_nets.py --quick              # fewer repeats (a smoke run)
    python bench/bench_nets.py --only campp dtdnn   # some nets

For each net, in one process on the same inputs:

- **training step**: forward + AAM-softmax loss (1000 classes) + backward + Adam on 32 × 2 s of
  80-dim features (200 frames), float32, samples/s;
- **extraction**: 16 utterances of 10 s, front-end (Kaldi fbank 80) included, as
  ``xvector-extract`` runs it (:func:`xvector.inference.embedder.for_inference`: BatchNorm folded
  where the net allows it), audio seconds per second;
- parameters and training-step GFLOP (``torch.utils.flop_counter``).

Nets: the published sizes (ECAPA-TDNN C=512, CAM++, D-TDNN at 80-dim input) and the synthetic
recipe's (``configs/experiment/synthetic_*_aam.yaml``). Ratios are against our ECAPA-TDNN C=512 in
the same run; SpeechBrain's ``ECAPA_TDNN`` (C=512, its default) is the peer row, on the same
inputs (its own 80-dim Fbank for extraction), when SpeechBrain is installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import fmt, machine_line, rate, timed  # noqa: E402
from xvector.atomic import atomic_write_text  # noqa: E402


def nets() -> dict[str, tuple[str, Callable[[], torch.nn.Module]]]:
    from xvector.nets.campp import CAMPlusPlus
    from xvector.nets.dtdnn import DTDNN
    from xvector.nets.ecapa_tdnn import ECAPATDNN
    from xvector.nets.tdnn import XVector

    return {
        "ecapa512": ("ECAPA-TDNN C=512 (paper)", lambda: ECAPATDNN(in_channels=80)),
        "campp": ("CAM++ (paper)", lambda: CAMPlusPlus(in_channels=80)),
        "dtdnn": ("D-TDNN (paper layout, 80-dim input)", lambda: DTDNN(in_channels=80)),
        "xvector_recipe": ("x-vector, synthetic recipe (half width)",
                           lambda: XVector(in_channels=80, channels=[256, 256, 256, 256, 768], segment_dims=[])),
        "ecapa_recipe": ("ECAPA-TDNN C=160, synthetic recipe", lambda: ECAPATDNN(in_channels=80, channels=(160,) * 4 + (480,))),
        "campp_recipe": ("CAM++ half width/depth, synthetic recipe",
                         lambda: CAMPlusPlus(in_channels=80, fcm_channels=16, init_channels=64, growth=16,
                                             block_layers=(6, 12, 8))),
        "dtdnn_recipe": ("D-TDNN half width, synthetic recipe",
                         lambda: DTDNN(in_channels=80, init_channels=64, growth=32)),
    }


def _step(net: torch.nn.Module, head_dim: int, sb_layout: bool = False):
    from xvector.losses.margin import AAMSoftmax

    torch.manual_seed(0)
    head = AAMSoftmax(head_dim, 1000)
    feats = torch.randn(32, 200, 80) if sb_layout else torch.randn(32, 80, 200)
    labels = torch.randint(0, 1000, (32,))
    opt = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=1e-3)
    net.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        emb = net(feats).reshape(32, -1)
        F.cross_entropy(head(emb, labels).float(), labels).backward()
        opt.step()

    return step, feats


def _gflop(net: torch.nn.Module, feats: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        net(feats).sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 1e9


def _randomise_batchnorms(net: torch.nn.Module) -> None:
    for m in net.modules():  # statistics as after training (speed does not depend on them)
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


def bench_net(make: Callable[[], torch.nn.Module], repeats: int) -> dict:
    from xvector.features.fbank import Fbank
    from xvector.inference.embedder import Embedder, for_inference

    net = make()
    step, feats = _step(net, net.head_in_dim)
    t_step = timed(step, repeats, warmup=2)
    gflop = _gflop(net, feats)
    net.eval()
    _randomise_batchnorms(net)
    embedder = for_inference(Embedder(Fbank(num_mel_bins=80), net))
    wav, lens = 0.1 * torch.randn(16, 160000), torch.full((16,), 160000)
    with torch.inference_mode():
        t_ext = timed(lambda: embedder(wav, lens), repeats, warmup=1)
    return {"params": sum(p.numel() for p in net.parameters()), "gflop": gflop,
            "train": rate(t_step, 32), "extract": rate(t_ext, 160.0)}


def bench_speechbrain(repeats: int) -> dict | None:
    try:
        from speechbrain.lobes.features import Fbank as SBFbank
        from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    except ImportError:
        return None
    net = ECAPA_TDNN(input_size=80)  # channels 512 x4, 1536: the paper's C=512
    step, feats = _step(net, 192, sb_layout=True)
    t_step = timed(step, repeats, warmup=2)
    gflop = _gflop(net, feats)
    net.eval()
    fbank = SBFbank(n_mels=80).eval()
    wav = 0.1 * torch.randn(16, 160000)
    with torch.inference_mode():
        t_ext = timed(lambda: net(fbank(wav)), repeats, warmup=1)
    return {"params": sum(p.numel() for p in net.parameters()), "gflop": gflop,
            "train": rate(t_step, 32), "extract": rate(t_ext, 160.0)}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    table = nets()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=sorted(table), default=list(table))
    p.add_argument("--quick", action="store_true", help="2 repeats")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "bench" / "RESULTS_nets.md"))
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    names = list(dict.fromkeys(["ecapa512", *args.only]))  # ECAPA C=512: the reference of the ratios
    results = {}
    for name in names:
        results[name] = bench_net(table[name][1], repeats)
        r = results[name]
        print(f"[nets] {table[name][0]}: {r['params'] / 1e6:.2f} M, {r['gflop']:.0f} GFLOP/step, "
              f"train {r['train'][0]:.1f} samples/s, extract {r['extract'][0]:.0f} audio s/s", flush=True)
    peer = bench_speechbrain(repeats)
    ref = results["ecapa512"]
    lines = [
        "# Nets: training step and extraction speed beside ECAPA-TDNN", "",
        f"Command: `{' '.join(['python', 'bench/bench_nets.py', *argv])}`  ",
        f"Machine: {machine_line()}", "",
        "Training step: forward + AAM loss (1000 classes) + backward + Adam, 32 × 2 s of 80-dim features, fp32. "
        "Extraction: 16 × 10 s, Kaldi fbank 80 included, inference form (`for_inference`). Each value: median "
        f"(min–max) of {repeats} runs after warm-up; ratios against our ECAPA-TDNN C=512 in this run.", "",
        "| net | parameters | GFLOP / step | training step (samples/s) | vs ECAPA | extraction (audio s/s) | vs ECAPA |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in names:
        r = results[name]
        lines.append(f"| {table[name][0]} | {r['params'] / 1e6:.2f} M | {r['gflop']:.0f} | {fmt(r['train'])} | "
                     f"{r['train'][0] / ref['train'][0]:.2f}x | {fmt(r['extract'])} | {r['extract'][0] / ref['extract'][0]:.2f}x |")
    if peer:
        lines.append(f"| SpeechBrain 1.1.2 `ECAPA_TDNN` (C=512; its Fbank) | {peer['params'] / 1e6:.2f} M | "
                     f"{peer['gflop']:.0f} | {fmt(peer['train'])} | {peer['train'][0] / ref['train'][0]:.2f}x | "
                     f"{fmt(peer['extract'])} | {peer['extract'][0] / ref['extract'][0]:.2f}x |")
    else:
        lines.append("| SpeechBrain `ECAPA_TDNN` | – | – | skipped (not installed) | – | – | – |")
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
