"""Every docstring example in the package runs and gives the output it shows."""

import doctest
import importlib
import pkgutil

import pytest

import xvector

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(xvector.__path__, prefix="xvector.")
    if not m.name.endswith(("train", "extract", "score"))  # Hydra entry points: no examples
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
