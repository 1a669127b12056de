import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import TINY_NET
from xvector.cli.extract import extract
from xvector.cli.train import train
from xvector.embeddings import load_embeddings
from xvector.inference.embedder import load_embedder
from xvector.inference.extraction import embed_wav_scp


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_corpus, tmp_path_factory):
    from hydra import compose, initialize_config_dir

    from xvector import CONFIG_DIR

    out = tmp_path_factory.mktemp("run")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", [f"paths.data_dir={tiny_corpus}", f"paths.output_dir={out}", *TINY_NET,
                                "trainer.max_epochs=1", "trainer.limit_train_batches=2"])
    train(cfg)
    return out / "checkpoints" / "last.ckpt"


def test_batched_equals_unbatched(tiny_corpus, tiny_checkpoint):
    embedder, _ = load_embedder(tiny_checkpoint)
    scp = tiny_corpus / "test" / "wav.scp"
    ids1, one = embed_wav_scp(embedder, scp, batch_size=1)
    ids8, eight = embed_wav_scp(embedder, scp, batch_size=8)
    assert ids1 == ids8
    cos = (one * eight).sum(1) / np.linalg.norm(one, axis=1) / np.linalg.norm(eight, axis=1)
    assert cos.min() >= 0.9999


def test_extract_cli_writes_npz(tiny_corpus, tiny_checkpoint, tmp_path):
    out = tmp_path / "emb" / "test.npz"
    cfg = OmegaConf.create(
        {"ckpt_path": str(tiny_checkpoint), "wav_scp": str(tiny_corpus / "test" / "wav.scp"),
         "output": str(out), "batch_size": 4, "num_workers": 0, "device": "cpu"}
    )
    extract(cfg)
    ids, emb = load_embeddings(out)
    assert len(ids) == 16 and emb.shape == (16, 16) and np.isfinite(emb).all()
    assert [p.name for p in out.parent.iterdir()] == ["test.npz"]  # no temporary left behind


# --- model directories, resume, failures, long recordings, Kaldi output ----------------------

import kaldiio  # noqa: E402
import soundfile as sf  # noqa: E402

from tests.conftest import write_noise_dir  # noqa: E402
from xvector.inference import extraction as extract_mod  # noqa: E402
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny_model")
    return write_model_dir(d / "model", init_checkpoint(d / "tiny.ckpt", tiny_config()))


@pytest.fixture(scope="module")
def noise_scp(tmp_path_factory):
    root = write_noise_dir(tmp_path_factory.mktemp("noise"), {f"s{i}": 4 for i in range(5)}, seconds=1.0, seed=1)
    return root / "wav.scp"


def _cfg(model, scp, out, **kw):
    base = {"model_dir": str(model), "wav_scp": str(scp), "output": str(out), "batch_size": 3, "num_workers": 0,
            "device": "cpu", "progress": False}
    return OmegaConf.create({**base, **kw})


def test_model_dir_equals_checkpoint_and_kaldi_ark(tiny_corpus, tiny_checkpoint, tmp_path):
    from xvector.inference.model_dir import write_model_dir

    scp = tiny_corpus / "test" / "wav.scp"
    model = write_model_dir(tmp_path / "model", tiny_checkpoint)
    extract(_cfg(tiny_checkpoint, scp, tmp_path / "a.npz"))
    extract(_cfg(model, scp, tmp_path / "b.npz", kaldi_ark=str(tmp_path / "kaldi" / "b.ark")))
    ids_a, a = load_embeddings(tmp_path / "a.npz")
    ids_b, b = load_embeddings(tmp_path / "b.npz")
    assert ids_a == ids_b
    np.testing.assert_array_equal(a, b)
    ark = kaldiio.load_scp(str(tmp_path / "kaldi" / "b.scp"))
    assert list(ark.keys()) == ids_b
    np.testing.assert_array_equal(np.stack([ark[u] for u in ids_b]), b)
    assert sorted(p.name for p in (tmp_path / "kaldi").iterdir()) == ["b.ark", "b.scp"]


