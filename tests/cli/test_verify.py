"""xvector-verify: two files and a model → score and decision."""

import json

import numpy as np
import pytest
import soundfile as sf

from xvector.cli.verify import main
from xvector.inference.model_dir import init_checkpoint, tiny_config, write_model_dir


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify")
    ckpt = init_checkpoint(d / "tiny.ckpt", tiny_config())
    model = write_model_dir(d / "model", ckpt, calibration={"scale": 10.0, "offset": -1.0},
                            threshold={"criterion": "min_dcf", "threshold": 2.0, "on": "llr"})
    rng = np.random.default_rng(0)
    for name, n in (("a", 16000), ("b", 20000)):
        sf.write(d / f"{name}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000, subtype="FLOAT")
    sf.write(d / "short.wav", (0.1 * rng.standard_normal(1000)).astype(np.float32), 16000)
    return d, ckpt, model


def test_prints_score_and_decision(setup, capsys):
    d, _, model = setup
    main([str(d / "a.wav"), str(d / "a.wav"), "--model", str(model)])
    line = capsys.readouterr().out.strip()
    assert line == "score 1.0000, llr 9.000, decision: same speaker (llr >= 2.0000)"


def test_json_output_and_threshold_override(setup, capsys):
    d, _, model = setup
    main([str(d / "a.wav"), str(d / "b.wav"), "--model", str(model), "--json", "--threshold", "50"])
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"score", "llr", "decision", "threshold", "on"}
    assert result["decision"] is False and result["threshold"] == 50.0
    assert result["llr"] == pytest.approx(10 * result["score"] - 1, abs=1e-9)


def test_checkpoint_gives_score_only(setup, capsys):
    d, ckpt, _ = setup
    main([str(d / "a.wav"), str(d / "b.wav"), "--model", str(ckpt)])
    assert "decision: none" in capsys.readouterr().out


@pytest.mark.parametrize("files, match", [(("a.wav", "missing.wav"), "missing.wav"), (("a.wav", "short.wav"), "shorter than")])
def test_errors_exit_with_a_message(setup, files, match, capsys):
    d, _, model = setup
    with pytest.raises(SystemExit) as stop:
        main([str(d / files[0]), str(d / files[1]), "--model", str(model)])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 1 and len(err) == 1 and err[0].startswith("xvector-verify: ") and match in err[0]


def test_debug_shows_the_traceback(setup):
    d, _, model = setup
    with pytest.raises(ValueError, match="missing.wav: audio file does not exist"):
        main([str(d / "a.wav"), str(d / "missing.wav"), "--model", str(model), "--debug"])
