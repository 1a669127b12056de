"""xvector-enroll and xvector-identify: stores from embedding files or audio, search, metrics."""

import importlib.util
import json
import math

import numpy as np
import pytest
import soundfile as sf

from xvector.cli.enroll import main as enroll
from xvector.cli.identify import main as identify
from xvector.data.enrollment import write_enroll_map
from xvector.data.lists import write_kaldi_map
from xvector.embeddings import save_embeddings
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir
from xvector.scoring.store import SpeakerStore


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# Enrolment: alice at ±20° (model 0°), bob at 90°, carol at 180°. Queries: q1 near alice (10°),
# q2 near bob (80°), q3 of dave (not enrolled) at 225°, q4 of alice but nearer bob (60°).
ENROL = {"a1": _unit(20), "a2": _unit(-20), "b1": _unit(90), "c1": _unit(180)}
QUERY = {"q1": _unit(10), "q2": _unit(80), "q3": _unit(225), "q4": _unit(60)}
SPK = {"q1": "alice", "q2": "bob", "q3": "dave", "q4": "alice"}


@pytest.fixture
def files(tmp_path):
    save_embeddings(tmp_path / "enrol.npz", list(ENROL), np.array(list(ENROL.values())))
    save_embeddings(tmp_path / "query.npz", list(QUERY), np.array(list(QUERY.values())))
    write_enroll_map(tmp_path / "spk2utt", {"alice": ["a1", "a2"], "bob": ["b1"], "carol": ["c1"]})
    write_kaldi_map(tmp_path / "utt2spk", SPK)
    return tmp_path


def _enroll(files, *extra):
    enroll([str(files / "store.npz"), "--spk2utt", str(files / "spk2utt"), "--embeddings", str(files / "enrol.npz"),
            *map(str, extra)])


def test_enrol_from_embeddings_then_identify_with_metrics(files, capsys):
    _enroll(files)
    assert "store.npz: 3 speakers (+3), mode avg, back end cosine" in capsys.readouterr().out
    store = SpeakerStore.load(files / "store.npz")
    assert store.ids == ["alice", "bob", "carol"] and store.counts.tolist() == [2, 1, 1]
    identify([str(files / "store.npz"), "--embeddings", str(files / "query.npz"), "--utt2spk", str(files / "utt2spk"),
              "--top-k", "2", "--threshold", "0.9", "--fpir", "0", "--output-dir", str(files / "out")])
    line = capsys.readouterr().out.strip()
    assert line == "top-1 66.67%  top-2 100.00%  DIR@FPIR=0% 66.67%  searches 4 (3 mated)"
    topk = (files / "out" / "topk").read_text().splitlines()
    assert topk[:2] == [f"q1 1 alice {math.cos(math.radians(10)):.6f}", f"q1 2 bob {math.cos(math.radians(80)):.6f}"]
    assert (files / "out" / "decisions").read_text().splitlines() == [
        f"q1 alice {math.cos(math.radians(10)):.6f}", f"q2 bob {math.cos(math.radians(10)):.6f}",
        f"q3 <unknown> {math.cos(math.radians(45)):.6f}", f"q4 <unknown> {math.cos(math.radians(30)):.6f}"]
    m = json.loads((files / "out" / "metrics.json").read_text())
    # FPIR 0: above dave's best (cos 45° = 0.707): q1 (0.985) and q2 (0.985) detected, q4 is not at rank 1
    assert m["top1_acc"] == pytest.approx(2 / 3) and m["top2_acc"] == 1.0
    assert m["dir_at_fpir_0"] == pytest.approx(2 / 3)
    assert m["dir_at_fpir_0_threshold"] == pytest.approx(math.cos(math.radians(45)))
    assert m["decision"] == {"threshold": 0.9, "on": "score", "dir": pytest.approx(2 / 3), "fpir": 0.0}
    assert m["search"]["index"] == "exact" and m["search"]["speakers"] == 3


