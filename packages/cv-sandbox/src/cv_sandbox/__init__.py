"""cv-sandbox: restricted, isolated, fast execution of model-written image code."""

from . import geometry
from .geometry import IDENTITY, Affine, chain_to_input, compose, map_box
from .protocol import (
    SYSTEM_PROMPT,
    TOOL_NAME,
    TOOL_SCHEMA,
    ParsedCall,
    ParseError,
    extract_final_answer,
    parse_error_text,
    parse_tool_calls,
    render_tool_call,
    tool_response_text,
)
from .result import ERROR_KINDS, ORIENTATION_OPS, ExecResult, TraceOp
from .sandbox import Sandbox, SandboxConfig

__all__ = [
    "ERROR_KINDS",
    "IDENTITY",
    "ORIENTATION_OPS",
    "SYSTEM_PROMPT",
    "TOOL_NAME",
    "TOOL_SCHEMA",
    "Affine",
    "ExecResult",
    "ParseError",
    "ParsedCall",
    "Sandbox",
    "SandboxConfig",
    "TraceOp",
    "chain_to_input",
    "compose",
    "extract_final_answer",
    "geometry",
    "map_box",
    "parse_error_text",
    "parse_tool_calls",
    "render_tool_call",
    "tool_response_text",
]
__version__ = "0.1.0"
