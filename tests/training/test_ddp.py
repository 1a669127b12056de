"""Distributed data parallel: validation shards, the embedding gather, and real 2-process runs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import TINY_NET
from xvector.cli.train import build
from xvector.data.collate import collate_waveforms
from xvector.data.lists import read_kaldi_map, read_trials, utt2spk_to_spk2utt, write_kaldi_map
from xvector.metrics import verification_metrics
from xvector.scoring.cosine import score_trials
from xvector.training.datamodule import utterance_loader
from xvector.training.system import merge_rank_embeddings, shard_batches


def test_merge_rank_embeddings_keeps_each_utterance_once():
    parts = [(["a", "b"], np.array([[1.0, 0.0], [2.0, 0.0]])), (["c", "a"], np.array([[3.0, 0.0], [9.0, 9.0]]))]
    utts, embs = merge_rank_embeddings(parts)
    assert utts == ["a", "b", "c"]
    np.testing.assert_array_equal(embs, [[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])  # the first copy of "a"
    utts, embs = merge_rank_embeddings([([], np.zeros((0, 0))), (["x"], np.ones((1, 4)))])
    assert utts == ["x"] and embs.shape == (1, 4)


def test_shard_batches_splits_the_validation_set_between_ranks(tiny_corpus):
    loader = utterance_loader(tiny_corpus / "dev" / "wav.scp", batch_size=3)
    assert loader.collate_fn is collate_waveforms
    whole = [u for batch in loader for u in batch["utts"]]
    shards = [[u for batch in shard_batches(loader, rank, 3) for u in batch["utts"]] for rank in range(3)]
    assert sorted(u for s in shards for u in s) == sorted(whole)  # every utterance exactly once
    assert all(shards) and shard_batches(loader, 0, 1) is loader
    first = next(iter(shard_batches(loader, 1, 3)))
    assert first["wav"].shape[0] == len(first["utts"]) and first["wav_lens"].max() == first["wav"].shape[1]


def _odd_dev_corpus(tiny_corpus: Path, root: Path) -> Path:
    """tiny_corpus with one dev utterance dropped (15 left), so 2 ranks get unequal shares."""
    root.mkdir(parents=True)
    (root / "train").symlink_to(tiny_corpus / "train")
    dev = root / "dev"
    dev.mkdir(parents=True)
    wavs = read_kaldi_map(tiny_corpus / "dev" / "wav.scp")
    utt2spk = read_kaldi_map(tiny_corpus / "dev" / "utt2spk")
    drop = sorted(wavs)[-1]
    wavs = {u: str((tiny_corpus / "dev" / p).resolve()) for u, p in wavs.items() if u != drop}
    utt2spk = {u: s for u, s in utt2spk.items() if u != drop}
    write_kaldi_map(dev / "wav.scp", wavs)
    write_kaldi_map(dev / "utt2spk", utt2spk)
    write_kaldi_map(dev / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    trials = [t for t in read_trials(tiny_corpus / "dev" / "trials") if drop not in (t.enroll, t.test)]
    (dev / "trials").write_text("".join(f"{t.enroll} {t.test} {'target' if t.target else 'nontarget'}\n" for t in trials))
    return root


def _last_logged(metrics_csv: Path, key: str) -> float:
    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get(key)]
    return float(rows[-1][key])


@pytest.mark.slow
def test_ddp_two_cpu_processes_val_eer_equals_single_process(tiny_corpus, tmp_path, compose_config):
    data = _odd_dev_corpus(tiny_corpus, tmp_path / "data")
    out = tmp_path / "ddp"
    args = [f"paths.data_dir={data}", *TINY_NET, "trainer.max_epochs=1", "trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false", "data.val_batch_size=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "xvector.cli.train", *args, f"paths.output_dir={out}",
         "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "world_size=2" in run.stderr.replace(" ", "") or "Initializing distributed: GLOBAL_RANK: 1" in run.stderr
    ddp_eer = _last_logged(out / "csv" / "metrics.csv", "val/eer")
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    # the same weights, validated by one process over all 15 utterances
    system, datamodule, trainer = build(compose_config("train", [*args, f"paths.output_dir={tmp_path / 'single'}"]))
    [single] = trainer.validate(system, datamodule=datamodule, ckpt_path=out / "checkpoints" / "last.ckpt")
    assert len(system._val_utts) == 15
    assert ddp_eer == pytest.approx(single["val/eer"], abs=1e-6)
    # ... which rank 0's share alone would not give: the gather matters
    loader = shard_batches(datamodule.val_dataloader(), 0, 2)
    with torch.no_grad():
        parts = [(b["utts"], system.embedder.eval()(b["wav"], b["wav_lens"]).numpy()) for b in loader]
    utts, embs = merge_rank_embeddings(parts)
    trials = [t for t in read_trials(data / "dev" / "trials") if t.enroll in utts and t.test in utts]
    labels = np.array([t.target for t in trials])
    rank0_eer = verification_metrics(score_trials(utts, embs, trials), labels)["eer"]
    assert len(utts) < 15 and abs(rank0_eer - ddp_eer) > 1e-3


# Trains under DDP with a NaN put into one batch of rank 1 only; each rank saves what it saw.
# Lightning starts rank 1 by running this same script again (with its rank in the environment).
_NAN_ON_ONE_RANK = textwrap.dedent('''
    import sys
    import lightning as L
    import torch
    from hydra import compose, initialize_config_dir
    from xvector import CONFIG_DIR
    from xvector.cli.train import build

    class PoisonRank1(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_rank == 1 and trainer.global_step == 1:
                batch["wav"][0, 100] = float("nan")

    out, overrides = sys.argv[1], sys.argv[2:]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    system, datamodule, trainer = build(cfg)
    trainer.callbacks.append(PoisonRank1())
    trainer.fit(system, datamodule=datamodule)
    loader = trainer.train_dataloader
    torch.save({"skipped": system.skipped_batches, "step": trainer.global_step,
                "loader": (type(loader).__name__, type(loader.sampler).__name__, loader.state_dict()["batches"]),
                "logged": float(trainer.callback_metrics["train/skipped_batches"]),
                "params": {k: v.detach().clone() for k, v in system.named_parameters()}},
               f"{out}/rank{trainer.global_rank}.pt")
''')


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", [[], ["+optimizer.fused=true"]], ids=["host-decided", "device-decided"])
def test_ddp_nan_on_one_rank_skips_the_step_on_every_rank(tiny_corpus, tmp_path, optimizer):
    """Decided on the host (one sync per step), or on the device: the flag all-reduced as a tensor
    and handed to the fused optimizer as found_inf, counted at the epoch's end."""
    script = tmp_path / "nan_on_one_rank.py"
    script.write_text(_NAN_ON_ONE_RANK)
    args = [f"paths.data_dir={tiny_corpus}", f"paths.output_dir={tmp_path / 'run'}", *TINY_NET, "trainer.max_epochs=1",
            "trainer.limit_train_batches=3", "trainer.limit_val_batches=0", "trainer.enable_progress_bar=false",
            "nan_policy=skip", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", *optimizer]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # its own process group, so that a hang kills rank 1 (Lightning's child) too
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), *args],
                            cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"DDP run with a NaN on one rank hung:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    assert [(r["skipped"], r["logged"], r["step"]) for r in ranks] == [(1, 1.0, 3)] * 2  # counted alike
    # Lightning rebuilt the resumable training loader around its distributed sampler
    assert [r["loader"] for r in ranks] == [("ResumableLoader", "DistributedSampler", 3)] * 2
    assert "non-finite training loss (nan) at global step 1" in output  # rank 1's own warning
    assert "non-finite training loss (on another rank;" in output  # rank 0 followed
    for key, value in ranks[0]["params"].items():
        assert torch.isfinite(value).all()
        torch.testing.assert_close(ranks[1]["params"][key], value, rtol=0, atol=0)  # still one model
