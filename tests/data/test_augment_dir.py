import runpy
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra.utils import instantiate
from omegaconf import OmegaConf

from xvector.corpora.synthetic.noise import make_augment_dirs
from xvector.data.augment import OneOf
from xvector.data.augment_dir import always_one_of, augment_data_dir, load_augment_config
from xvector.data.lists import load_data_dir, read_spk2utt, write_kaldi_map

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "augment_data_dir.py"
SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A 3-utterance data dir of 2 speakers (0.5-0.8 s) and small stand-in noise / RIR folders."""
    root = tmp_path_factory.mktemp("augdir")
    make_augment_dirs(root / "augment", n_noise=2, n_music=1, n_speech=3, rooms_per_size=1, rirs_per_room=1,
                      min_sec=1.0, max_sec=1.2, seed=3)
    rng = np.random.default_rng(0)
    wavs, utt2spk = {}, {}
    for utt, spk, sec in (("a-1", "a", 0.5), ("a-2", "a", 0.8), ("b-1", "b", 0.6)):
        t = np.arange(int(sec * SR)) / SR
        x = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(len(t))
        path = root / "wav" / f"{utt}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, x.astype(np.float32), SR)
        wavs[utt], utt2spk[utt] = str(path), spk
    write_kaldi_map(root / "train" / "wav.scp", wavs)
    write_kaldi_map(root / "train" / "utt2spk", utt2spk)
    return root


def run_script(*args: str) -> dict:
    return runpy.run_path(str(SCRIPT))["main"](list(args))


def test_every_utterance_gets_corrupted_copies_with_its_speaker(corpus, tmp_path):
    out = tmp_path / "train_aug"
    counts = run_script(str(corpus / "train"), str(out), "--augment-dir", str(corpus / "augment"), "--copies", "2")
    assert counts == {"utterances": 3, "copies": 6}
    aug = load_data_dir(out)
    assert aug.utts == ["a-1-aug1", "a-1-aug2", "a-2-aug1", "a-2-aug2", "b-1-aug1", "b-1-aug2"]
    assert aug.utt2spk == {u: u[0] for u in aug.utts}
    assert read_spk2utt(out / "spk2utt") == {"a": aug.utts[:4], "b": aug.utts[4:]}
    src = load_data_dir(corpus / "train")
    copies = {}
    for utt in aug.utts:
        y, sr = sf.read(aug.wavs[utt], dtype="float32")
        assert sr == SR and sf.info(str(aug.wavs[utt])).subtype == "FLOAT"  # no clipping at 0 dB SNR
        x, _ = sf.read(src.wavs[utt.rsplit("-aug", 1)[0]], dtype="float32")
        assert y.shape == x.shape and np.abs(y - x).max() > 1e-3  # every copy is corrupted
        copies[utt] = y
    assert np.abs(copies["a-1-aug1"] - copies["a-1-aug2"]).max() > 1e-3  # two draws, two copies
    # a rerun writes the same audio (draws seeded by seed, utterance and copy)
    again = tmp_path / "again"
    run_script(str(corpus / "train"), str(again), "--augment-dir", str(corpus / "augment"), "--copies", "2")
    for utt in aug.utts:
        np.testing.assert_array_equal(sf.read(again / "wav" / f"{utt}.wav", dtype="float32")[0], copies[utt])
    assert not list(out.rglob("*.tmp"))


def test_copies_are_at_the_snr_the_config_draws(corpus, tmp_path):
    cfg = {"_target_": "xvector.data.augment.OneOf", "transforms": {"noise": {
        "_target_": "xvector.data.augment.AddNoise", "noise_dir": str(corpus / "augment" / "musan" / "noise"),
        "snr_db": [5, 10], "prob": 0.15}}}
    augment = instantiate(always_one_of(cfg))
    augment_data_dir(corpus / "train", tmp_path / "aug", augment, SR, copies=3, seed=7)
    src, aug = load_data_dir(corpus / "train"), load_data_dir(tmp_path / "aug")
    for utt in aug.utts:
        x = sf.read(src.wavs[utt.rsplit("-aug", 1)[0]], dtype="float64")[0]
        y = sf.read(aug.wavs[utt], dtype="float64")[0]
        snr = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
        assert 5.0 - 1e-3 <= snr <= 10.0 + 1e-3, (utt, snr)


def test_always_one_of_gives_each_kind_an_equal_share():
    cfg = OmegaConf.load(ROOT / "configs" / "augment" / "synthetic.yaml").augment
    out = always_one_of(cfg)
    assert {k: v.prob for k, v in out.transforms.items()} == {"reverb": 0.25, "noise": 0.25, "music": 0.25,
                                                               "babble": 0.25}
    assert cfg.transforms.noise.prob == 0.15  # the training config is left as it was
    one_of = instantiate(always_one_of({"_target_": "xvector.data.augment.OneOf", "transforms": {
        "x": {"_target_": "xvector.data.augment.Transform", "prob": 0.1},
        "y": {"_target_": "xvector.data.augment.Transform", "prob": 0.2}}}))
    assert isinstance(one_of, OneOf) and one_of.cum_probs.tolist() == [0.5, 1.0]  # never "no augmentation"
    with pytest.raises(ValueError, match="must be a xvector.data.augment.OneOf"):
        always_one_of({"_target_": "xvector.data.augment.Compose", "transforms": {}})


def test_a_config_that_extends_another_is_composed_and_every_kind_gets_copies(corpus, tmp_path):
    cfg = load_augment_config(ROOT / "configs" / "augment" / "synthetic_channel.yaml")
    assert "defaults" not in cfg
    assert list(cfg.augment.transforms) == ["reverb", "noise", "music", "babble", "channel"]
    assert OmegaConf.to_container(cfg)["augment"]["transforms"]["channel"]["sample_rate"] == "${data.sample_rate}"
    assert set(always_one_of(cfg.augment).transforms[k].prob for k in cfg.augment.transforms) == {0.2}
    out = tmp_path / "aug"
    run_script(str(corpus / "train"), str(out), "--augment-dir", str(corpus / "augment"), "--copies", "4",
               "--config", str(ROOT / "configs" / "augment" / "synthetic_channel.yaml"))
    assert len(load_data_dir(out).utts) == 12
    with pytest.raises(FileNotFoundError, match="nowhere.yaml: no such augmentation config"):
        load_augment_config(tmp_path / "nowhere.yaml")


def test_bad_arguments_are_refused(corpus, tmp_path):
    augment = instantiate(always_one_of({"_target_": "xvector.data.augment.OneOf", "transforms": {
        "noise": {"_target_": "xvector.data.augment.AddNoise",
                  "noise_dir": str(corpus / "augment" / "musan" / "noise")}}}))
    with pytest.raises(ValueError, match="copies must be >= 1"):
        augment_data_dir(corpus / "train", tmp_path / "aug", augment, SR, copies=0)
    with pytest.raises(ValueError, match="need their own directory"):
        augment_data_dir(corpus / "train", corpus / "train", augment, SR)
    with pytest.raises(ValueError, match="sample rate 16000 Hz, expected 8000 Hz"):
        augment_data_dir(corpus / "train", tmp_path / "aug8k", augment, 8000)
    assert not (tmp_path / "aug8k" / "wav.scp").exists()
