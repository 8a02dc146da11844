"""Verifying an SFT record: re-execute every tool call and compare with what the record stores."""

from __future__ import annotations

from typing import Any

from cv_protocol import ParsedCall, Preset, content_text, get_preset, parse_tool_calls
from cv_sandbox import ImageWorkspace, Sandbox, shared_sandbox

from cv_data._images import same_pixels

__all__ = ["replay_trajectory"]


def _has_image(message: dict[str, Any]) -> bool:
    return any(p["type"] == "image" for p in message["content"])


def replay_trajectory(
    record: dict[str, Any], sandbox: Sandbox | None = None, preset: Preset | str = "default"
) -> list[str]:
    """Re-execute every tool call of ``record`` and compare with its stored tool messages (written with
    ``preset``'s texts).

    Calls are read with :func:`cv_protocol.parse_tool_calls` and run through
    :class:`cv_sandbox.ImageWorkspace`, as the agent reads and runs them. Replay stops at the first call
    whose outcome differs in kind (an image where the record has none, or the reverse): what follows
    cannot be compared.

    Returns:
        A list of mismatch descriptions; empty when every output image (pixels) and tool text match.

    Example:
        >>> from cv_data import make_trajectory
        >>> replay_trajectory(make_trajectory(0, "single_tool", seed=1))
        []
    """
    sb = sandbox or shared_sandbox()
    msgs = record["messages"]
    stored = record["images"]
    first_reply = next((j for j, m in enumerate(msgs) if m["role"] == "assistant"), len(msgs))
    n_inputs = sum(1 for m in msgs[:first_reply] for p in m["content"] if p["type"] == "image")
    pre = get_preset(preset)
    ws = ImageWorkspace(list(stored[:n_inputs]), preset=pre)
    problems: list[str] = []
    for j, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        call = parse_tool_calls(content_text(m["content"]))
        tool = msgs[j + 1] if j + 1 < len(msgs) and msgs[j + 1]["role"] == "tool" else None
        if not isinstance(call, ParsedCall):
            # A call the parser could not read must be answered with its error message.
            if tool is not None and (
                call.kind == "no_call"
                or content_text(tool["content"]) != pre.parse_error_text(call)
                or _has_image(tool)
            ):
                problems.append(f"message {j}: tool message does not answer an unreadable call ({call.kind})")
            continue
        if tool is None:
            problems.append(f"message {j}: tool call without a tool message")
            continue
        out = ws.execute(sb, call.code, call.description, call.image_index)
        if out.call.ok != _has_image(tool):
            problems.append(
                f"message {j}: replay ok={out.call.ok} but stored tool message has_image={_has_image(tool)}"
            )
            return problems
        if out.text != content_text(tool["content"]):
            problems.append(
                f"message {j}: tool text differs: {out.text!r} != {content_text(tool['content'])!r}"
            )
        if out.index is not None:
            if len(stored) <= out.index:
                problems.append(f"message {j}: record has no stored image {out.index}")
                return problems
            if not same_pixels(ws.images[out.index], stored[out.index]):
                problems.append(f"message {j}: replayed image {out.index} differs in pixels")
    if len(ws.images) != len(stored):
        problems.append(f"{len(stored)} stored images but {len(ws.images)} produced by replay")
    return problems
