"""cv-sandbox: restricted, isolated, fast execution of model-written image code.

The tool's wire format, its parser and the texts the model sees of a result live in :mod:`cv_protocol`;
:class:`ImageWorkspace` (:mod:`cv_sandbox.workspace`) is the one executor of a conversation's tool calls.
"""

from . import geometry
from .geometry import IDENTITY, Affine, chain_to_input, compose, map_box
from .result import ERROR_KINDS, ExecResult, TraceOp
from .sandbox import Sandbox, SandboxConfig
from .shared import shared_sandbox
from .workspace import ImageWorkspace, ToolCall, ToolOutcome

__all__ = [
    "ERROR_KINDS",
    "IDENTITY",
    "Affine",
    "ExecResult",
    "ImageWorkspace",
    "Sandbox",
    "SandboxConfig",
    "ToolCall",
    "ToolOutcome",
    "TraceOp",
    "chain_to_input",
    "compose",
    "geometry",
    "map_box",
    "shared_sandbox",
]
__version__ = "0.1.0"
