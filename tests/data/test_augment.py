import runpy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from xvector.corpora.synthetic.noise import ROOMS
from xvector.data.augment import (
    AddNoise,
    Compose,
    OneOf,
    Reverberate,
    Transform,
    mix_at_snr,
    reverberate,
    speed_perturb,
)
from xvector.data.collate import EpochSampler, collate_waveforms
from xvector.data.datasets import CropDataset
from xvector.data.lists import load_data_dir
from xvector.training.datamodule import SpeakerDataModule


def snr_db(clean: torch.Tensor, mixed: torch.Tensor) -> float:
    clean = clean.double()
    return float(10 * torch.log10(clean.pow(2).mean() / (mixed.double() - clean).pow(2).mean()))


@pytest.fixture(scope="module")
def aug_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("augment")
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_augment_dirs.py"
    counts = runpy.run_path(str(script))["main"](
        ["--out", str(out), "--noise", "3", "--music", "2", "--speech", "4", "--rooms", "1",
         "--rirs-per-room", "2", "--min-sec", "0.3", "--max-sec", "0.6", "--seed", "1"])
    assert counts == {"noise": 3, "music": 2, "speech": 4, "smallroom": 2, "mediumroom": 2, "largeroom": 2}
    return out


def test_generator_writes_musan_and_rirs_noises_layout(aug_dir):
    for kind, n in (("noise", 3), ("music", 2), ("speech", 4)):
        files = sorted((aug_dir / "musan" / kind).glob("**/*.wav"))
        assert len(files) == n
        wav, sr = sf.read(files[0])
        assert sr == 16000 and 0.3 * sr <= len(wav) <= 0.6 * sr and 0.4 < np.abs(wav).max() <= 0.5
    for size in ROOMS:
        rirs = sorted((aug_dir / "RIRS_NOISES" / "simulated_rirs" / size).glob("Room*/*.wav"))
        assert [p.relative_to(aug_dir / "RIRS_NOISES/simulated_rirs").as_posix() for p in rirs] == [
            f"{size}/Room001/Room001-00001.wav", f"{size}/Room001/Room001-00002.wav"]
        rir, _ = sf.read(rirs[0])
        assert np.abs(rir).max() == pytest.approx(1.0)  # the direct path is the peak
        lines = (aug_dir / "RIRS_NOISES/simulated_rirs" / size / "rir_list").read_text().splitlines()
        assert lines[0] == (f"--rir-id {size}-Room001-00001 --room-id {size}-Room001 "
                            f"RIRS_NOISES/simulated_rirs/{size}/Room001/Room001-00001.wav")
    # Kaldi's default reverberation set: small and medium rooms
    assert len(Reverberate(aug_dir / "RIRS_NOISES").files) == 4


@pytest.mark.parametrize("target_db", [-5.0, 0.0, 7.3, 20.0])
def test_mix_at_snr_known_answer(target_db):
    g = torch.Generator().manual_seed(0)
    wav, noise = torch.randn(8000, generator=g), 3 * torch.randn(8000, generator=g)
    assert abs(snr_db(wav, mix_at_snr(wav, noise, target_db)) - target_db) < 0.1


def test_add_noise_measured_snr_equals_drawn(aug_dir):
    wav = torch.from_numpy(sf.read(next((aug_dir / "musan/speech").glob("**/*.wav")), dtype="float32")[0][:4000])
    for kind, sources in (("noise", (1, 1)), ("music", (1, 1)), ("speech", (3, 7))):
        aug = AddNoise(aug_dir / "musan" / kind, snr_db=(12.5, 12.5), num_sources=sources)
        for seed in range(3):
            assert abs(snr_db(wav, aug(wav, np.random.default_rng(seed))) - 12.5) < 0.1
    # a range: the measured SNR is the one drawn from the same stream
    aug = AddNoise(aug_dir / "musan/noise", snr_db=(0, 15))
    rng = np.random.default_rng(5)
    rng.random(), rng.integers(1, 2), rng.choice(3, size=1)  # coin, source count, file
    rng.integers(0, 1)  # crop start (files are longer than the crop)
    drawn = rng.uniform(0, 15)
    assert abs(snr_db(wav, aug(wav, np.random.default_rng(5))) - drawn) < 0.1


def test_delta_rir_is_identity(tmp_path):
    wav = torch.randn(5000, generator=torch.Generator().manual_seed(1))
    rir = torch.zeros(300)
    rir[37] = 0.5  # delayed and scaled: alignment and power rescaling undo both
    torch.testing.assert_close(reverberate(wav, rir), wav, atol=1e-5, rtol=0)
    path = tmp_path / "RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav"
    path.parent.mkdir(parents=True)
    sf.write(path, rir.numpy(), 16000, subtype="FLOAT")
    torch.testing.assert_close(Reverberate(tmp_path / "RIRS_NOISES")(wav, np.random.default_rng(0)), wav, atol=1e-5, rtol=0)


def test_reverberation_keeps_power_and_echoes(aug_dir):
    wav = torch.zeros(4000)
    wav[1000] = 1.0
    rir = torch.tensor([0.0, 1.0, 0.0, 0.5])  # direct path + an echo 2 samples later at -6 dB
    out = reverberate(wav, rir)
    scale = 1 / np.sqrt(1.25)
    torch.testing.assert_close(out[[1000, 1002]], torch.tensor([scale, 0.5 * scale], dtype=torch.float32), atol=1e-6, rtol=0)
    speech = torch.randn(8000, generator=torch.Generator().manual_seed(2))
    out = Reverberate(aug_dir / "RIRS_NOISES")(speech, np.random.default_rng(0))
    assert out.shape == speech.shape and float(out.pow(2).mean()) == pytest.approx(float(speech.pow(2).mean()), rel=1e-5)


