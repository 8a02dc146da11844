"""Model specs: one string names a model wherever one is asked for (agent, benchmark, judge, teacher).

``openai:URL#MODEL`` is any OpenAI-compatible chat endpoint (``openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct``),
``hf:PATH`` a local or hub checkpoint run with transformers, ``vllm:PATH`` the same with vLLM's offline engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MODEL_KINDS", "ModelSpec", "parse_model_spec"]

#: Spec kinds, by prefix.
MODEL_KINDS: tuple[str, ...] = ("openai", "hf", "vllm")

_FORMS = {"openai": "openai:URL#MODEL", "hf": "hf:PATH", "vllm": "vllm:PATH"}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        kind: One of :data:`MODEL_KINDS`.
        base_url: The endpoint root of an ``openai`` spec, e.g. ``http://localhost:8000/v1`` (else ``""``).
        model: The model name sent to an ``openai`` endpoint (else ``""``).
        path: The checkpoint of an ``hf`` or ``vllm`` spec (else ``""``).
    """

    kind: str
    base_url: str = ""
    model: str = ""
    path: str = ""

    def __str__(self) -> str:
        return f"openai:{self.base_url}#{self.model}" if self.kind == "openai" else f"{self.kind}:{self.path}"

    def fields(self) -> dict[str, str]:
        """The fields that identify the model: ``base_url`` and ``model``, or ``path``.

        Example:
            >>> parse_model_spec("hf:/models/tiny").fields()
            {'path': '/models/tiny'}
        """
        if self.kind == "openai":
            return {"base_url": self.base_url, "model": self.model}
        return {"path": self.path}


def parse_model_spec(spec: str, *, kinds: Sequence[str] = MODEL_KINDS) -> ModelSpec:
    """Parse ``openai:URL#MODEL``, ``hf:PATH`` or ``vllm:PATH``; bad input raises a one-line ``ValueError``.

    Args:
        spec: The spec string.
        kinds: The kinds the caller accepts (a judge, for instance, needs an ``openai`` endpoint).

    Example:
        >>> parse_model_spec("openai:http://localhost:8000/v1#Qwen/Qwen2.5-VL-7B-Instruct")
        ModelSpec(kind='openai', base_url='http://localhost:8000/v1', model='Qwen/Qwen2.5-VL-7B-Instruct', path='')
        >>> parse_model_spec("vllm:/ckpt").path
        '/ckpt'
    """
    unknown = [k for k in kinds if k not in _FORMS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {list(MODEL_KINDS)}, got {list(kinds)}")
    forms = " or ".join(repr(_FORMS[k]) for k in kinds)
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"bad model spec {spec!r}; use {forms}")
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind in ("http", "https") and "openai" in kinds:
        raise ValueError(f"bad model spec {spec!r}: an endpoint is written 'openai:{spec}'")
    if kind not in kinds:
        raise ValueError(f"bad model spec {spec!r}: unknown kind {kind!r}; use {forms}")
    if kind == "openai":
        if "#" not in rest:
            raise ValueError(
                f"bad model spec {spec!r}: an openai spec needs '#MODEL', e.g. openai:http://host:8000/v1#my-model"
            )
        url, model = rest.rsplit("#", 1)
        if not url.startswith(("http://", "https://")) or not model:
            raise ValueError(f"bad model spec {spec!r}: expected openai:http(s)://HOST[:PORT]/v1#MODEL")
        return ModelSpec("openai", base_url=url, model=model)
    if not rest:
        raise ValueError(f"bad model spec {spec!r}: give a model path after '{kind}:'")
    return ModelSpec(kind, path=rest)
