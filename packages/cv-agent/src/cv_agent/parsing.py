"""Compatibility re-export: the tolerant tool-call parser lives in :mod:`cv_sandbox.protocol`, next to the
format it reads (so cv-data's teacher mode uses the same parser without importing cv-agent)."""

from cv_sandbox.protocol import ParsedCall, ParseError, parse_tool_calls

__all__ = ["ParseError", "ParsedCall", "parse_tool_calls"]
