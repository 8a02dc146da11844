"""Deterministic property tests: fixed example generation, no wall-clock deadline on a shared machine."""

from hypothesis import settings

settings.register_profile("cv-rewards", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("cv-rewards")
