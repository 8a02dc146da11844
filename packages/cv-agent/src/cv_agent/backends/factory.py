"""Backends by model spec: ``make_backend("openai:URL#MODEL" | "hf:PATH" | "vllm:PATH")``.

The factory sits apart from :mod:`cv_agent.backends.base` because it imports every backend, and every
backend imports the base class. Specs are parsed by :func:`cv_protocol.parse_model_spec`, the one
parser every package uses.
"""

from __future__ import annotations

from typing import Any

from cv_protocol import parse_model_spec

from .base import ModelBackend

__all__ = ["make_backend"]


def make_backend(spec: str, **options: Any) -> ModelBackend:
    """Create a backend from a model spec.

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
    parsed = parse_model_spec(spec)
    fields = parsed.fields()
    if parsed.kind == "openai":
        from .openai_compat import OpenAIBackend, OpenAIBackendConfig

        return OpenAIBackend(OpenAIBackendConfig(**fields, **options))
    if parsed.kind == "hf":
        from .hf import TransformersBackend, TransformersBackendConfig

        return TransformersBackend(TransformersBackendConfig(**fields, **options))
    from .vllm_offline import VLLMBackend, VLLMBackendConfig

    return VLLMBackend(VLLMBackendConfig(**fields, **options))
