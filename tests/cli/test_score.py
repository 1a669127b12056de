import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from xvector import CONFIG_DIR
from xvector.cli.score import score_embeddings, summary_line
from xvector.data.lists import Trial, read_trials, write_trials
from xvector.embeddings import save_embeddings
from xvector.scoring.calibration import LogisticCalibration
from xvector.scoring.cosine import score_trials, trial_labels
from xvector.scoring.norm import cohort_stats, speaker_means, symmetric_norm

# 2-D embeddings at known angles, so each cosine is exact:
#   e1 0°, e2 90° ; t1 0°, t2 60°, t3 90°, t4 180°
EMB = {
    "e1": [1.0, 0.0], "e2": [0.0, 1.0],
    "t1": [1.0, 0.0], "t2": [0.5, math.sqrt(3) / 2], "t3": [0.0, 1.0], "t4": [-1.0, 0.0],
}
# target scores 1, 0.5, 1, 0 ; nontarget scores 0, -1, 0
TRIALS = [
    Trial("e1", "t1", True),    # 1.0
    Trial("e1", "t2", True),    # 0.5
    Trial("e1", "t3", False),   # 0.0
    Trial("e1", "t4", False),   # -1.0
    Trial("e2", "t1", False),   # 0.0
    Trial("e2", "t3", True),    # 1.0
    Trial("e2", "t4", True),    # 0.0 (tied with two nontargets)
]
# Descending: 1.0 TT | 0.5 T | 0.0 T N N | -1 N   (n_target 4, n_nontarget 3)
# points (fpr, fnr): (0, 1), (0, 1/2), (0, 1/4), (2/3, 0), (1, 0); fnr - fpr: 1, 1/2, 1/4, -2/3
# crossing t = (1/4) / (1/4 + 2/3) = 3/11 along (0, 1/4) -> (2/3, 0): EER = 3/11 * 2/3 = 2/11.
# minDCF(p): min(p * fnr + (1 - p) * fpr) = p/4 at threshold 0.5, over p -> 0.25 for every p < 0.5.
EXPECTED_EER = 2 / 11


@pytest.fixture
def inputs(tmp_path):
    save_embeddings(tmp_path / "emb.npz", list(EMB), np.array(list(EMB.values()), dtype=np.float32))
    write_trials(tmp_path / "trials", TRIALS)
    return tmp_path


def make_cfg(root: Path, **overrides):
    """Compose configs/score.yaml for the tiny inputs under ``root`` (output in ``root/out``)."""
    overrides = {
        "embeddings": root / "emb.npz", "trials": root / "trials", "output_dir": root / "out",
        **overrides,
    }
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("score", overrides=[f"{k}={v}" for k, v in overrides.items()])


def test_score_embeddings_writes_scores_and_metrics(inputs):
    out = inputs / "out"
    metrics = score_embeddings(make_cfg(inputs))
    assert metrics["eer"] == pytest.approx(EXPECTED_EER, abs=1e-6)
    for p in ("0.01", "0.05", "0.001"):
        assert metrics[f"min_dcf_{p}"] == pytest.approx(0.25, abs=1e-6)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    lines = (out / "scores").read_text().splitlines()
    assert lines[:2] == ["e1 t1 1.000000 target", "e1 t2 0.500000 target"]
    scores = [float(line.split()[2]) for line in lines]
    assert scores == pytest.approx([1, 0.5, 0, -1, 0, 1, 0], abs=1e-6)
    labels = [line.split()[3] for line in lines]
    assert labels == ["target" if t.target else "nontarget" for t in TRIALS]
    assert summary_line(metrics, 0.01) == "EER 18.18%  minDCF(0.01) 0.2500  trials 7"


def test_mean_embeddings_are_subtracted(inputs):
    rows = np.array([[1.0, 1.0], [0.0, 0.5], [0.5, 0.0]], dtype=np.float32)
    save_embeddings(inputs / "train.npz", ["a", "b", "c"], rows)
    out = inputs / "out"
    score_embeddings(make_cfg(inputs, mean_embeddings=inputs / "train.npz"))
    got = [float(line.split()[2]) for line in (out / "scores").read_text().splitlines()]
    expected = score_trials(list(EMB), np.array(list(EMB.values())), TRIALS, mean=rows.mean(0))
    assert got == pytest.approx(expected, abs=1e-6)
    assert got != pytest.approx([1, 0.5, 0, -1, 0, 1, 0], abs=1e-3)


def test_missing_embedding_names_trials_file_and_line(inputs):
    write_trials(inputs / "trials", [*TRIALS, Trial("e1", "stranger", False)])
    match = r"trials: trial line 8: no embedding for utterance 'stranger'"
    with pytest.raises(ValueError, match=match) as err:
        score_embeddings(make_cfg(inputs))
    assert str(inputs / "trials") in str(err.value)
    assert not (inputs / "out" / "metrics.json").exists()


