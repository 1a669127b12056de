"""The on-device data path (``augment_on=device``) against the CPU path (``augment_on=workers``).

The workers plan with the same draws as the CPU transforms, so for one seed the batched device
path must give the CPU path's crops to float32 rounding; the SNR, RIR-alignment and speed-class
checks below hold for it on its own too. It runs here on the CPU, as it runs on a GPU.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from xvector.data.audio import load_audio, read_audio
from xvector.data.augment import AddNoise, Compose, OneOf, Reverberate, Transform, speed_perturb
from xvector.data.banks import AudioBank, as_float
from xvector.data.batch_augment import (
    BatchAugment,
    BatchedReverb,
    collate_planned,
    fft_length,
    resampled_length,
)
from xvector.data.channel import RandomChannel
from xvector.data.collate import EpochSampler, collate_waveforms
from xvector.data.datasets import CropDataset
from xvector.data.lists import load_data_dir
from xvector.training.datamodule import SpeakerDataModule

SPEEDS = (1.0, 0.9, 1.1)


@pytest.fixture(scope="module")
def aug_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("augment")
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_augment_dirs.py"
    runpy.run_path(str(script))["main"](
        ["--out", str(out), "--noise", "3", "--music", "2", "--speech", "4", "--rooms", "1",
         "--rirs-per-room", "2", "--min-sec", "0.2", "--max-sec", "0.6", "--seed", "1"])
    return out


def kaldi_like(aug_dir: Path, prob: float = 0.25) -> OneOf:
    """configs/augment/musan_rir.yaml's transforms, each more likely (every kind in each batch)."""
    return OneOf({"reverb": Reverberate(aug_dir / "RIRS_NOISES", prob=prob),
                  "noise": AddNoise(aug_dir / "musan/noise", snr_db=(0, 15), prob=prob),
                  "music": AddNoise(aug_dir / "musan/music", snr_db=(5, 15), prob=prob),
                  "babble": AddNoise(aug_dir / "musan/speech", snr_db=(13, 20), num_sources=(3, 7), prob=prob)})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from tests.conftest import write_noise_dir

    return load_data_dir(write_noise_dir(tmp_path_factory.mktemp("d"), {"a": 8, "b": 8}, seconds=0.5))


def _datasets(corpus, augment, seed=3, speeds=SPEEDS, chunk_sec=0.4):
    args = (corpus.wavs, corpus.utt2spk, {"a": 0, "b": 1}, chunk_sec)
    cpu = CropDataset(*args, seed=seed, augment=augment, speeds=speeds)
    dev = CropDataset(*args, seed=seed, augment=augment, speeds=speeds, on_device=True)
    return cpu, dev, BatchAugment(augment, speeds, 16000, dev.chunk)


def with_channel(aug_dir: Path) -> Compose:
    """A random channel (configs/augment/synthetic_channel.yaml's form) before kaldi_like's corruptions."""
    return Compose({"channel": RandomChannel(prob=0.5), "corrupt": kaldi_like(aug_dir)})


@pytest.mark.parametrize("make", [kaldi_like, with_channel])
def test_device_path_gives_the_cpu_path_crops(corpus, aug_dir, make):
    augment = make(aug_dir)
    cpu, dev, batched = _datasets(corpus, augment)
    fired = np.zeros(len(augment.leaves()), dtype=int)
    speeds_seen = set()
    for epoch in range(3):
        keys = [(epoch, i) for i in range(len(cpu))]
        want = collate_waveforms([cpu[k] for k in keys])
        batch = collate_planned([dev[k] for k in keys])
        assert batch["wav"].dtype == torch.int16  # 16-bit files: the workers hand over int16
        wav, wav_lens = batched(batch)
        torch.testing.assert_close(wav, want["wav"], atol=2e-6, rtol=0)
        assert torch.equal(batch["labels"], want["labels"]) and wav_lens.tolist() == want["wav_lens"].tolist()
        fired += [len(p["rows"]) for p in batch["aug"]]
        speeds_seen |= {k for k, rows in enumerate(batch["speed_rows"]) if len(rows)}
    assert (fired > 0).all() and speeds_seen == {0, 1, 2}  # every transform and speed was compared


def test_speed_classes_and_resampling_match_speed_perturb(corpus):
    cpu, dev, batched = _datasets(corpus, None, seed=0)
    items = [dev[(1, i)] for i in range(len(dev))]
    batch = collate_planned(items)
    wav, _ = batched(batch)
    for i, it in enumerate(items):
        k, spk = it["speed"], int(corpus.utt2spk[it["utt"]] == "b")
        assert it["label"] == spk + k * 2 and len(it["wav"]) == int(np.ceil(dev.chunk * SPEEDS[k]))
        ref = speed_perturb(as_float(it["wav"]), SPEEDS[k])[: dev.chunk]
        torch.testing.assert_close(wav[i], ref, atol=1e-6, rtol=0)
    assert resampled_length(35200, 17600, 16000) == 32000 == resampled_length(28800, 14400, 16000)


