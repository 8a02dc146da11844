"""Every docstring example of the package runs (TRL-style doctests)."""

import doctest
import importlib
import pkgutil

import cv_agent
import pytest

MODULES = ["cv_agent"] + [
    m.name
    for m in pkgutil.walk_packages(cv_agent.__path__, prefix="cv_agent.")
    if not m.name.endswith("__main__")
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
