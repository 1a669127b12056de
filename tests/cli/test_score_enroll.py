"""xvector-score on speaker-model trials (enroll_map, Avg and Concat), and the protocol metrics."""

import json
import math

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from xvector import CONFIG_DIR
from xvector.cli.score import score_embeddings
from xvector.data.enrollment import write_enroll_map
from xvector.data.lists import Trial, write_trials
from xvector.embeddings import save_embeddings
from xvector.metrics import c_primary, compute_min_dcf

R3 = math.sqrt(3) / 2
# alice enrols from two utterances at ±30° (Avg model: 0°), bob from one at 90°; the test
# utterances lie at 0°, 60° and 90°. Concat models (one embedding each) point at 10° and 80°.
EMB = {"a1": [R3, 0.5], "a2": [R3, -0.5], "b1": [0.0, 2.0], "t0": [3.0, 0.0], "t60": [0.5, R3], "t90": [0.0, 1.0]}
CONCAT = {"alice": [math.cos(math.radians(10)), math.sin(math.radians(10))],
          "bob": [math.cos(math.radians(80)), math.sin(math.radians(80))]}
TRIALS = [Trial("alice", "t0", True), Trial("alice", "t60", False), Trial("alice", "t90", False),
          Trial("bob", "t0", False), Trial("bob", "t60", True), Trial("bob", "t90", True)]
AVG = [1.0, 0.5, 0.0, 0.0, R3, 1.0]  # cos(0°), cos(60°), cos(90°); cos(90°), cos(30°), cos(0°)