def test_length_buckets_bound_items_and_padded_seconds():
    rng = np.random.default_rng(0)
    seconds = list(rng.uniform(0.5, 20, 200)) + [150.0, 300.0]
    batches = extract_mod.length_buckets(seconds, batch_size=16, max_batch_sec=60.0, long_sec=100.0)
    assert sorted(i for b in batches for i in b) == list(range(202))
    assert batches[0] == [201] and batches[1] == [200]  # long ones alone, longest first
    for b in batches[2:]:
        assert len(b) <= 16 and (len(b) == 1 or max(seconds[i] for i in b) * len(b) <= 60.0)
        assert [seconds[i] for i in b] == sorted((seconds[i] for i in b), reverse=True)


def test_resume_after_interruption_equals_uninterrupted(tiny_model, noise_scp, tmp_path, monkeypatch):
    extract(_cfg(tiny_model, noise_scp, tmp_path / "full.npz"))
    out = tmp_path / "resumed.npz"
    real, calls = extract_mod._embed_items, {"n": 0}

    def dies_on_third(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as a kill: not an embedding failure
        return real(*args, **kw)

    monkeypatch.setattr(extract_mod, "_embed_items", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        extract(_cfg(tiny_model, noise_scp, out))
    monkeypatch.setattr(extract_mod, "_embed_items", real)
    partial = tmp_path / "resumed.npz.partial"
    assert partial.is_file() and not out.exists()
    with open(partial, "ab") as f:  # a kill mid-write leaves a torn record
        f.write(b"XVPR\x00\x10\x00\x00\x00\x00\x00\x00garbage")
    extract(_cfg(tiny_model, noise_scp, out))
    assert not partial.exists()
    ids_full, full = load_embeddings(tmp_path / "full.npz")
    ids, emb = load_embeddings(out)
    assert ids == ids_full
    np.testing.assert_allclose(emb, full, atol=1e-5)  # re-batched rows: float rounding only


def test_resume_skips_written_utterances(tiny_model, noise_scp, tmp_path, monkeypatch):
    out = tmp_path / "e.npz"
    real, seen = extract_mod._embed_items, []

    def record(embedder, batch, *a, **kw):
        seen.extend(batch["utts"])
        if len(seen) > 6:
            raise KeyboardInterrupt
        return real(embedder, batch, *a, **kw)

    monkeypatch.setattr(extract_mod, "_embed_items", record)
    with pytest.raises(KeyboardInterrupt):
        extract(_cfg(tiny_model, noise_scp, out))
    written = set(seen[:6])
    seen.clear()
    monkeypatch.setattr(extract_mod, "_embed_items", lambda *a, **kw: (seen.extend(a[1]["utts"]), real(*a, **kw))[1])
    extract(_cfg(tiny_model, noise_scp, out))
    assert len(seen) == 20 - 6 and not written & set(seen)
    assert len(load_embeddings(out)[0]) == 20


def test_partial_of_another_model_is_not_reused(tiny_model, noise_scp, tmp_path, caplog):
    out = tmp_path / "e.npz"
    other = {"partial_format": 2, "weights_sha256": "other", "sample_rate": 16000}
    log = extract_mod.PartialLog(tmp_path / "e.npz.partial", other).open()
    log.append(["s0-u00"], ["somewhere|1|1"], np.ones((1, 16), dtype=np.float32))
    log.close()
    with caplog.at_level("WARNING", logger="xvector.inference.partial"):
        extract(_cfg(tiny_model, noise_scp, out))
    assert "made with another model or settings (settings, weights_sha256 differ): its 1 embeddings are not reused" \
        in caplog.text
    ids, emb = load_embeddings(out)
    assert len(ids) == 20 and not np.allclose(emb[0], 1.0)
    extract(_cfg(tiny_model, noise_scp, tmp_path / "f.npz", resume=False))
    np.testing.assert_array_equal(load_embeddings(tmp_path / "f.npz")[1], emb)


def test_failures_are_reported_and_the_run_goes_on(tiny_model, tmp_path, caplog):
    root = write_noise_dir(tmp_path / "data", {"s1": 3}, seconds=1.0)
    (root / "wav" / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    sf.write(root / "wav" / "short.wav", 0.1 * np.random.default_rng(0).standard_normal(1000).astype(np.float32), 16000)
    lines = (root / "wav.scp").read_text().splitlines()
    lines += [f"x-bad {root / 'wav' / 'bad.wav'}", f"x-missing {root / 'wav' / 'nope.wav'}",
              f"x-short {root / 'wav' / 'short.wav'}"]
    (root / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    out = tmp_path / "e.npz"
    with caplog.at_level("WARNING", logger="xvector.cli.extract"):
        extract(_cfg(tiny_model, root / "wav.scp", out))
    ids, emb = load_embeddings(out)
    assert ids == ["s1-u00", "s1-u01", "s1-u02"]
    report = (tmp_path / "e.npz.failed.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in report] == ["x-bad", "x-missing", "x-short"]
    assert "cannot read audio header" in report[0] and "wav.scp:5: audio file for 'x-missing' does not exist" in report[1]
    assert "shorter than the 2640 samples" in report[2]
    assert "3 of 6 utterances failed" in caplog.text


def test_short_utterances_padded_on_request(tiny_model, tmp_path, caplog):
    from xvector.inference.extraction import pad_short

    # pad_short: wraps a short row to the minimum, leaves long rows alone.
    batch = {"wav": torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]]),
             "wav_lens": torch.tensor([3, 5])}
    padded, n = pad_short(batch, 4)
    assert n == 1 and padded["wav_lens"].tolist() == [4, 5]
    assert padded["wav"].tolist() == [[1.0, 2.0, 3.0, 1.0, 0.0], [1.0] * 5]
    padded, n = pad_short(batch, 7)  # both short; the batch widens to the minimum
    assert n == 2 and padded["wav_lens"].tolist() == [7, 7]
    assert padded["wav"].tolist() == [[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0], [1.0] * 7]

    root = write_noise_dir(tmp_path / "data", {"s1": 2}, seconds=1.0)
    sf.write(root / "wav" / "short.wav", 0.1 * np.random.default_rng(0).standard_normal(1000).astype(np.float32), 16000)
    lines = (root / "wav.scp").read_text().splitlines() + [f"x-short {root / 'wav' / 'short.wav'}"]
    (root / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    out = tmp_path / "p.npz"
    with caplog.at_level("WARNING", logger="xvector.cli.extract"):
        extract(_cfg(tiny_model, root / "wav.scp", out, short_utterances="pad"))
    ids, emb = load_embeddings(out)
    assert ids == ["s1-u00", "s1-u01", "x-short"] and np.isfinite(emb).all()
    assert not (tmp_path / "p.npz.failed.tsv").exists()
    assert "1 utterances shorter than the net's minimum were repeated" in caplog.text
    with pytest.raises(ValueError, match="short_utterances='trim'"):
        extract(_cfg(tiny_model, root / "wav.scp", tmp_path / "q.npz", short_utterances="trim"))


def test_long_recording_is_chunked_exactly(tiny_model, tmp_path):
    """A 30 s file among short ones: chunks of 4 s vs whole-utterance, |Δ| <= 1e-4."""
    root = write_noise_dir(tmp_path / "data", {"s1": 2}, seconds=1.0)
    rng = np.random.default_rng(9)
    sf.write(root / "wav" / "long.wav", (0.1 * rng.standard_normal(30 * 16000)).astype(np.float32), 16000,
             subtype="FLOAT")
    lines = (root / "wav.scp").read_text().splitlines() + [f"s1-zlong {root / 'wav' / 'long.wav'}"]
    (root / "wav.scp").write_text("\n".join(sorted(lines)) + "\n")
    extract(_cfg(tiny_model, root / "wav.scp", tmp_path / "whole.npz"))
    extract(_cfg(tiny_model, root / "wav.scp", tmp_path / "chunked.npz", chunk_sec=4.0))
    ids, whole = load_embeddings(tmp_path / "whole.npz")
    assert ids[-1] == "s1-zlong"
    np.testing.assert_allclose(load_embeddings(tmp_path / "chunked.npz")[1], whole, atol=1e-4)


def test_workers_give_the_same_embeddings(tiny_model, noise_scp, tmp_path):
    extract(_cfg(tiny_model, noise_scp, tmp_path / "w0.npz"))
    extract(_cfg(tiny_model, noise_scp, tmp_path / "w2.npz", num_workers=2))
    np.testing.assert_array_equal(load_embeddings(tmp_path / "w0.npz")[1], load_embeddings(tmp_path / "w2.npz")[1])


@pytest.mark.slow
def test_sigkill_midway_then_resume_equals_uninterrupted(tmp_path):
    """A real kill -9 of ``python -m xvector.cli.extract`` mid-run; the rerun completes the file."""
    import io
    import os
    import signal
    import subprocess
    import sys
    import time

    from bench.bench_extract import default_config

    model = write_model_dir(tmp_path / "model", init_checkpoint(tmp_path / "x.ckpt", default_config()))
    scp = write_noise_dir(tmp_path / "data", {f"s{i}": 10 for i in range(6)}, seconds=1.5, seed=2) / "wav.scp"
    out = tmp_path / "killed.npz"
    partial = tmp_path / "killed.npz.partial"
    args = [sys.executable, "-m", "xvector.cli.extract", f"model_dir={model}", f"wav_scp={scp}", f"output={out}",
            "batch_size=1", "num_workers=0", "progress=false"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = 0
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if partial.is_file():
            records = sum(1 for _ in extract_mod.PartialLog._records(partial.read_bytes()))
            if records >= 4:  # header + 3 batches written
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert records >= 4 and not out.exists(), "the run finished before it could be killed"
    kept = set()
    for i, (_, payload) in enumerate(extract_mod.PartialLog._records(partial.read_bytes())):
        if i:  # after the header: one batch of (ids, input keys, embeddings) per record
            with np.load(io.BytesIO(payload)) as rec:
                kept.update(rec["ids"].tolist())
    assert 3 <= len(kept) < 60
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    extract(_cfg(model, scp, tmp_path / "clean.npz", batch_size=1))
    ids, emb = load_embeddings(out)
    ids_clean, clean = load_embeddings(tmp_path / "clean.npz")
    assert ids == ids_clean and len(ids) == 60
    np.testing.assert_allclose(emb, clean, rtol=0, atol=1e-6)


def test_precisions_agree_with_the_trained_net(tiny_model, noise_scp, tmp_path):
    """Extraction folds BatchNorms (fp32: the checkpoint's net up to rounding); int8 and bf16 stay close."""
    from xvector.cli.extract import PRECISIONS
    from xvector.inference.embed import read_audio
    from xvector.inference.model_dir import load_model_dir

    trained = load_model_dir(tiny_model).embedder  # unfolded, as trained
    outs = {}
    for precision in PRECISIONS:
        extract(_cfg(tiny_model, noise_scp, tmp_path / f"{precision}.npz", precision=precision))
        outs[precision] = load_embeddings(tmp_path / f"{precision}.npz")
    ids, fp32 = outs["32"]
    first = next(line.split()[1] for line in open(noise_scp))
    with torch.inference_mode():
        wav = read_audio(first, 16000)
        ref = trained(wav[None], torch.tensor([wav.shape[0]]))[0].numpy()
    np.testing.assert_allclose(fp32[0], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())
    for precision in ("bf16", "int8"):
        assert outs[precision][0] == ids
        emb = outs[precision][1]
        cos = (emb * fp32).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(fp32, axis=1)
        assert cos.min() > 0.995, (precision, cos.min())
        assert not np.array_equal(emb, fp32)
