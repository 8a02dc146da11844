"""Fakes of cv-agent's tests: the deterministic sandbox lives in cv_sandbox.testing (shared with its own tests)."""

from cv_sandbox.testing import FakeSandbox

__all__ = ["FakeSandbox"]
