"""Every docstring example of the package runs (TRL-style doctests)."""

import doctest
import importlib
import pkgutil

import cv_data
import pytest

MODULES = ["cv_data"] + [
    m.name
    for m in pkgutil.walk_packages(cv_data.__path__, prefix="cv_data.")
    if not m.name.endswith("__main__")
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
