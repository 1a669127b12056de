import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import RandomSampler

from xvector.data.audio import load_audio
from xvector.data.collate import EpochSampler, LengthSortedBatchSampler, collate_waveforms
from xvector.data.datasets import CropDataset, UtteranceDataset
from xvector.data.lists import load_data_dir
from xvector.training.datamodule import SpeakerDataModule, utterance_loader


def test_crops_have_fixed_length_and_labels(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"s1": 3, "s2": 2}, seconds=0.5)
    data = load_data_dir(root)
    spk2idx = {"s1": 0, "s2": 1}
    ds = CropDataset(data.wavs, data.utt2spk, spk2idx, chunk_sec=0.3)
    for i in range(len(ds)):
        item = ds[i]
        assert item["wav"].shape == (4800,)
        assert item["label"] == spk2idx[data.utt2spk[item["utt"]]]
        full = load_audio(data.wavs[item["utt"]], 16000)
        # the crop is a contiguous piece of the file
        starts = [s for s in range(len(full) - 4800 + 1) if np.array_equal(full[s : s + 4800], item["wav"].numpy())]
        assert starts


def test_short_utterance_is_repeated_to_fill(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.arange(1, 1001, dtype=np.float32) / 2000, 16000)
    ds = CropDataset({"u": path}, {"u": "s"}, {"s": 0}, chunk_sec=0.1)
    wav = ds[0]["wav"].numpy()
    assert wav.shape == (1600,)
    np.testing.assert_allclose(wav[1000:], wav[:600], atol=1e-4)


def test_collate_pads_and_keeps_lengths():
    batch = collate_waveforms(
        [{"wav": torch.ones(5), "utt": "a", "label": 1}, {"wav": 2 * torch.ones(2), "utt": "b", "label": 0}]
    )
    assert batch["wav"].shape == (2, 5) and batch["wav_lens"].tolist() == [5, 2]
    assert batch["wav"][1, 2:].abs().sum() == 0 and batch["labels"].tolist() == [1, 0]


def test_length_sorted_batches_cover_everything_once():
    sampler = LengthSortedBatchSampler([5, 1, 9, 3, 7], batch_size=2)
    assert list(sampler) == [[2, 4], [0, 3], [1]]
    assert len(sampler) == 3


def test_utterance_loader_whole_utterances(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"s1": 3}, seconds=0.4)
    loader = utterance_loader(root / "wav.scp", batch_size=2)
    seen = {}
    for batch in loader:
        for utt, wav, n in zip(batch["utts"], batch["wav"], batch["wav_lens"]):
            seen[utt] = wav[:n].numpy()
    assert sorted(seen) == loader.dataset.utts
    for utt, path in load_data_dir(root).wavs.items():
        np.testing.assert_array_equal(seen[utt], load_audio(path, 16000))


def test_datamodule_speaker_map_and_batches(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"b": 4, "a": 4}, seconds=0.5)
    dm = SpeakerDataModule(train_dir=str(root), chunk_sec=0.25, batch_size=4, num_workers=0)
    assert dm.spk2idx == {"a": 0, "b": 1} and dm.num_speakers == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["wav"].shape == (4, 4000) and batch["labels"].shape == (4,)
    # page-locked batches only where there is a GPU to copy to, unless asked for
    assert dm.train_dataloader().pin_memory is torch.cuda.is_available()
    pinned = SpeakerDataModule(train_dir=str(root), val_dir=str(root), chunk_sec=0.25, batch_size=4, num_workers=0,
                               pin_memory=True)
    assert pinned.train_dataloader().pin_memory and pinned.val_dataloader().pin_memory


def test_wrong_sample_rate_names_file(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match=r"a.wav.*8000 Hz"):
        UtteranceDataset({"u": path})[0]


def test_corrupt_file_names_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="bad.wav"):
        UtteranceDataset({"u": path})


def test_unseeded_crops_follow_torch_rng_as_before(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"s1": 2}, seconds=0.5)
    data = load_data_dir(root)
    ds = CropDataset(data.wavs, data.utt2spk, {"s1": 0}, chunk_sec=0.3)
    full = load_audio(data.wavs[ds.utts[1]], 16000)
    torch.manual_seed(0)
    wav = ds[1]["wav"].numpy()
    torch.manual_seed(0)
    start = int(torch.randint(0, len(full) - 4800 + 1, ()).item())
    np.testing.assert_array_equal(wav, full[start : start + 4800])


