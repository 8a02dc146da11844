"""The one way user code is refused: raise :class:`ForbiddenError` and remember it for the run."""

from __future__ import annotations

from typing import NoReturn


class ForbiddenError(Exception):
    """Raised when user code touches something the sandbox does not allow."""


class GuardState:
    """Remembers the first forbidden access, so code that catches the error still fails as forbidden."""

    def __init__(self) -> None:
        self.forbidden: str | None = None


GUARD = GuardState()


def forbid(msg: str) -> NoReturn:
    if GUARD.forbidden is None:
        GUARD.forbidden = msg
    raise ForbiddenError(msg)
