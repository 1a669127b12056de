"""scripts/env.sh points a cached venv's editable install at the clone it runs from."""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHERE = "import xvector, os; print(os.path.dirname(os.path.dirname(os.path.realpath(xvector.__file__))))"


@pytest.mark.slow  # pip builds the editable install (setuptools from PyPI, as the first install does)
def test_env_sh_repoints_an_editable_install_made_by_another_clone(tmp_path):
    # A throwaway venv that sees this one's packages (a .pth line), with a copy of the repository
    # installed editable; env.sh then runs from this clone, whose folder holds ./xvector, where a
    # check run in the caller's folder would find this clone whatever the install says.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (next(venv.glob("lib/python3*/site-packages")) / "parent.pth").write_text(site.getsitepackages()[0] + "\n")
    other = tmp_path / "other"
    shutil.copytree(REPO, other, ignore=shutil.ignore_patterns(".git", "data", "exp", "*.egg-info", "__pycache__",
                                                               ".pytest_cache", "outputs", "build"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-build-isolation", "-e", str(other)], check=True, capture_output=True)
    (venv / ".complete").touch()
    before = subprocess.run([str(venv / "bin" / "python"), "-c", WHERE], cwd="/", capture_output=True, text=True)
    assert before.stdout.strip() == str(other)
    env = {**os.environ, "XVECTOR_VENV": str(venv)}
    out = subprocess.run(["scripts/env.sh", "bash", "-c", f"cd / && python -c '{WHERE}'"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == str(REPO)