def test_mean_dimension_mismatch_raises(inputs):
    save_embeddings(inputs / "train.npz", ["a"], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="train.npz: embedding dim 3 differs"):
        score_embeddings(make_cfg(inputs, mean_embeddings=inputs / "train.npz"))


def test_cli_end_to_end(inputs):
    work = inputs / "cwd"
    work.mkdir()
    out = inputs / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "xvector.cli.score", f"embeddings={inputs / 'emb.npz'}",
         f"trials={inputs / 'trials'}", f"output_dir={out}"],
        cwd=work, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "EER 18.18%  minDCF(0.01) 0.2500  trials 7"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eer"] == pytest.approx(EXPECTED_EER, abs=1e-6)
    assert len((out / "scores").read_text().splitlines()) == len(TRIALS)
    assert (out / ".hydra_score" / "config.yaml").is_file()
    assert list(work.iterdir()) == []  # Hydra left nothing (no outputs/) in the working directory


@pytest.fixture
def plda_inputs(tmp_path):
    """Training and test embeddings of simulated speakers, with utt2spk and a trial list."""
    rng = np.random.default_rng(0)

    def speakers(prefix, n_spk, per_spk):
        centres = rng.standard_normal((n_spk, 6)) * 4.0
        ids = [f"{prefix}{s:03d}-{u}" for s in range(n_spk) for u in range(per_spk)]
        emb = np.repeat(centres, per_spk, axis=0) + rng.standard_normal((len(ids), 6))
        return ids, emb.astype(np.float32)

    train_ids, train_emb = speakers("tr", 40, 5)
    save_embeddings(tmp_path / "train.npz", train_ids, train_emb)
    (tmp_path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in train_ids))
    ids, emb = speakers("te", 6, 2)
    save_embeddings(tmp_path / "emb.npz", ids, emb)
    spk = [u.split("-")[0] for u in ids]
    trials = [
        Trial(ids[i], ids[j], spk[i] == spk[j])
        for i in range(len(ids)) for j in range(i + 1, len(ids))
    ]
    write_trials(tmp_path / "trials", trials)
    dev_ids, dev_emb = speakers("dv", 8, 3)  # development speakers: calibration, threshold
    save_embeddings(tmp_path / "dev.npz", dev_ids, dev_emb)
    dev_spk = [u.split("-")[0] for u in dev_ids]
    write_trials(tmp_path / "dev_trials", [
        Trial(dev_ids[i], dev_ids[j], dev_spk[i] == dev_spk[j])
        for i in range(len(dev_ids)) for j in range(i + 1, len(dev_ids))
    ])
    return tmp_path


def test_plda_backend_writes_llr_scores_and_metrics(plda_inputs):
    root = plda_inputs
    cfg = make_cfg(root, backend="plda", **{"backend.lda_dim": 4},
                   train_embeddings=root / "train.npz", train_utt2spk=root / "utt2spk")
    metrics = score_embeddings(cfg)
    assert json.loads((root / "out" / "metrics.json").read_text()) == metrics
    assert metrics["num_trials"] == 66
    lines = (root / "out" / "scores").read_text().splitlines()
    scores = np.array([float(line.split()[2]) for line in lines])
    target = np.array([line.split()[3] == "target" for line in lines])
    assert target.sum() == 6 and len(lines) == 66
    # Well-separated simulated speakers: PLDA LLRs rank targets above non-targets.
    assert scores[target].mean() > scores[~target].mean()
    assert metrics["eer"] < 0.2
    # Cosine scores would lie in [-1, 1]; these are log-likelihood ratios.
    assert np.abs(scores).max() > 1.0


def test_plda_backend_needs_training_data(plda_inputs):
    root = plda_inputs
    with pytest.raises(ValueError, match="set train_embeddings=<.npz> and train_utt2spk="):
        score_embeddings(make_cfg(root, backend="plda", train_embeddings=root / "train.npz"))
    (root / "utt2spk").write_text("tr000-0 tr000\n")
    match = r"utt2spk: no speaker for training utterance 'tr000-1' \(199 of 200 ids"
    with pytest.raises(ValueError, match=match):
        score_embeddings(make_cfg(root, backend="plda", train_embeddings=root / "train.npz",
                                  train_utt2spk=root / "utt2spk"))
    assert not (root / "out" / "metrics.json").exists()


