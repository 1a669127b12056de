"""Malformed Hydra overrides give Hydra's own short message, not a Python traceback."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "override", "message"),
    [
        ("xvector.cli.train", "model.nope=1", "Could not override 'model.nope'"),
        ("xvector.cli.train", "model=nonet", "Could not find 'model/nonet'"),
        ("xvector.cli.train", "foo", "Error parsing override 'foo'"),
        ("xvector.cli.score", "norm=zscore", "Could not find 'norm/zscore'"),
    ],
)
def test_malformed_override_is_one_readable_error(tmp_path, module, override, message):
    proc = subprocess.run([sys.executable, "-m", module, override], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
