import json
import runpy
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from xvector.data.audio import load_audio
from xvector.data.datamodule import SpeakerDataModule
from xvector.data.lists import load_data_dir
from xvector.data.shards import MANIFEST, ShardStream, assign_shards, buffer_shuffle, read_manifest, write_shards

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


def test_streaming_equals_map_style_without_shuffling(corpus, tmp_path):
    write_shards(corpus, tmp_path / "shards", max_utts=4)
    common = dict(chunk_sec=0.2, batch_size=3, num_workers=0, seed=11, speeds=[1.0, 0.9, 1.1], shuffle=False)
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