def test_seeded_crops_depend_on_seed_epoch_and_index_only(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"s1": 3}, seconds=0.5)
    data = load_data_dir(root)
    ds = CropDataset(data.wavs, data.utt2spk, {"s1": 0}, chunk_sec=0.3, seed=4)
    full = load_audio(data.wavs[ds.utts[2]], 16000)
    torch.manual_seed(123)  # torch's RNG plays no part
    start = int(np.random.default_rng([4, 7, 5, 2]).integers(0, len(full) - 4800 + 1))
    np.testing.assert_array_equal(ds[(5, 2)]["wav"].numpy(), full[start : start + 4800])
    assert not np.array_equal(ds[(6, 2)]["wav"].numpy(), ds[(5, 2)]["wav"].numpy())


def test_epoch_sampler_permutes_per_epoch():
    sampler = EpochSampler(10, seed=1)
    first = list(sampler)
    assert sorted(i for _, i in first) == list(range(10)) and {e for e, _ in first} == {0}
    assert list(sampler) == first
    sampler.set_epoch(1)
    second = list(sampler)
    assert {e for e, _ in second} == {1} and [i for _, i in second] != [i for _, i in first]
    assert len(sampler) == 10


def test_datamodule_sampler_choice(tmp_path, noise_dir):
    root = noise_dir(tmp_path / "d", {"b": 4, "a": 4}, seconds=0.5)
    plain = SpeakerDataModule(train_dir=str(root), chunk_sec=0.25, batch_size=4, num_workers=0)
    assert isinstance(plain.train_dataloader().sampler, RandomSampler)  # the original sampling
    seeded = SpeakerDataModule(train_dir=str(root), chunk_sec=0.25, batch_size=4, num_workers=0, seed=0)
    assert isinstance(seeded.train_dataloader().sampler, EpochSampler)


def test_resample_option_reads_other_rates_as_the_configured_one(tmp_path):
    # 0.5 s of a 440 Hz tone at 8 kHz, cropped to 0.25 s at 16 kHz.
    t = np.arange(4000) / 8000
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    wavs = {"u": tmp_path / "a.wav"}
    with pytest.raises(ValueError, match=r"a.wav: utterance 'u' has sample rate 8000 Hz.*data.resample=true"):
        CropDataset(wavs, {"u": "s"}, {"s": 0}, chunk_sec=0.25)
    ds = CropDataset(wavs, {"u": "s"}, {"s": 0}, chunk_sec=0.25, resample=True)
    assert ds.num_samples == [8000]
    crop = ds[0]["wav"].numpy()
    assert crop.shape == (4000,)
    # Still a 440 Hz tone, now sampled at 16 kHz: its spectrum peaks at bin 440 / (16000 / 4000).
    assert np.argmax(np.abs(np.fft.rfft(crop * np.hanning(len(crop))))) == round(440 / 4)
    whole = UtteranceDataset(wavs, 16000, resample=True)
    assert whole.lengths == [8000] and whole[0]["wav"].shape == (8000,)


def test_multichannel_option_downmixes_keeps_first_or_refuses(tmp_path):
    stereo = np.stack([np.full(1600, 0.2), np.full(1600, 0.4)], axis=1).astype(np.float32)
    sf.write(tmp_path / "st.wav", stereo, 16000)
    wavs, utt2spk = {"u": tmp_path / "st.wav"}, {"u": "s"}
    mean = CropDataset(wavs, utt2spk, {"s": 0}, chunk_sec=0.05)[0]["wav"]
    first = CropDataset(wavs, utt2spk, {"s": 0}, chunk_sec=0.05, multichannel="first")[0]["wav"]
    np.testing.assert_allclose(mean.numpy(), 0.3, atol=1e-4)
    np.testing.assert_allclose(first.numpy(), 0.2, atol=1e-4)
    with pytest.raises(ValueError, match=r"st.wav: utterance 'u': 2 channels, expected mono"):
        CropDataset(wavs, utt2spk, {"s": 0}, chunk_sec=0.05, multichannel="error")[0]
    with pytest.raises(ValueError, match=r"st.wav: 2 channels, expected mono"):
        UtteranceDataset(wavs, 16000, multichannel="error")[0]
