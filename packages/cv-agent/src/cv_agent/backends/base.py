"""The one interface every model backend implements (:mod:`cv_agent.backends.factory` picks one by spec)."""

from __future__ import annotations

import asyncio
import functools
import inspect
from dataclasses import dataclass
from typing import Any

from PIL import Image


class BackendError(RuntimeError):
    """A backend failed for good (after its retries). The agent records it as ``stop_reason="error"``."""


@dataclass
class Generation:
    """One model reply.

    Attributes:
        text: The generated text (special end tokens stripped; ``<tool_call>``/``<answer>`` tags kept).
        prompt_tokens: Tokens in the prompt, when the backend knows.
        completion_tokens: Tokens generated, when the backend knows.
        finish_reason: ``"stop"``, ``"length"`` or backend specific, when known.
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


class ModelBackend:
    """Base class of model backends: override :meth:`complete` (or :meth:`generate`).

    Messages are OpenAI-style dicts whose content is a string or a list of parts
    ``{"type": "text", "text": ...}`` / ``{"type": "image", "image_index": k}``; ``images[k]`` is the image a
    placeholder refers to (already resized to the model's pixel budget). Roles: ``system``, ``user``,
    ``assistant`` (raw reply text, tool calls inline) and ``tool`` (the tool response).

    ``tools`` is the list of tool schemas the prompt shows the model (the agent passes its preset's,
    :meth:`cv_protocol.Preset.tools`; ``[]``: none); ``None`` leaves it to the backend (the local backends
    render the default preset's schema). A subclass whose ``complete`` takes no ``tools`` argument is called
    without it (:func:`takes_tools`).
    """

    name: str = "backend"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.complete is ModelBackend.complete and cls.generate is ModelBackend.generate:
            raise TypeError(f"{cls.__name__} must override complete() or generate()")

    async def complete(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> Generation:
        """Generate the next assistant reply with usage information."""
        extra = {"tools": tools} if _accepts_tools(type(self).generate) else {}
        text = await self.generate(
            messages, images, max_new_tokens=max_new_tokens, temperature=temperature, **extra
        )
        return Generation(text=text)

    async def generate(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> str:
        """Generate the next assistant reply (text only).

        Example:
            >>> from cv_agent.testing import ScriptedPolicy
            >>> asyncio.run(ScriptedPolicy(["<answer>A</answer>"]).generate([], []))
            '<answer>A</answer>'
        """
        extra = {"tools": tools} if _accepts_tools(type(self).complete) else {}
        gen = await self.complete(
            messages, images, max_new_tokens=max_new_tokens, temperature=temperature, **extra
        )
        return gen.text

    async def aclose(self) -> None:
        """Release resources (HTTP clients, models)."""

    def close(self) -> None:
        """Synchronous :meth:`aclose` for use outside an event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.aclose())
            return
        raise RuntimeError("close() called inside an event loop; use `await backend.aclose()`")


def takes_tools(backend: ModelBackend) -> bool:
    """Whether ``backend.complete`` accepts the ``tools`` argument (backends written before presets do not).

    Example:
        >>> from cv_agent.testing import ScriptedPolicy
        >>> takes_tools(ScriptedPolicy(["<answer>A</answer>"]))
        True
    """
    return _accepts_tools(type(backend).complete)


@functools.cache
def _accepts_tools(method: Any) -> bool:
    params = inspect.signature(method).parameters
    return "tools" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
