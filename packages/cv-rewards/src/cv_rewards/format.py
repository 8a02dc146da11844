"""The format reward of the paper: a well-formed think/answer structure, tool responses ignored."""

from __future__ import annotations

import re

from cv_protocol import strip_tool_responses

__all__ = ["format_reward"]

_TAG_RE = re.compile(r"</?think>|</?answer>")
# End-of-turn tokens left by decoders that keep special tokens.
_TRAILING_SPECIAL_RE = re.compile(r"(?:\s*(?:<\|im_end\|>|<\|endoftext\|>|<\|eot_id\|>|</s>))+\s*\Z")


def format_reward(text: str) -> float:
    """1.0 when the rollout is well formed, else 0.0.

    Well formed (SPEC): after removing tool responses, the text starts with ``<think>``; every ``<think>``
    is closed before the next one opens (balanced, not nested); there is exactly one
    ``<answer>...</answer>``; it is not inside a think block; and the text ends with it.

    Args:
        text: All assistant text of the rollout; tool responses wrapped in ``<tool_response>`` tags.

    Example:
        >>> format_reward("<think>rotate it</think><tool_call>{}</tool_call>"
        ...               "<tool_response>img</tool_response><think>ok</think><answer>42</answer>")
        1.0
        >>> format_reward("<think>a</think><answer>1</answer><answer>2</answer>")
        0.0
    """
    if not isinstance(text, str):
        raise TypeError(f"format_reward expects a str, got {type(text).__name__}")
    s = _TRAILING_SPECIAL_RE.sub("", strip_tool_responses(text)).strip()
    if not s.startswith("<think>") or not s.endswith("</answer>"):
        return 0.0
    in_think = in_answer = False
    answers = 0
    for m in _TAG_RE.finditer(s):
        tag = m.group(0)
        if tag == "<think>":
            if in_think or in_answer:
                return 0.0
            in_think = True
        elif tag == "</think>":
            if not in_think:
                return 0.0
            in_think = False
        elif tag == "<answer>":
            if in_think or in_answer:
                return 0.0
            in_answer = True
            answers += 1
        else:  # </answer>
            if not in_answer:
                return 0.0
            in_answer = False
    return 1.0 if answers == 1 and not in_think and not in_answer else 0.0
