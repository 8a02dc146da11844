"""The examples in the docstrings run and stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "config",
    "data",
    "env",
    "invariants",
    "models",
    "rewards",
    "rl",
    "sft",
    "testing",
    "cli",
    "_run",
    "verl_tool",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"cv_train.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