def test_plda_trains_on_several_embedding_files(plda_inputs):
    """train_embeddings=[a,b] with train_utt2spk=[a,b] fits what one concatenated file fits
    (the clean training embeddings beside those of their augmented copies)."""
    root = plda_inputs
    from xvector.embeddings import load_embeddings

    ids, emb = load_embeddings(root / "train.npz")
    lines = (root / "utt2spk").read_text().splitlines(keepends=True)
    save_embeddings(root / "a.npz", ids[:120], emb[:120])
    save_embeddings(root / "b.npz", ids[120:], emb[120:])
    (root / "a_utt2spk").write_text("".join(lines[:120]))
    (root / "b_utt2spk").write_text("".join(lines[120:]))
    one = score_embeddings(make_cfg(root, backend="plda", **{"backend.lda_dim": 4},
                                    train_embeddings=root / "train.npz", train_utt2spk=root / "utt2spk"))
    one_scores = read_scores(root / "out" / "scores")
    two = score_embeddings(make_cfg(root, backend="plda", **{"backend.lda_dim": 4},
                                    train_embeddings=f"[{root / 'a.npz'},{root / 'b.npz'}]",
                                    train_utt2spk=f"[{root / 'a_utt2spk'},{root / 'b_utt2spk'}]"))
    np.testing.assert_allclose(read_scores(root / "out" / "scores"), one_scores, rtol=1e-6, atol=1e-6)
    assert two["eer"] == one["eer"]
    with pytest.raises(ValueError, match="train_embeddings names 2 files and train_utt2spk 1"):
        score_embeddings(make_cfg(root, backend="plda", train_embeddings=f"[{root / 'a.npz'},{root / 'b.npz'}]",
                                  train_utt2spk=root / "utt2spk"))
    # each file is checked against its own utt2spk, and the error names both
    with pytest.raises(ValueError, match=r"a_utt2spk: no speaker for training utterance 'tr024-0' .*b\.npz"):
        score_embeddings(make_cfg(root, backend="plda", train_embeddings=f"[{root / 'a.npz'},{root / 'b.npz'}]",
                                  train_utt2spk=f"[{root / 'a_utt2spk'},{root / 'a_utt2spk'}]"))


def test_cli_plda_backend(plda_inputs):
    root = plda_inputs
    out = root / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "xvector.cli.score", "backend=plda", "backend.lda_dim=4",
         f"train_embeddings={root / 'train.npz'}", f"train_utt2spk={root / 'utt2spk'}",
         f"embeddings={root / 'emb.npz'}", f"trials={root / 'trials'}", f"output_dir={out}"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("EER ") and proc.stdout.strip().endswith("trials 66")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_trials"] == 66 and metrics["eer"] < 0.2
    assert "KaldiChain" in (out / ".hydra_score" / "config.yaml").read_text()


def read_scores(path: Path) -> np.ndarray:
    return np.array([float(line.split()[2]) for line in path.read_text().splitlines()])


def test_decision_threshold_and_det_are_written(inputs):
    out = inputs / "out"
    metrics = score_embeddings(make_cfg(inputs))
    # EER crossing lies between the points at thresholds 0.5 and 0.0, nearer 0.5 (t = 3/11):
    # accepting score >= 0.5 rejects one target (0.0) and accepts no nontarget.
    expected = {"criterion": "eer", "threshold": 0.5, "on": "score", "chosen_on": "eval",
                "far": 0.0, "frr": 0.25}
    assert metrics["decision"] == pytest.approx(expected)
    written = json.loads((out / "threshold.json").read_text())
    assert written.pop("scored_with") == {"backend": "xvector.scoring.cosine.score_trials", "norm": None,
                                          "mean_embeddings": None, "mean_sha256": None}
    assert written == metrics["decision"]
    assert (out / "det.png").read_bytes()[:4] == b"\x89PNG"
    assert "cllr" not in metrics  # raw cosine scores are not LLRs
    assert 0.0 <= metrics["min_cllr"] <= 1.0
    assert not (out / "calibration.json").exists()


@pytest.mark.parametrize(("far", "threshold", "rates"), [(0.5, 0.5, (0.0, 0.25)), (0.7, 0.0, (2 / 3, 0.0))])
def test_decision_at_target_far(inputs, far, threshold, rates):
    cfg = make_cfg(inputs, **{"threshold.criterion": "far", "threshold.far": far, "det_plot": False})
    decision = score_embeddings(cfg)["decision"]
    assert (decision["threshold"], decision["target_far"]) == (threshold, far)
    assert (decision["far"], decision["frr"]) == pytest.approx(rates)
    assert not (inputs / "out" / "det.png").exists()