def test_grow_replace_remove_and_refusals(files, capsys):
    _enroll(files)
    with pytest.raises(SystemExit):
        _enroll(files)  # the same speakers again
    assert "speaker 'alice' is already enrolled" in capsys.readouterr().err
    write_enroll_map(files / "more", {"bob": ["a1"], "erin": ["c1"]})
    enroll([str(files / "store.npz"), "--spk2utt", str(files / "more"), "--embeddings", str(files / "enrol.npz"),
            "--existing", "add"])
    store = SpeakerStore.load(files / "store.npz")
    assert store.ids == ["alice", "bob", "carol", "erin"] and store.counts.tolist() == [2, 2, 1, 1]
    enroll([str(files / "store.npz"), "--remove", "carol", "erin"])
    assert SpeakerStore.load(files / "store.npz").ids == ["alice", "bob"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        enroll([str(files / "store.npz"), "--spk2utt", str(files / "more"), "--embeddings", str(files / "enrol.npz"),
                "--mode", "concat"])
    assert "exists with its own mode and back end; --mode apply to a new store" in capsys.readouterr().err
    write_enroll_map(files / "bad", {"frank": ["a1", "zz"]})
    with pytest.raises(SystemExit):
        enroll([str(files / "store.npz"), "--spk2utt", str(files / "bad"), "--embeddings", str(files / "enrol.npz")])
    assert capsys.readouterr().err.strip() == "xvector-enroll: " + str(files / "bad") + \
        ": speaker 'frank': no embedding for utterance 'zz'"
    assert SpeakerStore.load(files / "store.npz").ids == ["alice", "bob"]  # the file is untouched


def test_plda_store_and_calibration_from_a_score_dir(files, capsys):
    rng = np.random.default_rng(0)
    centres, labels = rng.normal(size=(30, 2)) * 3, np.repeat(np.arange(30), 5)
    save_embeddings(files / "train.npz", [f"t{i:03d}" for i in range(150)], centres[labels] + rng.normal(size=(150, 2)))
    write_kaldi_map(files / "train_utt2spk", {f"t{i:03d}": f"s{labels[i]:02d}" for i in range(150)})
    (files / "scores").mkdir()
    (files / "scores" / "calibration.json").write_text('{"scale": 2.0, "offset": 1.0}')
    (files / "scores" / "threshold.json").write_text('{"threshold": 0.5, "on": "llr"}')
    _enroll(files, "--backend", "plda", "--train-embeddings", files / "train.npz", "--train-utt2spk",
            files / "train_utt2spk", "--lda-dim", "2", "--score-dir", files / "scores")
    assert "back end plda, calibrated, threshold 0.5 on llr" in capsys.readouterr().out
    identify([str(files / "store.npz"), "--embeddings", str(files / "query.npz"), "--json", "--top-k", "1"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    speaker, score, llr = rows[0]["candidates"][0]
    assert llr == pytest.approx(2 * score + 1, abs=1e-5) and rows[0]["on"] == "llr"


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    d = tmp_path_factory.mktemp("audio")
    ckpt = init_checkpoint(d / "tiny.ckpt", tiny_config())
    model = write_model_dir(d / "model", ckpt)
    rng = np.random.default_rng(0)
    for name in ("a1", "a2", "b1", "q"):
        sf.write(d / f"{name}.wav", (0.1 * rng.standard_normal(12000)).astype(np.float32), 16000)
    return d, model


def test_enrol_and_identify_audio_files_with_a_model(audio, tmp_path, capsys):
    d, model = audio
    store = tmp_path / "store.npz"
    enroll([str(store), str(d / "a1.wav"), str(d / "a2.wav"), "--speaker", "alice", "--model", str(model)])
    enroll([str(store), str(d / "b1.wav"), "--speaker", "bob", "--model", str(model)])
    enroll([str(store), str(d / "a1.wav"), "--speaker", "bob", "--model", str(model), "--existing", "replace"])
    capsys.readouterr()
    identify([str(store), str(d / "a1.wav"), "--model", str(model), "--top-k", "2"])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{d / 'a1.wav'}: bob (closed set: no threshold); candidates: bob 1.0000, alice ")
    other = write_model_dir(tmp_path / "other", init_checkpoint(tmp_path / "o.ckpt", tiny_config(), seed=3))
    with pytest.raises(SystemExit):
        identify([str(store), str(d / "q.wav"), "--model", str(other)])
    assert "was enrolled with another model" in capsys.readouterr().err


def test_concat_enrolment_saves_the_joined_embeddings(audio, tmp_path, capsys):
    d, model = audio
    write_kaldi_map(tmp_path / "wav.scp", {n: str(d / f"{n}.wav") for n in ("a1", "a2", "b1")})
    write_enroll_map(tmp_path / "spk2utt", {"alice": ["a1", "a2"], "bob": ["b1"]})
    store = tmp_path / "store.npz"
    enroll([str(store), "--model", str(model), "--mode", "concat", "--wav-scp", str(tmp_path / "wav.scp"),
            "--spk2utt", str(tmp_path / "spk2utt"), "--save-embeddings", str(tmp_path / "concat.npz")])
    loaded = SpeakerStore.load(store)
    assert loaded.mode == "concat" and loaded.counts.tolist() == [1, 1]
    ids, emb = np.load(tmp_path / "concat.npz")["ids"].tolist(), np.load(tmp_path / "concat.npz")["embeddings"]
    assert ids == ["alice", "bob"] and emb.shape == (2, 16)
    np.testing.assert_allclose(loaded.means(), loaded.backend.transform(emb), atol=1e-6)


@pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss is not installed (pip install faiss-cpu)")
def test_faiss_index_from_the_command_line(files, capsys):
    _enroll(files)
    identify([str(files / "store.npz"), "--embeddings", str(files / "query.npz"), "--utt2spk", str(files / "utt2spk"),
              "--index", "faiss", "--faiss-factory", "Flat", "--top-k", "2", "--output-dir", str(files / "ann")])
    search = json.loads((files / "ann" / "metrics.json").read_text())["search"]
    assert search["index"] == "faiss Flat" and search["recall_at_2"] == 1.0 and search["recall_at_1"] == 1.0


def test_usage_errors_are_one_line(files, capsys):
    for argv in ([str(files / "store.npz"), "--spk2utt", str(files / "spk2utt")],
                 [str(files / "store.npz"), str(files / "x.wav"), "--speaker", "x"]):
        with pytest.raises(SystemExit):
            enroll(argv)
    errs = capsys.readouterr().err.strip().splitlines()
    assert errs == ["xvector-enroll: --spk2utt needs one of --embeddings (enrol embeddings) or --wav-scp (embed audio)",
                    "xvector-enroll: embedding audio needs --model (a model directory or checkpoint)"]
    with pytest.raises(SystemExit):
        identify([str(files / "nope.npz"), "--embeddings", str(files / "query.npz")])
    assert capsys.readouterr().err.strip().endswith("nope.npz: speaker store does not exist")
