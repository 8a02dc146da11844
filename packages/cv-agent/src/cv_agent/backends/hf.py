"""transformers backend: a local ``from_pretrained`` Qwen-VL model, generating in a worker thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ._prompt import pick_chat_template, render_prompt
from .base import BackendError, Generation, ModelBackend

_FAMILY_OF_MODEL_TYPE = {
    "qwen2_vl": "qwen2_5_vl",
    "qwen2_5_vl": "qwen2_5_vl",
    "qwen3_vl": "qwen3_vl",
    "qwen3_vl_moe": "qwen3_vl",
}


def _require_hf() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the transformers backend needs torch and transformers: pip install cv-agent[hf]"
        ) from e


@dataclass
class TransformersBackendConfig:
    """Settings of :class:`TransformersBackend`.

    Attributes:
        path: Local model directory (or hub id, if your environment can download) for ``from_pretrained``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when available).
        dtype: ``"auto"`` (bfloat16 on CUDA, float32 on CPU), ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        chat_template: ``"auto"`` (the model's own template if it renders tool calls, else ours for its
            family), ``"model"`` (always the model's), a family name (``"qwen2_5_vl"``/``"qwen3_vl"``) or a
            path to a ``.jinja`` file.
        pass_tools: Render the tool schemas into the system turn (hermes ``# Tools`` block): those the agent
            passes (its preset's), else the default preset's. ``False``: never.
        max_new_tokens: Default generation length.
        temperature: ``0`` is greedy decoding; ``> 0`` samples.
        top_p: Nucleus sampling when sampling.
        seed: Seed set before each sampled generation (``None``: do not touch the global RNG).
        attn_implementation: Passed to ``from_pretrained`` (``None``: library default).
        generate_kwargs: Extra keyword arguments for ``model.generate`` (e.g. ``logits_processor``).
    """

    path: str
    device: str = "auto"
    dtype: str = "auto"
    chat_template: str = "auto"
    pass_tools: bool = True
    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    attn_implementation: str | None = None
    generate_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("set path to a local model directory")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


class TransformersBackend(ModelBackend):
    """Generate with ``AutoModelForImageTextToText`` + ``AutoProcessor``.

    Generation runs in a dedicated worker thread (one at a time: one model, one device), so the event loop,
    and with it every other episode's sandbox work, keeps running while the model generates.

    Example:
        >>> backend = TransformersBackend(TransformersBackendConfig("/models/tiny"))  # doctest: +SKIP
    """

    name = "hf"

    def __init__(self, config: TransformersBackendConfig) -> None:
        _require_hf()
        self.config = config
        self._model: Any = None
        self._processor: Any = None
        self._template: str | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cv-agent-hf")

    # -- loading ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._load_lock:
            if self._model is not None:
                return
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

            device = self.config.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
                self.config.dtype
            )
            if dtype is None:
                dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            kwargs: dict[str, Any] = {"dtype": dtype}
            if self.config.attn_implementation:
                kwargs["attn_implementation"] = self.config.attn_implementation
            try:
                processor = AutoProcessor.from_pretrained(self.config.path)
                model = AutoModelForImageTextToText.from_pretrained(self.config.path, **kwargs).to(device)
            except OSError as e:
                raise BackendError(f"could not load model from {self.config.path!r}: {e}") from e
            model.eval()
            self._template = self._pick_template(processor, getattr(model.config, "model_type", ""))
            self._processor, self._model = processor, model

    def _pick_template(self, processor: Any, model_type: str) -> str:
        own = getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None)
        return pick_chat_template(
            self.config.chat_template,
            own,
            model=self.config.path,
            auto_family=_FAMILY_OF_MODEL_TYPE.get(model_type),
            model_type=model_type,
        )

    # -- prompting ---------------------------------------------------------------------------------------
    def build_prompt(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        tools: list[dict[str, Any]] | None = None,
    ) -> tuple[str, list[Image.Image]]:
        """The rendered prompt text and the images in placeholder order (``tools``: as :meth:`complete`)."""
        self._load()
        return render_prompt(
            self._processor.apply_chat_template,
            self._template,
            messages,
            images,
            pass_tools=self.config.pass_tools,
            tools=tools,
        )

    def _generate_sync(
        self, text: str, ordered: list[Image.Image], max_new_tokens: int, temperature: float
    ) -> Generation:
        import torch

        proc, model = self._processor, self._model
        inputs = proc(text=[text], images=ordered or None, return_tensors="pt").to(model.device)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, **self.config.generate_kwargs}
        if temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=temperature, top_p=self.config.top_p)
            if self.config.seed is not None:
                torch.manual_seed(self.config.seed)
        else:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(**inputs, **gen_kwargs)
        n_prompt = inputs["input_ids"].shape[1]
        new = out[0, n_prompt:]
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        finish = "stop" if len(new) and int(new[-1]) in eos_ids else "length"
        reply = proc.decode(new, skip_special_tokens=True)
        return Generation(
            text=reply, prompt_tokens=int(n_prompt), completion_tokens=int(len(new)), finish_reason=finish
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
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)
        text, ordered = self.build_prompt(messages, images, tools)
        return await loop.run_in_executor(
            self._executor,
            self._generate_sync,
            text,
            ordered,
            max_new_tokens or self.config.max_new_tokens,
            self.config.temperature if temperature is None else temperature,
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None
        self._processor = None
