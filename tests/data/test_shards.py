import json
import runpy
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from xvector.data.audio import load_audio
from xvector.data.lists import load_data_dir, read_kaldi_map
from xvector.data.shards import (
    MANIFEST,
    ShardStream,
    assign_shards,
    buffer_shuffle,
    read_manifest,
    write_shards,
)
from xvector.training.datamodule import SpeakerDataModule

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
make_shards_main = runpy.run_path(str(SCRIPTS / "make_shards.py"))["main"]


@pytest.fixture
def corpus(tmp_path, noise_dir):
    return noise_dir(tmp_path / "d", {"b": 5, "a": 6, "c": 4}, seconds=0.4)


def test_write_shards_layout_and_contents(corpus, tmp_path):
    out = tmp_path / "shards"
    manifest = make_shards_main(["--data-dir", str(corpus), "--out", str(out), "--max-utts", "4"])
    data = load_data_dir(corpus)
    assert manifest == read_manifest(out) and manifest["speakers"] == ["a", "b", "c"]
    assert [s["utterances"] for s in manifest["shards"]] == [4, 4, 4, 3]
    assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST] + [f"shard-{k:06d}.tar" for k in range(4)])  # no temps
    with tarfile.open(out / "shard-000001.tar") as tar:
        names = tar.getnames()
        assert names[:2] == ["000000004.json", "000000004.wav"]
        meta = json.loads(tar.extractfile(names[0]).read())
        utt = list(data.wavs)[4]
        assert meta == {"utt": utt, "spk": data.utt2spk[utt], "index": 4, "num_samples": len(load_audio(data.wavs[utt], 16000))}
        assert tar.extractfile(names[1]).read() == Path(data.wavs[utt]).read_bytes()  # bytes verbatim
    # a byte budget: every file here is > 8 kB, so a 20 kB budget holds one or two
    manifest = write_shards(corpus, tmp_path / "by_bytes", max_utts=100, max_bytes=20_000)
    assert sum(s["utterances"] for s in manifest["shards"]) == 15 and max(s["utterances"] for s in manifest["shards"]) <= 2


@pytest.mark.parametrize("augment_on", ["workers", "device"])
def test_streaming_equals_map_style_without_shuffling(corpus, tmp_path, augment_on):
    write_shards(corpus, tmp_path / "shards", max_utts=4)
    common = dict(chunk_sec=0.2, batch_size=3, num_workers=0, seed=11, speeds=[1.0, 0.9, 1.1], shuffle=False,
                  augment_on=augment_on)
    mapped = SpeakerDataModule(train_dir=str(corpus), **common)
    streamed = SpeakerDataModule(train_shards=str(tmp_path / "shards"), **common)
    assert mapped.num_speakers == streamed.num_speakers == 9 and mapped.spk2idx == streamed.spk2idx
    map_loader, stream_loader = mapped.train_dataloader(), streamed.train_dataloader()
    assert len(map_loader) == len(stream_loader) == 5
    for epoch in range(2):  # each iteration of the stream is the next epoch
        map_loader.sampler.set_epoch(epoch)
        batches = list(zip(map_loader, stream_loader, strict=True))
        assert len(batches) == 5
        for a, b in batches:
            assert a["utts"] == b["utts"]
            torch.testing.assert_close(a["wav"], b["wav"], atol=0, rtol=0)
            assert torch.equal(a["labels"], b["labels"])
            if augment_on == "device":  # raw int16 crops, speeds planned for the device
                assert a["wav"].dtype == torch.int16 and [r.tolist() for r in a["speed_rows"]] == [
                    r.tolist() for r in b["speed_rows"]]
    assert not torch.equal(batches[0][0]["wav"], next(iter(mapped.train_dataloader()))["wav"])  # epoch 1 != 0


def test_every_shard_read_once_by_two_ranks_times_two_workers(corpus, tmp_path):
    write_shards(corpus, tmp_path / "shards", max_utts=2)  # 8 shards
    for epoch in range(3):
        got = [assign_shards(8, r, 4, epoch, seed=5) for r in range(4)]
        assert sorted(sum(got, [])) == list(range(8))
    assert assign_shards(8, 1, 4, epoch=0, seed=5, shuffle=False) == [1, 5]
    data = load_data_dir(corpus)
    for equalize, per_reader in ((False, None), (True, 3)):  # smallest 2 shards: 2 + 1 utterances
        seen = []
        for rank in range(2):
            stream = ShardStream(tmp_path / "shards", 0.1, seed=5, rank=rank, world_size=2, num_workers=2,
                                 equalize=equalize, shuffle_buffer=3)
            for worker in range(2):
                items = [it["utt"] for it in stream.iter_reader(1, worker, 2)]
                assert per_reader is None or len(items) == per_reader
                seen += items
        if not equalize:
            assert sorted(seen) == sorted(data.wavs)  # every utterance exactly once
        else:
            assert len(set(seen)) == len(seen) == 12 and len(stream) == 6


