"""The SpeechBrain x-vector peer (recipes/robust/local/speechbrain_xvector.py) on a tiny corpus."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from tests.conftest import write_noise_dir
from xvector.data.lists import read_wav_scp, write_kaldi_map
from xvector.embeddings import load_embeddings

sb = pytest.importorskip("speechbrain")

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("speechbrain_xvector", REPO / "recipes/robust/local/speechbrain_xvector.py")
peer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peer)

# 3 speakers x 4 utterances of 0.7-1.3 s; 0.5 s chunks give 1-2 rows per utterance.
TINY = ["--chunk-sec", "0.5", "--batch-size", "8", "--threads", "1"]  # 2 threads stall when the CPUs are shared


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("sbpeer")
    train = write_noise_dir(root / "train", {f"s{i}": 4 for i in range(3)}, seconds=1.0)
    test = write_noise_dir(root / "test", {"t0": 2, "t1": 2}, seconds=1.5, seed=1)
    out = root / "exp"
    rc = peer.main(["--train-dir", str(train), "--out", str(out), "--epochs", "1", *TINY,
                    "--embed", f"train={train / 'wav.scp'}", "--embed", f"test={test / 'wav.scp'}"])
    assert rc == 0
    return train, test, out


def test_outputs(trained):
    train, test, out = trained
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["speechbrain"] == sb.__version__
    assert summary["data"]["speakers"] == 3 and summary["data"]["rows"] >= 12
    (epoch,) = summary["epochs"]
    assert epoch["complete"] and epoch["examples"] == summary["data"]["rows"]
    assert np.isfinite(epoch["loss"]) and 0 <= epoch["acc"] <= 1
    # The recipe's x-vector: 24 mels in, TDNN 512x4 + 1500, 512-dim embedding.
    assert summary["params"]["embedding_model"] == 4_211_604
    for name, data in (("train", train), ("test", test)):
        ids, emb = load_embeddings(out / f"{name}.npz")
        assert ids == list(read_wav_scp(data / "wav.scp"))
        assert emb.shape == (len(ids), 512) and emb.dtype == np.float32 and np.isfinite(emb).all()
    assert "epoch 1" in (out / "train_log.txt").read_text()


def test_embedding_is_speechbrains_forward(trained):
    """An embedding in test.npz = SpeechBrain's modules (built here from the recipe's values,
    loaded with the saved weights) on the whole utterance, as speaker_verification_cosine does."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.Xvector import Xvector
    from speechbrain.processing.features import InputNormalization

    _, test, out = trained
    model = Xvector(in_channels=24, activation=torch.nn.LeakyReLU, tdnn_blocks=5,
                    tdnn_channels=[512, 512, 512, 512, 1500], tdnn_kernel_sizes=[5, 3, 3, 1, 1],
                    tdnn_dilations=[1, 2, 3, 1, 1], lin_neurons=512)
    model.load_state_dict(torch.load(out / "model.pt", weights_only=True)["embedding_model"])  # strict
    model.eval()
    fbank, norm = Fbank(n_mels=24, left_frames=0, right_frames=0, deltas=False), InputNormalization(
        norm_type="sentence", std_norm=False)
    ids, emb = load_embeddings(out / "test.npz")
    utt = ids[-1]
    wav, rate = sf.read(read_wav_scp(test / "wav.scp")[utt], dtype="float32")
    assert rate == 16000
    wavs, lens = torch.from_numpy(wav)[None], torch.ones(1)
    with torch.no_grad():
        torch.manual_seed(0)  # StatisticsPooling adds seeded noise to the mean
        feats = norm(fbank(wavs), lens)
        expected = model(feats, lens)[0, 0].numpy()
        torch.manual_seed(1)
        other_noise = model(feats, lens)[0, 0].numpy()
    np.testing.assert_allclose(emb[ids.index(utt)], expected, rtol=0, atol=1e-5)
    assert not np.allclose(other_noise, expected, rtol=0, atol=1e-7)  # the noise is real, so is the seed
    # ...and the features are the recipe's: 24 log-mels, 10 ms hop, sentence mean removed.
    assert feats.shape == (1, len(wav) // 160 + 1, 24)
    torch.testing.assert_close(feats.mean(1), torch.zeros(1, 24), atol=1e-4, rtol=0)


def test_budget_stops_mid_epoch_and_embeds_again(trained, tmp_path):
    train, test, _ = trained
    out = tmp_path / "exp"
    assert peer.main(["--train-dir", str(train), "--out", str(out), "--time-budget-min", "1e-6", *TINY]) == 0
    (epoch,) = json.loads((out / "train_summary.json").read_text())["epochs"]
    assert not epoch["complete"] and epoch["batches"] == 1 and epoch["examples"] == 8
    # --skip-training embeds with the saved model; reruns are equal (seeded pooling noise).
    for name in ("a", "b"):
        assert peer.main(["--out", str(out), "--skip-training", "--embed", f"{name}={test / 'wav.scp'}"]) == 0
    np.testing.assert_array_equal(load_embeddings(out / "a.npz")[1], load_embeddings(out / "b.npz")[1])


def test_docstring_examples():
    import doctest

    assert doctest.testmod(peer).failed == 0


def test_budget_plan_renews_after_every_epoch():
    """The 24-speaker case: a 32 s first epoch planned 22 epochs of a 12-minute budget for good
    (7.4 of 12 min trained); renewed from epoch 2 on, the plan grows to what 22-23 s epochs fit,
    and shrinks again when the epochs slow down later."""
    durations, elapsed, plans, plan = [], 0.0, [], None
    for sec in [32.0, 23.0] + [22.0] * 8 + [40.0] * 12:
        durations.append(sec)
        elapsed += sec
        plan = peer.budget_epochs(720.0, plan, len(durations), elapsed, durations)
        plans.append(plan)
        if len(durations) == plan:
            break
    assert plans[:3] == [22, 30, 30]  # 1 + 688 // 32; 2 + 665 // 23; 31 would fit, < 10 % more
    assert peer.epoch_seconds(durations[:10]) == 22.0  # the first epoch's start-up is left out
    assert plans[-1] < 30 and len(durations) == plans[-1]  # the 40 s epochs cut the plan
    assert elapsed <= 720.0 + 40.0  # ...so the budget is kept to within an epoch


def test_budget_run_anneals_over_the_renewed_plan(trained, tmp_path, monkeypatch):
    """The training loop with a clock that each read advances by 1 s: every epoch's learning rate
    is the recipe's LinearScheduler over the plan made after the epoch before, and training ends
    with the plan."""
    from speechbrain.nnet.schedulers import LinearScheduler

    train, _, _ = trained
    ticks = iter(range(10**6))
    monkeypatch.setattr(peer.time, "perf_counter", lambda: float(next(ticks)))
    out = tmp_path / "exp"
    assert peer.main(["--train-dir", str(train), "--out", str(out), "--time-budget-min", "0.5", *TINY]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    epochs = summary["epochs"]
    assert len(epochs) == summary["epochs_planned"] == epochs[-1]["epochs_planned"] >= 3
    assert epochs[0]["lr"] == peer.RECIPE["lr"]
    for before, now in zip(epochs, epochs[1:]):
        expected = LinearScheduler(peer.RECIPE["lr"], peer.RECIPE["lr_final"], before["epochs_planned"])
        assert now["lr"] == pytest.approx(expected(before["epoch"])[1], rel=1e-6)
    assert epochs[-1]["wall_sec"] <= 30 + epochs[-1]["epoch_sec"]


def test_augment_is_the_recipes_five_way_batch(trained, tmp_path):
    from xvector.corpora.synthetic.noise import make_augment_dirs

    train, _, _ = trained
    aug = tmp_path / "aug"
    make_augment_dirs(aug, n_noise=2, n_music=1, n_speech=1, rooms_per_size=1, rirs_per_room=1,
                      min_sec=1.0, max_sec=1.5)
    out = tmp_path / "exp"
    assert peer.main(["--train-dir", str(train), "--out", str(out), "--epochs", "1", *TINY, "--augment", str(aug)]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    # original + AddNoise, AddReverb, DropFreq, DropChunk, each on the whole batch
    assert summary["epochs"][0]["examples"] == 5 * summary["data"]["rows"]
    assert (out / "noise.csv").read_text().count(".wav") == 2  # musan/noise only
    assert (out / "rir.csv").read_text().count(".wav") == 3


def test_bad_input_is_one_line(tmp_path, capsys):
    train = write_noise_dir(tmp_path / "train", {"s0": 2, "s1": 2})
    write_kaldi_map(train / "wav.scp", {**{u: str(p) for u, p in read_wav_scp(train / "wav.scp").items()},
                                        "s1-u01": str(tmp_path / "gone.wav")})
    assert peer.main(["--train-dir", str(train), "--out", str(tmp_path / "exp"), *TINY]) == 1
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("speechbrain_xvector: ")]
    assert "Traceback" not in err and "s1-u01" in line and "gone.wav" in line