def test_snr_of_batched_noise_is_the_drawn_one(corpus, aug_dir):
    augment = kaldi_like(aug_dir)
    _, dev, batched = _datasets(corpus, augment)
    clean = BatchAugment(None, SPEEDS, 16000, dev.chunk)
    checked = 0
    for epoch in range(4):
        batch = collate_planned([dev[(epoch, i)] for i in range(len(dev))])
        noisy, _ = batched(batch)
        dry, _ = clean({**batch, "aug": []})  # the same crops, speed only
        for params in batch["aug"][1:]:  # noise, music, babble
            for row, snr in zip(params["rows"].tolist(), params["snr_db"].tolist()):
                measured = 10 * torch.log10(dry[row].double().pow(2).mean() / (noisy[row] - dry[row]).double().pow(2).mean())
                assert abs(float(measured) - snr) < 0.1
                checked += 1
        assert not batch["aug"][2]["rows"].numel() or int(batch["aug"][3].get("count", torch.tensor([3])).min()) >= 3
    assert checked >= 10


def test_batched_reverb_aligns_at_the_direct_path(tmp_path):
    rirs = tmp_path / "RIRS_NOISES/simulated_rirs/smallroom/Room001"
    rirs.mkdir(parents=True)
    delta = np.zeros(300, dtype=np.float32)
    delta[37] = 0.5  # delayed and scaled: alignment and power rescaling undo both
    echo = np.zeros(40, dtype=np.float32)
    echo[[1, 3]] = [1.0, 0.5]  # direct path + an echo 2 samples later at -6 dB
    sf.write(rirs / "Room001-00001.wav", delta, 16000, subtype="FLOAT")
    sf.write(rirs / "Room001-00002.wav", echo, 16000, subtype="FLOAT")
    op = BatchedReverb(Reverberate(tmp_path / "RIRS_NOISES").files)
    assert op.peaks.tolist() == [37, 1]
    x = torch.randn(2, 5000, generator=torch.Generator().manual_seed(1))
    x[1] = 0
    x[1, 1000] = 1.0
    out = op(x, {"index": torch.tensor([0, 1])})
    torch.testing.assert_close(out[0], x[0], atol=1e-5, rtol=0)
    scale = 1 / np.sqrt(1.25)
    torch.testing.assert_close(out[1, [999, 1000, 1001, 1002, 1003]],
                               torch.tensor([0, scale, 0, 0.5 * scale, 0], dtype=torch.float32), atol=1e-6, rtol=0)
    assert fft_length(5000 + 300 - 1) == 5400 and fft_length(32769) == 32805 == 3**8 * 5 and fft_length(1) == 1
    sf.write(rirs / "Room001-00003.wav", np.zeros(10, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="Room001-00003.wav: RIR must be non-zero"):
        BatchedReverb(Reverberate(tmp_path / "RIRS_NOISES").files)


def test_bank_crops_are_the_cpu_noise_reads(aug_dir):
    add = AddNoise(aug_dir / "musan/speech")
    bank = AudioBank.from_files(add.files)
    assert bank.samples.dtype == torch.int16 and len(bank) == len(add.files) == 4
    for k, n in enumerate(add.lengths):
        for num, start in ((n // 3, n // 2), (n + 777, 0), (3 * n, 0)):  # inside, wrapped once, wrapped twice
            want = add.read_noise(k, num, start)
            got = bank.crops(torch.tensor([k]), torch.tensor([start]), num)[0]
            assert torch.equal(got, torch.from_numpy(want))
    padded, lengths = bank.padded(torch.tensor([1, 0]))
    assert padded.shape == (2, bank.max_length) and lengths.tolist() == [add.lengths[1], add.lengths[0]]
    assert torch.equal(padded[0, : add.lengths[1]], torch.from_numpy(load_audio(add.files[1], 16000)))
    assert not padded[0, add.lengths[1]:].any()


def test_int16_reads_are_the_float_reads_exactly(tmp_path):
    rng = np.random.default_rng(0)
    pcm = tmp_path / "pcm.wav"
    sf.write(pcm, (0.3 * rng.standard_normal((800, 2))).astype(np.float32), 16000, subtype="PCM_16")
    as_int, _ = read_audio(pcm, 16000, 100, 500, multichannel="first", int16=True)
    assert as_int.dtype == np.int16
    np.testing.assert_array_equal(as_int / np.float32(32768), load_audio(pcm, 16000, 100, 500, multichannel="first"))
    mean, _ = read_audio(pcm, 16000, multichannel="mean", int16=True)  # averaging needs float
    flac = tmp_path / "f.flac"
    sf.write(flac, np.zeros(100, dtype=np.float32), 16000, subtype="PCM_16")
    flt = tmp_path / "float.wav"
    sf.write(flt, np.zeros(100, dtype=np.float32), 16000, subtype="FLOAT")
    assert mean.dtype == np.float32 and read_audio(flac, 16000, int16=True)[0].dtype == np.int16
    assert read_audio(flt, 16000, int16=True)[0].dtype == np.float32
    mixed = AudioBank.from_files([pcm, flt], multichannel="first")  # one float file: a float bank
    assert mixed.samples.dtype == torch.float32 and torch.equal(mixed.samples[:800],
                                                                 torch.from_numpy(load_audio(pcm, 16000, multichannel="first")))


def test_planned_epochs_are_seeded_and_the_same_for_any_workers(corpus, aug_dir):
    _, dev, batched = _datasets(corpus, kaldi_like(aug_dir))

    def epochs(workers: int) -> list[torch.Tensor]:
        sampler = EpochSampler(len(dev), seed=3)
        loader = DataLoader(dev, batch_size=4, sampler=sampler, collate_fn=collate_planned, num_workers=workers)
        out = []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            out += [torch.cat([batched(b)[0], b["labels"][:, None].float()], 1) for b in loader]
        return out

    first = epochs(0)
    for a, b in zip(first, epochs(2), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    _, other, _ = _datasets(corpus, kaldi_like(aug_dir), seed=4)
    assert not torch.equal(collate_planned([other[(0, i)] for i in range(4)])["wav"],
                           collate_planned([dev[(0, i)] for i in range(4)])["wav"])


class AddOne(Transform):
    def transform(self, wav, rng):
        return wav + 1


def test_device_path_refuses_what_it_cannot_do(corpus, aug_dir):
    with pytest.raises(ValueError, match="AddOne has no batched form .* data.augment_on=workers"):
        BatchAugment(OneOf({"a": AddOne(0.5)}), (1.0,), 16000, 100)
    noise = AddNoise(aug_dir / "musan/noise")
    with pytest.raises(ValueError, match="appears twice"):
        BatchAugment(Compose([noise, noise]), (1.0,), 16000, 100)
    cpu, _, batched = _datasets(corpus, kaldi_like(aug_dir))
    with pytest.raises(ValueError, match="no augmentation plan"):
        batched(collate_waveforms([cpu[(0, 0)]]))
    with pytest.raises(ValueError, match="augment_on='gpu'"):
        SpeakerDataModule(train_dir="x", augment_on="gpu")


def test_compose_plans_in_application_order(aug_dir):
    noise, reverb = AddNoise(aug_dir / "musan/noise", prob=0.5), Reverberate(aug_dir / "RIRS_NOISES", prob=0.5)
    chain = Compose({"reverb": reverb, "noise": noise})
    assert chain.leaves() == [reverb, noise]
    orders = {tuple(type(leaf).__name__ for leaf, _ in chain.plan(1000, np.random.default_rng(s))) for s in range(40)}
    assert orders == {(), ("Reverberate",), ("AddNoise",), ("Reverberate", "AddNoise")}


def test_datamodule_device_mode_batches(tmp_path, noise_dir, aug_dir):
    root = noise_dir(tmp_path / "d", {"b": 4, "a": 4}, seconds=0.5)
    dm = SpeakerDataModule(train_dir=str(root), chunk_sec=0.25, batch_size=8, num_workers=0, seed=0,
                           speeds=list(SPEEDS), augment=kaldi_like(aug_dir), augment_on="device")
    batch = next(iter(dm.train_dataloader()))
    assert batch["wav"].dtype == torch.int16 and batch["wav"].shape == (8, 4400) and dm.num_speakers == 6
    wav, lens = dm.batch_augment(batch)
    assert wav.shape == (8, 4000) and lens.tolist() == [4000] * 8
    assert SpeakerDataModule(train_dir=str(root)).batch_augment is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_path_gives_the_cpu_path_crops(corpus, aug_dir):
    from lightning.fabric.utilities.apply_func import move_data_to_device

    cpu, dev, batched = _datasets(corpus, kaldi_like(aug_dir))
    batched = batched.to("cuda")
    for epoch in range(2):
        keys = [(epoch, i) for i in range(len(cpu))]
        want = collate_waveforms([cpu[k] for k in keys])
        batch = move_data_to_device(collate_planned([dev[k] for k in keys]), torch.device("cuda"))
        torch.cuda.set_sync_debug_mode("error")  # the device path never waits for the GPU
        try:
            wav, _ = batched(batch)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        torch.testing.assert_close(wav.cpu(), want["wav"], atol=1e-5, rtol=0)
