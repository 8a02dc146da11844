"""Every docstring example of the package runs (TRL-style doctests)."""

import doctest
import importlib
import pkgutil

import cv_protocol
import pytest

MODULES = ["cv_protocol"] + [f"cv_protocol.{m.name}" for m in pkgutil.iter_modules(cv_protocol.__path__)]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


@pytest.mark.parametrize("name", MODULES[1:])
def test_every_module_has_examples(name: str) -> None:
    tests = [t for t in doctest.DocTestFinder().find(importlib.import_module(name)) if t.examples]
    assert tests, f"{name} has no docstring examples"


def test_stdlib_only() -> None:
    import subprocess
    import sys

    # A fresh interpreter: importing the package pulls in no third-party module.
    code = (
        "import sys, cv_protocol; "
        "third = sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names "
        "and not m.startswith(('cv_protocol', '_')) and m != '__main__'); print(third)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