def test_speed_perturbation_length_and_pitch():
    assert len(speed_perturb(torch.zeros(11000), 1.1)) == 10000
    assert len(speed_perturb(torch.zeros(9000), 0.9)) == 10000
    t = torch.arange(16000) / 16000
    faster = speed_perturb(torch.sin(2 * torch.pi * 1000 * t), 1.1)  # 1 kHz plays at 1.1 kHz
    spectrum = torch.fft.rfft(faster[1000:-1000])
    assert float(spectrum.abs().argmax()) * 16000 / (len(faster) - 2000) == pytest.approx(1100, abs=2)
    with pytest.raises(ValueError, match="speed"):
        speed_perturb(torch.zeros(10), 0.0)


class AddOne(Transform):
    def transform(self, wav, rng):
        return wav + 1


def test_probabilities_zero_and_one_and_one_of(aug_dir):
    wav = torch.zeros(100)
    rngs = [np.random.default_rng(i) for i in range(50)]
    assert all(torch.equal(AddNoise(aug_dir / "musan/noise", prob=0.0)(wav + 1, r), wav + 1) for r in rngs)
    assert all(float(Compose([AddOne(1.0), AddOne(1.0)])(wav, r)[0]) == 2 for r in rngs)
    one_of = OneOf({"a": AddOne(0.2), "b": Compose([AddOne(1.0), AddOne(1.0)], prob=0.4)})
    counts = np.bincount([int(one_of(wav, np.random.default_rng(i))[0]) for i in range(4000)], minlength=3)
    np.testing.assert_allclose(counts / 4000, [0.4, 0.2, 0.4], atol=0.03)
    with pytest.raises(ValueError, match="sum to 1.200"):
        OneOf([AddOne(0.6), AddOne(0.6)])
    with pytest.raises(ValueError, match="prob"):
        AddOne(1.5)
    with pytest.raises(ValueError, match="no files match"):
        AddNoise(aug_dir / "nothing")


def test_augmented_crops_reproducible_for_any_workers(tmp_path, noise_dir, aug_dir):
    data = load_data_dir(noise_dir(tmp_path / "d", {"a": 4, "b": 4}, seconds=0.5))
    augment = OneOf({"noise": AddNoise(aug_dir / "musan/noise", prob=0.5),
                     "reverb": Reverberate(aug_dir / "RIRS_NOISES", prob=0.5)})
    ds = CropDataset(data.wavs, data.utt2spk, {"a": 0, "b": 1}, 0.25, seed=3, augment=augment, speeds=(1.0, 0.9, 1.1))
    assert torch.equal(ds[(1, 2)]["wav"], ds[(1, 2)]["wav"]) and not torch.equal(ds[(1, 2)]["wav"], ds[(2, 2)]["wav"])

    def epochs(workers: int) -> list[torch.Tensor]:
        sampler = EpochSampler(len(ds), seed=3)
        loader = DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=collate_waveforms, num_workers=workers)
        out = []
        for epoch in range(2):
            sampler.set_epoch(epoch)
            out += [torch.cat([b["wav"], b["labels"][:, None].float()], 1) for b in loader]
        return out

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # workers run single-threaded; threaded FFTs round differently (~3e-8)
    try:
        for a, b in zip(epochs(0), epochs(2), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    finally:
        torch.set_num_threads(threads)


def test_speed_perturbation_triples_classes(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"b": 4, "a": 4}, seconds=0.5)
    dm = SpeakerDataModule(train_dir=str(root), chunk_sec=0.25, batch_size=8, num_workers=0, seed=0,
                           speeds=[1.0, 0.9, 1.1])
    assert dm.num_speakers == 6
    labels = set()
    for epoch in range(4):
        dm.train_dataloader().sampler.set_epoch(epoch)
        batch = next(iter(dm.train_dataloader()))
        assert batch["wav"].shape == (8, 4000)
        labels |= set(batch["labels"].tolist())
    assert labels <= set(range(6)) and len(labels) > 2
    with pytest.raises(ValueError, match="distinct positive"):
        CropDataset({}, {}, {}, 0.25, speeds=[1.0, 1.0])


def test_ensure_augment_dirs_generates_once(tmp_path, monkeypatch):
    import xvector.corpora.synthetic.noise as noise_gen

    calls = []
    real = noise_gen.make_augment_dirs
    monkeypatch.setattr(noise_gen, "make_augment_dirs", lambda out, **kw: calls.append(out) or real(
        out, n_noise=1, n_music=1, n_speech=1, rooms_per_size=1, rirs_per_room=1, min_sec=0.2, max_sec=0.3, **kw))
    assert noise_gen.ensure_augment_dirs(tmp_path, "musan/noise") == tmp_path / "musan/noise"
    assert noise_gen.ensure_augment_dirs(tmp_path, "RIRS_NOISES") == tmp_path / "RIRS_NOISES"
    assert len(calls) == 1 and len(AddNoise(tmp_path / "musan/noise").files) == 1
