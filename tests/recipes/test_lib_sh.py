"""recipes/lib.sh: the recipes' shared Kaldi-style option parser."""

import subprocess
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[2] / "recipes" / "lib.sh"


def _run(*args: str) -> subprocess.CompletedProcess:
    script = (
        "set -euo pipefail\n"
        "stage=0\nstop_stage=4\ndata=data/x\nvox1=\n"
        f". {LIB}\n"
        'parse_options "$@"\n'
        'echo "stage=$stage stop_stage=$stop_stage data=$data vox1=$vox1 n=${#overrides[@]} ${overrides[*]:-}"\n'
    )
    return subprocess.run(["bash", "-c", script, "run.sh", *args], capture_output=True, text=True)


def test_options_set_the_recipe_variables_and_overrides_follow_the_dashes():
    out = _run("--stage", "2", "--stop-stage=3", "--vox1", "/a b", "--", "trainer.max_epochs=2", "x=1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "stage=2 stop_stage=3 data=data/x vox1=/a b n=2 trainer.max_epochs=2 x=1"


def test_defaults_when_no_options():
    out = _run()
    assert out.stdout.strip() == "stage=0 stop_stage=4 data=data/x vox1= n=0"


@pytest.mark.parametrize("args, message", [
    (("--stgae", "2"), "unknown option --stgae"),
    (("--path", "/x"), "unknown option --path"),  # not a recipe variable (and PATH is never reachable)
    (("--overrides", "x"), "unknown option --overrides"),
    (("--stage",), "option --stage needs a value"),
    (("stage=2",), "unknown argument stage=2"),
])
def test_bad_options_stop_with_a_message(args, message):
    out = _run(*args)
    assert out.returncode == 2 and message in out.stderr
    assert out.stdout == ""


def test_has_utts_is_true_for_a_complete_dir_of_that_many_utterances(tmp_path):
    (tmp_path / "aug").mkdir()
    script = f'. {LIB}\nfor n in 2 4; do has_utts "$1" $n && echo "$n yes" || echo "$n no"; done\n'

    def run() -> str:
        return subprocess.run(["bash", "-c", script, "t", str(tmp_path / "aug")], capture_output=True, text=True).stdout

    assert run() == "2 no\n4 no\n"  # no wav.scp yet: not complete
    (tmp_path / "aug" / "wav.scp").write_text("a-aug1 x\nb-aug1 y\n")
    assert run() == "2 yes\n4 no\n"  # one copy of 2 utterances, not two
