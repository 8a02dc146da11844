"""cv-protocol: the interaction vocabulary every CodeVision package speaks (stdlib only, imports nothing of ours).

- :mod:`cv_protocol.ops`: canonical op names and the op that undoes each transform.
- :mod:`cv_protocol.tool`: the code tool's wire format (name, arguments, calls, tool-response wrapping).
- :mod:`cv_protocol.parsing`: reading replies (the tolerant tool-call parser, the final answer).
- :mod:`cv_protocol.presets`: what the model is shown (system prompt, tool description, response texts).
- :mod:`cv_protocol.messages`: chat messages and completions as text.
- :mod:`cv_protocol.models`: model specs (``openai:URL#MODEL``, ``hf:PATH``, ``vllm:PATH``).

Example:
    >>> from cv_protocol import corrective_ops, parse_tool_calls, render_tool_call
    >>> call = parse_tool_calls("<think>upside down</think>" + render_tool_call("result = image.rotate(180)", "fix", 0))
    >>> call.code, corrective_ops(["rotate_180"])
    ('result = image.rotate(180)', ['rotate_180'])
"""

from .messages import IMAGE_TOKEN, completion_to_text, content_text
from .models import MODEL_KINDS, ModelSpec, parse_model_spec
from .ops import (
    CROP,
    FLIP_OPS,
    GEOMETRIC_OPS,
    ORIENTATION_OPS,
    ROTATE_OPS,
    TRANSFORM_NAMES,
    corrective_ops,
    rotation_degrees,
)
from .parsing import (
    ParsedCall,
    ParseError,
    canonical_call_text,
    extract_answer,
    parse_tool_arguments,
    parse_tool_calls,
)
from .presets import (
    DEFAULT_PRESET,
    PRESETS,
    RELEASE_PRESET,
    SYSTEM_PROMPT,
    TOOL_SCHEMA,
    ExecOutcome,
    Preset,
    ToolCallError,
    get_preset,
    parse_error_text,
    tool_response_text,
)
from .tool import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_NAME,
    TOOL_PARAMETERS,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    render_tool_call,
    strip_tool_responses,
    tool_schema,
    wrap_tool_response,
    wrap_tool_response_parts,
)

__all__ = [
    "CROP",
    "DEFAULT_PRESET",
    "FLIP_OPS",
    "GEOMETRIC_OPS",
    "IMAGE_TOKEN",
    "MODEL_KINDS",
    "ORIENTATION_OPS",
    "PRESETS",
    "RELEASE_PRESET",
    "ROTATE_OPS",
    "SYSTEM_PROMPT",
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "TOOL_NAME",
    "TOOL_PARAMETERS",
    "TOOL_RESPONSE_END",
    "TOOL_RESPONSE_START",
    "TOOL_SCHEMA",
    "TRANSFORM_NAMES",
    "ExecOutcome",
    "ModelSpec",
    "ParseError",
    "ParsedCall",
    "Preset",
    "ToolCallError",
    "canonical_call_text",
    "completion_to_text",
    "content_text",
    "corrective_ops",
    "extract_answer",
    "get_preset",
    "parse_error_text",
    "parse_model_spec",
    "parse_tool_arguments",
    "parse_tool_calls",
    "render_tool_call",
    "rotation_degrees",
    "strip_tool_responses",
    "tool_response_text",
    "tool_schema",
    "wrap_tool_response",
    "wrap_tool_response_parts",
]
__version__ = "0.1.0"
