"""vLLM offline backend: an in-process ``vllm.LLM`` fed by a micro-batcher (extra ``cv-agent[vllm]``)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from ._prompt import pick_chat_template, render_prompt
from .base import BackendError, Generation, ModelBackend


@dataclass
class VLLMBackendConfig:
    """Settings of :class:`VLLMBackend`.

    Attributes:
        path: Local model directory.
        chat_template: ``"auto"`` (ours for Qwen2.5-VL/Qwen2-VL, whose stock template has no tools; the
            model's otherwise), ``"model"``, a family name or a ``.jinja`` path.
        pass_tools: Render the tool schemas into the system turn: those the agent passes (its preset's),
            else the default preset's. ``False``: never.
        max_new_tokens: Default generation length.
        temperature: Sampling temperature (0 = greedy).
        top_p: Nucleus sampling.
        seed: Per-request seed (``None``: unseeded).
        max_batch: Most prompts handed to one ``LLM.generate`` call.
        batch_wait_s: How long the batcher waits for more requests before launching a batch.
        max_images_per_prompt: vLLM ``limit_mm_per_prompt`` for images (turns x images per turn).
        llm_kwargs: Extra ``vllm.LLM`` arguments (``tensor_parallel_size``, ``gpu_memory_utilization``,
            ``max_model_len``, ...).
    """

    path: str
    chat_template: str = "auto"
    pass_tools: bool = True
    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    max_batch: int = 256
    batch_wait_s: float = 0.005
    max_images_per_prompt: int = 16
    llm_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("set path to a local model directory")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {self.max_batch}")
        if self.batch_wait_s < 0:
            raise ValueError(f"batch_wait_s must be >= 0, got {self.batch_wait_s}")
        if self.max_images_per_prompt < 1:
            raise ValueError(f"max_images_per_prompt must be >= 1, got {self.max_images_per_prompt}")


@dataclass
class _Request:
    prompt: dict[str, Any]
    params: Any
    future: asyncio.Future[Generation]


class VLLMBackend(ModelBackend):
    """Offline vLLM engine. Concurrent episodes' requests are gathered into batches for ``LLM.generate``.

    Prompts are rendered with the chat template to text holding ONE ``<|image_pad|>`` per image (vLLM
    expands them itself; an already expanded prompt would be expanded twice, trl#6294), and the count of
    placeholder runs is checked against the number of images.

    Args:
        config: Settings.
        llm: An already built ``vllm.LLM`` (or a compatible fake in tests); built from ``config`` if omitted.
        tokenizer: Object with ``apply_chat_template`` (default: ``AutoTokenizer`` of ``config.path``).
        sampling_params_cls: ``vllm.SamplingParams`` or a stand-in (tests).

    Example:
        >>> backend = VLLMBackend(VLLMBackendConfig("/models/qwen2.5-vl-7b"))  # doctest: +SKIP
    """

    name = "vllm"

    def __init__(
        self,
        config: VLLMBackendConfig,
        *,
        llm: Any = None,
        tokenizer: Any = None,
        sampling_params_cls: Any = None,
    ) -> None:
        self.config = config
        self._llm = llm
        self._tokenizer = tokenizer
        self._sp_cls = sampling_params_cls
        self._template: str | None = None
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cv-agent-vllm")
        self.batch_sizes: list[int] = []

    def _ensure_engine(self) -> None:
        if self._llm is None or self._sp_cls is None:
            try:
                import vllm
            except ImportError as e:
                raise ImportError("the vLLM backend needs vllm: pip install cv-agent[vllm]") from e
            if self._sp_cls is None:
                self._sp_cls = vllm.SamplingParams
            if self._llm is None:
                kwargs = {
                    "limit_mm_per_prompt": {"image": self.config.max_images_per_prompt},
                    **self.config.llm_kwargs,
                }
                self._llm = vllm.LLM(model=self.config.path, **kwargs)
        if self._tokenizer is None:
            get = getattr(self._llm, "get_tokenizer", None)
            if get is not None:
                self._tokenizer = get()
            else:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(self.config.path)
        if self._template is None:
            self._template = self._pick_template()

    def _pick_template(self) -> str:
        # "auto": the model's own template if it renders tool calls, else ours (Qwen2.5-VL format).
        own = getattr(self._tokenizer, "chat_template", None)
        return pick_chat_template(
            self.config.chat_template, own, model=self.config.path, auto_family="qwen2_5_vl"
        )

    def build_prompt(
        self,
        messages: list[dict[str, Any]],
        images: list[Image.Image],
        tools: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The vLLM prompt dict: ``{"prompt": text, "multi_modal_data": {"image": [...]}}`` (``tools``: as
        :meth:`complete`)."""
        self._ensure_engine()
        text, ordered = render_prompt(
            self._tokenizer.apply_chat_template,
            self._template,
            messages,
            images,
            pass_tools=self.config.pass_tools,
            tools=tools,
        )
        if "<|image_pad|><|image_pad|>" in text:
            raise BackendError(
                "prompt already has expanded image tokens; vLLM would expand them again (trl#6294)"
            )
        prompt: dict[str, Any] = {"prompt": text}
        if ordered:
            prompt["multi_modal_data"] = {"image": [im.convert("RGB") for im in ordered]}
        return prompt

    def sampling_params(self, max_new_tokens: int | None = None, temperature: float | None = None) -> Any:
        """``SamplingParams`` for one request."""
        self._ensure_engine()
        kwargs: dict[str, Any] = {
            "max_tokens": max_new_tokens or self.config.max_new_tokens,
            "temperature": self.config.temperature if temperature is None else temperature,
            "top_p": self.config.top_p,
        }
        if self.config.seed is not None:
            kwargs["seed"] = self.config.seed
        return self._sp_cls(**kwargs)

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
        await loop.run_in_executor(self._executor, self._ensure_engine)
        prompt = self.build_prompt(messages, images, tools)
        params = self.sampling_params(max_new_tokens, temperature)
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._batch_loop(self._queue))
        fut: asyncio.Future[Generation] = loop.create_future()
        await self._queue.put(_Request(prompt, params, fut))
        return await fut

    async def _batch_loop(self, queue: asyncio.Queue[_Request]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.config.batch_wait_s
            while len(batch) < self.config.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), timeout))
                except TimeoutError:
                    break
            self.batch_sizes.append(len(batch))
            try:
                outputs = await loop.run_in_executor(
                    self._executor,
                    lambda b=batch: self._llm.generate(
                        [r.prompt for r in b], [r.params for r in b], use_tqdm=False
                    ),
                )
                if len(outputs) != len(batch):
                    raise BackendError(f"vLLM returned {len(outputs)} outputs for {len(batch)} prompts")
            except Exception as e:  # noqa: BLE001 - fail the waiting requests, keep the batcher alive
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(
                            e if isinstance(e, BackendError) else BackendError(f"vLLM generate failed: {e}")
                        )
                continue
            for r, out in zip(batch, outputs, strict=True):
                if r.future.done():
                    continue
                best = out.outputs[0]
                r.future.set_result(
                    Generation(
                        text=best.text,
                        prompt_tokens=len(out.prompt_token_ids)
                        if getattr(out, "prompt_token_ids", None) is not None
                        else None,
                        completion_tokens=len(best.token_ids)
                        if getattr(best, "token_ids", None) is not None
                        else None,
                        finish_reason=getattr(best, "finish_reason", None),
                    )
                )

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._executor.shutdown(wait=False, cancel_futures=True)
