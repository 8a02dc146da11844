# Kept only for _execute.py (``from . import _affine as A``) until it is switched to ``geometry``; use geometry.
from .geometry import *  # noqa: F403
