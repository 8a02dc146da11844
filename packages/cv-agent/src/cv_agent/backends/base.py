"""The one interface every model backend implements, and the spec parser that picks one."""

from __future__ import annotations

import asyncio
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
    ) -> Generation:
        """Generate the next assistant reply with usage information."""
        text = await self.generate(messages, images, max_new_tokens=max_new_tokens, temperature=temperature)
        return Generation(text=text)

    async def generate(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> str:
        """Generate the next assistant reply (text only).

        Example:
            >>> from cv_agent.testing import ScriptedPolicy
            >>> asyncio.run(ScriptedPolicy(["<answer>A</answer>"]).generate([], []))
            '<answer>A</answer>'
        """
        gen = await self.complete(messages, images, max_new_tokens=max_new_tokens, temperature=temperature)
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


def parse_backend_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``"openai:URL#MODEL"``, ``"hf:PATH"`` or ``"vllm:PATH"`` into (kind, fields).

    Example:
        >>> parse_backend_spec("openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
        ('openai', {'base_url': 'http://localhost:8000/v1', 'model': 'Qwen/Qwen2.5-VL-7B-Instruct'})
        >>> parse_backend_spec("hf:/models/tiny")
        ('hf', {'path': '/models/tiny'})
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"bad model spec {spec!r}; use 'openai:URL#MODEL', 'hf:PATH' or 'vllm:PATH'")
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind == "openai":
        if "#" not in rest:
            raise ValueError(
                f"bad model spec {spec!r}: an openai spec needs '#MODEL', e.g. openai:http://host:8000/v1#my-model"
            )
        url, model = rest.rsplit("#", 1)
        if not url.startswith(("http://", "https://")) or not model:
            raise ValueError(f"bad model spec {spec!r}: expected openai:http(s)://HOST[:PORT]/v1#MODEL")
        return "openai", {"base_url": url, "model": model}
    if kind in ("hf", "vllm"):
        if not rest:
            raise ValueError(f"bad model spec {spec!r}: give a model path after '{kind}:'")
        return kind, {"path": rest}
    raise ValueError(
        f"unknown backend {kind!r} in {spec!r}; use 'openai:URL#MODEL', 'hf:PATH' or 'vllm:PATH'"
    )


def make_backend(spec: str, **options: Any) -> ModelBackend:
    """Create a backend from a spec string.

    Args:
        spec: ``"openai:URL#MODEL"`` (OpenAI-compatible server), ``"hf:PATH"`` (transformers) or
            ``"vllm:PATH"`` (vLLM offline engine).
        **options: Extra fields for that backend's config dataclass
            (:class:`~cv_agent.backends.OpenAIBackendConfig`, :class:`~cv_agent.backends.TransformersBackendConfig`,
            :class:`~cv_agent.backends.VLLMBackendConfig`).

    Example:
        >>> make_backend("openai:http://127.0.0.1:8000/v1#m", max_concurrency=8).config.max_concurrency
        8
    """
    kind, fields = parse_backend_spec(spec)
    if kind == "openai":
        from .openai_compat import OpenAIBackend, OpenAIBackendConfig

        return OpenAIBackend(OpenAIBackendConfig(**fields, **options))
    if kind == "hf":
        from .hf import TransformersBackend, TransformersBackendConfig

        return TransformersBackend(TransformersBackendConfig(**fields, **options))
    from .vllm_offline import VLLMBackend, VLLMBackendConfig

    return VLLMBackend(VLLMBackendConfig(**fields, **options))