def test_shuffle_buffer_and_errors(corpus, tmp_path):
    order = list(buffer_shuffle(range(20), 5, np.random.default_rng(0)))
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert max(i - pos for pos, i in enumerate(order)) <= 4  # an item leaves at most 4 ahead
    write_shards(corpus, tmp_path / "shards", max_utts=8)  # 2 shards
    with pytest.raises(ValueError, match="2 shards for rank 0 of 2 x 2 workers"):
        ShardStream(tmp_path / "shards", 0.1, rank=0, world_size=2, num_workers=2)
    with pytest.raises(ValueError, match="shards.json"):
        ShardStream(tmp_path, 0.1)
    with pytest.raises(ValueError, match="sample rate"):
        ShardStream(tmp_path / "shards", 0.1, sample_rate=8000)
    with pytest.raises(ValueError, match="exactly one"):
        SpeakerDataModule(train_dir=str(corpus), train_shards=str(tmp_path / "shards"))


@pytest.fixture
def odd_corpus(tmp_path, noise_dir):
    """A corpus whose ``a-u01`` is stereo and ``b-u02`` is at 8 kHz (both of 0.4 s or so)."""
    root = noise_dir(tmp_path / "odd", {"a": 3, "b": 3}, seconds=0.4)
    wavs = read_kaldi_map(root / "wav.scp")
    rng = np.random.default_rng(1)
    sf.write(wavs["a-u01"], (0.1 * rng.standard_normal((6000, 2))).astype(np.float32), 16000)
    sf.write(wavs["b-u02"], (0.1 * rng.standard_normal(3000)).astype(np.float32), 8000)
    return root


def _stream_and_map(root, shards, **options):
    common = dict(chunk_sec=0.2, batch_size=2, num_workers=0, seed=3, shuffle=False, **options)
    return (SpeakerDataModule(train_dir=str(root), **common).train_dataloader(),
            SpeakerDataModule(train_shards=str(shards), **common).train_dataloader())


@pytest.mark.parametrize("multichannel", ["mean", "first"])
def test_stereo_and_other_rate_members_read_like_the_files_on_disk(odd_corpus, tmp_path, multichannel):
    write_shards(odd_corpus, tmp_path / "shards", max_utts=2, resample=True)
    mapped, streamed = _stream_and_map(odd_corpus, tmp_path / "shards", resample=True, multichannel=multichannel)
    seen = set()
    for a, b in zip(mapped, streamed, strict=True):
        assert a["utts"] == b["utts"]
        torch.testing.assert_close(b["wav"], a["wav"], atol=0, rtol=0)  # the same crops, bit for bit
        seen.update(a["utts"])
    assert {"a-u01", "b-u02"} <= seen


def _message_after_location(err: pytest.ExceptionInfo, utt: str) -> str:
    """The message from the utterance on: the location before it (file or shard member) differs."""
    msg = str(err.value)
    assert f"utterance {utt!r}" in msg and "\n" not in msg
    return msg[msg.index(f"utterance {utt!r}"):]


def test_stereo_and_other_rate_members_fail_like_the_files_on_disk(odd_corpus, tmp_path):
    with pytest.raises(ValueError, match=r"8000 Hz, expected 16000") as refused:
        write_shards(odd_corpus, tmp_path / "strict", max_utts=2)
    assert "b-u02" in str(refused.value)
    write_shards(odd_corpus, tmp_path / "shards", max_utts=2, resample=True)
    # another rate, without data.resample: the map-style dataset refuses it when built, the
    # stream when it reaches the member; the same words, each naming the utterance
    with pytest.raises(ValueError) as on_disk:
        _stream_and_map(odd_corpus, tmp_path / "shards")[0]
    mapped_msg = _message_after_location(on_disk, "b-u02")
    with pytest.raises(ValueError) as in_shard:
        list(ShardStream(tmp_path / "shards", 0.2, seed=3, shuffle=False).iter_reader(0, 0, 1))
    assert _message_after_location(in_shard, "b-u02") == mapped_msg
    assert "shard-000002.tar:" in str(in_shard.value) and "data.resample=true" in mapped_msg
    # multichannel=error: both raise when the stereo utterance is read
    mapped, streamed = _stream_and_map(odd_corpus, tmp_path / "shards", resample=True, multichannel="error")
    with pytest.raises(ValueError) as on_disk:
        list(mapped)
    with pytest.raises(ValueError) as in_shard:
        list(streamed)
    assert _message_after_location(in_shard, "a-u01") == _message_after_location(on_disk, "a-u01")
    assert "2 channels, expected mono" in str(in_shard.value)
    assert str(in_shard.value).startswith(str(tmp_path / "shards"))


def test_make_shards_script_takes_other_rates_only_with_resample(odd_corpus, tmp_path):
    with pytest.raises(ValueError, match=r"8000 Hz, expected 16000"):
        make_shards_main(["--data-dir", str(odd_corpus), "--out", str(tmp_path / "strict")])
    manifest = make_shards_main(["--data-dir", str(odd_corpus), "--out", str(tmp_path / "ok"), "--resample"])
    assert manifest["utterances"] == sum(1 for _ in open(odd_corpus / "wav.scp"))
