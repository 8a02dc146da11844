"""Fakes for tests of cv-agent and the packages above it (no real model needed).

Tiny random checkpoints, which cv-train's tiny recipes use in production too, live in :mod:`cv_agent.tiny`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PIL import Image

from ._stub_server import StubOpenAIServer
from .backends.base import Generation, ModelBackend
from .trajectory import Trajectory

Reply = str | Generation
ScriptFn = Callable[[list[dict[str, Any]]], Reply]


class ScriptedPolicy(ModelBackend):
    """A backend that replays scripted replies: a list (one per turn) or a function of the conversation.

    With a list, the reply for a turn is chosen by how many assistant turns the conversation already has,
    so the same policy object can drive many concurrent episodes, and a resumed trajectory continues
    exactly where it stopped. Past the end of the list it repeats ``default`` (or the last reply).

    Args:
        replies: Replies per turn, or ``callable(messages) -> reply`` (messages: the trajectory so far).
        default: Reply after the list runs out (``None``: repeat the last one).
        latency_s: Simulated model latency per call (``asyncio.sleep``, so episodes overlap).
        fail_on_turns: Turn indices on which to raise ``BackendError`` instead (tests of error handling).

    Example:
        >>> from cv_protocol import render_tool_call
        >>> policy = ScriptedPolicy([render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0),
        ...                          "<think>ok</think><answer>B</answer>"])
        >>> policy.reply_for([{"role": "assistant", "content": "..."}]).text
        '<think>ok</think><answer>B</answer>'
    """

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[Reply] | ScriptFn,
        *,
        default: Reply | None = None,
        latency_s: float = 0.0,
        fail_on_turns: Sequence[int] = (),
    ) -> None:
        if not callable(replies) and not list(replies):
            raise ValueError("give at least one scripted reply, or a callable")
        self.replies = replies if callable(replies) else list(replies)
        self.default = default
        self.latency_s = latency_s
        self.fail_on_turns = set(fail_on_turns)
        self.calls: list[dict[str, Any]] = []

    def reply_for(self, messages: list[dict[str, Any]]) -> Generation:
        """The scripted reply for this conversation state."""
        if callable(self.replies):
            r = self.replies(messages)
        else:
            turn = sum(1 for m in messages if m.get("role") == "assistant")
            if turn < len(self.replies):
                r = self.replies[turn]
            else:
                r = self.default if self.default is not None else self.replies[-1]
        return (
            r
            if isinstance(r, Generation)
            else Generation(text=str(r), completion_tokens=max(1, len(str(r)) // 4))
        )

    async def complete(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Generation:
        from .backends.base import BackendError

        turn = sum(1 for m in messages if m.get("role") == "assistant")
        self.calls.append(
            {
                "turn": turn,
                "n_messages": len(messages),
                "n_images": len(images),
                "image_sizes": [im.size for im in images],
                "tools": tools,
            }
        )
        if self.latency_s:
            import asyncio

            await asyncio.sleep(self.latency_s)
        if turn in self.fail_on_turns:
            raise BackendError(f"scripted failure on turn {turn}")
        return self.reply_for(messages)


def assistant_turns(traj: Trajectory) -> list[str]:
    """The assistant replies of a trajectory (convenience for assertions)."""
    return traj.assistant_texts


__all__ = ["ScriptedPolicy", "StubOpenAIServer", "assistant_turns"]