@pytest.mark.parametrize(("norm", "top_k"), [("snorm", None), ("asnorm", 10)])
def test_score_norm_matches_reference(plda_inputs, norm, top_k):
    root = plda_inputs
    overrides = {"norm": norm, "mean_embeddings": root / "train.npz",
                 "train_embeddings": root / "train.npz", "train_utt2spk": root / "utt2spk"}
    if top_k is not None:
        overrides["norm.top_k"] = top_k
    score_embeddings(make_cfg(root, **overrides))
    got = read_scores(root / "out" / "scores")
    # Reference from the pure functions: cohort = per-speaker means of centred training data.
    with np.load(root / "train.npz") as f:
        train_ids, train = list(f["ids"]), f["embeddings"].astype(np.float64)
    with np.load(root / "emb.npz") as f:
        ids, emb = list(f["ids"]), f["embeddings"].astype(np.float64)
    mean = train.mean(0)
    cohort = speaker_means(train - mean, [u.split("-")[0] for u in train_ids])
    assert cohort.shape == (40, 6)
    trials = read_trials(root / "trials")
    raw = score_trials(ids, emb, trials, mean=mean)
    mu, sd = cohort_stats(emb - mean, cohort, top_k=top_k)
    row = {u: i for i, u in enumerate(ids)}
    e = np.array([row[t.enroll] for t in trials])
    t = np.array([row[t.test] for t in trials])
    np.testing.assert_allclose(got, symmetric_norm(raw, e, t, mu, sd), atol=2e-6)  # scores file: 6 decimals
    assert not np.allclose(got, raw, atol=1e-2)


def test_score_norm_is_symmetric(plda_inputs):
    root = plda_inputs
    overrides = {"norm": "asnorm", "norm.top_k": 5, "mean_embeddings": root / "train.npz",
                 "train_embeddings": root / "train.npz", "train_utt2spk": root / "utt2spk"}
    score_embeddings(make_cfg(root, **overrides))
    forward = read_scores(root / "out" / "scores")
    trials = read_trials(root / "trials")
    write_trials(root / "swapped", [Trial(t.test, t.enroll, t.target) for t in trials])
    score_embeddings(make_cfg(root, trials=root / "swapped", **overrides))
    np.testing.assert_allclose(read_scores(root / "out" / "scores"), forward, atol=1e-6)


def test_calibration_on_dev_list(plda_inputs):
    root = plda_inputs
    out = root / "out"
    dev = {"dev_embeddings": root / "dev.npz", "dev_trials": root / "dev_trials"}
    metrics = score_embeddings(make_cfg(root, calibration="logistic", **dev))
    # Reference: fit the calibration on the dev list's cosine scores, apply to the eval scores.
    with np.load(root / "dev.npz") as f:
        dev_ids, dev_emb = list(f["ids"]), f["embeddings"]
    dev_trials = read_trials(root / "dev_trials")
    cal = LogisticCalibration().fit(score_trials(dev_ids, dev_emb, dev_trials), trial_labels(dev_trials))
    written = json.loads((out / "calibration.json").read_text())
    assert written.pop("scored_with")["mean_sha256"] is None  # what xvector-export checks its mean against
    assert written == pytest.approx(cal.to_dict())
    with np.load(root / "emb.npz") as f:
        raw = score_trials(list(f["ids"]), f["embeddings"], read_trials(root / "trials"))
    np.testing.assert_allclose(read_scores(out / "scores"), cal(raw), atol=1e-5)
    assert {"cllr", "min_cllr", "act_dcf_0.01", "act_dcf_0.05", "act_dcf_0.001"} <= set(metrics)
    assert metrics["min_cllr"] <= metrics["cllr"]
    decision = metrics["decision"]
    assert (decision["on"], decision["chosen_on"]) == ("llr", "dev")


def test_plda_scores_report_llr_metrics_without_calibration(plda_inputs):
    root = plda_inputs
    metrics = score_embeddings(make_cfg(root, backend="plda", **{"backend.lda_dim": 4},
                                        train_embeddings=root / "train.npz", train_utt2spk=root / "utt2spk"))
    assert "cllr" in metrics and metrics["decision"]["on"] == "llr"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"calibration": "logistic"}, "calibration is fitted on a development list"),
        ({"dev_trials": "x"}, "set both dev_embeddings and dev_trials"),
        ({"norm": "asnorm"}, "set train_embeddings=<.npz> and train_utt2spk="),
        ({"norm": "snorm", "backend": "plda", "train_embeddings": "{root}/train.npz",
          "train_utt2spk": "{root}/utt2spk"}, "use it with backend=cosine"),
        ({"threshold.criterion": "median"}, "criterion must be one of"),
    ],
)
def test_bad_scoring_configs_raise(plda_inputs, overrides, match):
    overrides = {k: str(v).format(root=plda_inputs) for k, v in overrides.items()}
    with pytest.raises(ValueError, match=match):
        score_embeddings(make_cfg(plda_inputs, **overrides))
    assert not (plda_inputs / "out" / "metrics.json").exists()