@pytest.fixture
def inputs(tmp_path):
    save_embeddings(tmp_path / "emb.npz", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
    save_embeddings(tmp_path / "concat.npz", list(CONCAT), np.array(list(CONCAT.values()), dtype=np.float32))
    write_trials(tmp_path / "trials", TRIALS)
    write_enroll_map(tmp_path / "enroll.map", {"alice": ["a1", "a2"], "bob": ["b1"]})
    return tmp_path


def _cfg(root, **overrides):
    overrides = {"embeddings": root / "emb.npz", "trials": root / "trials", "output_dir": root / "out",
                 "enroll_map": root / "enroll.map", **overrides}
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("score", overrides=[f"{k}={v}" for k, v in overrides.items()])


def _scores(root):
    return [float(line.split()[2]) for line in (root / "out" / "scores").read_text().splitlines()]


def test_avg_models_score_as_cosines_of_the_mean_direction(inputs):
    metrics = score_embeddings(_cfg(inputs))
    assert _scores(inputs) == pytest.approx(AVG, abs=1e-6)
    assert (inputs / "out" / "scores").read_text().splitlines()[0] == "alice t0 1.000000 target"
    labels = np.array([t.target for t in TRIALS])
    assert metrics["min_dcf_0.05"] == pytest.approx(compute_min_dcf(np.array(AVG), labels, 0.05)[0])
    assert metrics["min_c_primary"] == pytest.approx(c_primary(np.array(AVG), labels)["min_c_primary"])
    assert "act_c_primary" not in metrics  # raw cosine scores are not LLRs
    assert json.loads((inputs / "out" / "metrics.json").read_text())["num_trials"] == 6


def test_concat_models_are_their_own_embeddings(inputs):
    score_embeddings(_cfg(inputs, enroll_mode="concat", enroll_embeddings=inputs / "concat.npz"))
    cos = lambda deg: math.cos(math.radians(deg))  # noqa: E731
    assert _scores(inputs) == pytest.approx([cos(10), cos(50), cos(80), cos(80), cos(20), cos(10)], abs=1e-6)


def test_missing_pieces_are_named(inputs):
    write_trials(inputs / "trials", [*TRIALS, Trial("carol", "t0", False)])
    with pytest.raises(ValueError, match=r"trials:7: speaker model 'carol' is not in the enrolment map"):
        score_embeddings(_cfg(inputs))
    write_trials(inputs / "trials", TRIALS)
    write_enroll_map(inputs / "enroll.map", {"alice": ["a1", "a9"], "bob": ["b1"]})
    with pytest.raises(ValueError, match=r"enroll.map: speaker 'alice': no embedding for utterance 'a9'"):
        score_embeddings(_cfg(inputs))
    with pytest.raises(ValueError, match=r"no embedding for speaker model 'alice' \(concat mode"):
        score_embeddings(_cfg(inputs, enroll_mode="concat"))  # the utterance table has no 'alice'
    assert not (inputs / "out" / "metrics.json").exists()


def _labelled(rng, n_spk=40, per=6, dim=6):
    centres = rng.normal(size=(n_spk, dim)) * 2
    labels = np.repeat(np.arange(n_spk), per)
    return centres, labels, centres[labels] + rng.normal(size=(n_spk * per, dim))


def test_plda_with_one_utterance_models_equals_utterance_trials(tmp_path):
    """A map of one utterance per model gives exactly the scores of the plain utterance trials."""
    rng = np.random.default_rng(0)
    centres, labels, train = _labelled(rng)
    save_embeddings(tmp_path / "train.npz", [f"t{i:03d}" for i in range(len(train))], train)
    (tmp_path / "utt2spk").write_text("".join(f"t{i:03d} s{labels[i]:02d}\n" for i in range(len(train))))
    test = centres[:5].repeat(3, axis=0) + rng.normal(size=(15, 6))
    ids = [f"u{i:02d}" for i in range(15)]
    save_embeddings(tmp_path / "emb.npz", ids, test)
    pairs = [(a, b) for a in range(0, 15, 3) for b in range(1, 15, 3)]
    write_trials(tmp_path / "utt_trials", [Trial(ids[a], ids[b], a // 3 == b // 3) for a, b in pairs])
    write_trials(tmp_path / "trials", [Trial(f"m{a}", ids[b], a // 3 == b // 3) for a, b in pairs])
    write_enroll_map(tmp_path / "enroll.map", {f"m{a}": [ids[a]] for a in range(0, 15, 3)})
    common = {"backend": "plda", "train_embeddings": tmp_path / "train.npz", "train_utt2spk": tmp_path / "utt2spk",
              "backend.lda_dim": 4}
    plain = score_embeddings(_cfg(tmp_path, **common, trials=tmp_path / "utt_trials", enroll_map="null"))
    plain_scores = _scores(tmp_path)
    models = score_embeddings(_cfg(tmp_path, **common))
    assert _scores(tmp_path) == pytest.approx(plain_scores, abs=1e-5)
    assert models["eer"] == plain["eer"] and "act_c_primary" in models  # PLDA scores are LLRs
    # Three utterances per model: a different, n-aware model, still scored
    write_enroll_map(tmp_path / "enroll.map", {f"m{a}": [ids[a], ids[a + 1], ids[a + 2]] for a in range(0, 15, 3)})
    score_embeddings(_cfg(tmp_path, **common))
    assert _scores(tmp_path) != pytest.approx(plain_scores, abs=1e-3)


def test_asnorm_of_model_trials_runs_and_is_symmetric_in_form(tmp_path):
    rng = np.random.default_rng(1)
    centres, labels, train = _labelled(rng)
    save_embeddings(tmp_path / "train.npz", [f"t{i:03d}" for i in range(len(train))], train)
    (tmp_path / "utt2spk").write_text("".join(f"t{i:03d} s{labels[i]:02d}\n" for i in range(len(train))))
    ids = [f"u{i:02d}" for i in range(12)]
    save_embeddings(tmp_path / "emb.npz", ids, centres[:4].repeat(3, axis=0) + rng.normal(size=(12, 6)))
    write_enroll_map(tmp_path / "enroll.map", {f"m{s}": [ids[3 * s]] for s in range(4)})
    trials = [Trial(f"m{s}", ids[u], u // 3 == s) for s in range(4) for u in range(12) if u % 3]
    write_trials(tmp_path / "trials", trials)
    write_trials(tmp_path / "utt_trials", [Trial(ids[3 * int(t.enroll[1:])], t.test, t.target) for t in trials])
    common = {"norm": "asnorm", "norm.top_k": 10, "train_embeddings": tmp_path / "train.npz",
              "train_utt2spk": tmp_path / "utt2spk", "mean_embeddings": tmp_path / "train.npz"}
    score_embeddings(_cfg(tmp_path, **common))
    models = _scores(tmp_path)
    score_embeddings(_cfg(tmp_path, **common, trials=tmp_path / "utt_trials", enroll_map="null"))
    assert models == pytest.approx(_scores(tmp_path), abs=1e-5)  # one-utterance models: the same as utterances
