"""The multi-turn code-as-tool loop: generate → parse → execute in the sandbox → tool message → repeat."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cv_protocol import (
    DEFAULT_PRESET,
    ParsedCall,
    ParseError,
    Preset,
    extract_answer,
    get_preset,
    parse_tool_calls,
)
from cv_sandbox import ImageWorkspace, Sandbox, ToolCall
from PIL import Image

from .backends.base import Generation, ModelBackend, takes_tools
from .images import ImageLike, model_copy, to_pil
from .trajectory import Trajectory


@dataclass
class AgentConfig:
    """Settings of :class:`Agent`.

    Attributes:
        max_turns: Most assistant turns per episode (the paper's RL uses 12).
        max_new_tokens: Most tokens per assistant turn.
        token_budget: Most generated tokens per episode, summed over turns; the last turn is capped to
            what is left. ``None``: unlimited.
        max_pixels: Pixel budget of each image the model sees (reference RL: 8192·28·28).
        min_pixels: Lower pixel bound of model images (Qwen default 56·56).
        resize_factor: Side multiple of model images: 28 for Qwen2.5-VL, 32 for Qwen3-VL.
        preset: What the model is shown (:class:`cv_protocol.Preset` or a registry name such as
            ``"default"`` or ``"release"``): the system prompt, the tool schema the backend renders, the
            tool-response and parse-error texts and the code length limit enforced before a call runs. Given
            as a name, it is resolved to the :class:`~cv_protocol.Preset` on construction.
        system_prompt: Replaces the preset's system message; ``None`` keeps the preset's, ``""`` sends none.
        temperature: Sampling temperature passed to the backend; ``None`` uses the backend's default.
        max_images: Most images per episode (inputs + tool outputs); further tool calls are refused with an
            error message, so prompts cannot grow without bound.
    """

    max_turns: int = 12
    max_new_tokens: int = 2048
    token_budget: int | None = 16384
    max_pixels: int = 8192 * 28 * 28
    min_pixels: int = 56 * 56
    resize_factor: int = 28
    preset: Preset | str = "default"
    system_prompt: str | None = None
    temperature: float | None = None
    max_images: int = 32

    def __post_init__(self) -> None:
        self.preset = get_preset(self.preset)
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ValueError(f"token_budget must be >= 1 or None, got {self.token_budget}")
        if self.resize_factor < 1:
            raise ValueError(f"resize_factor must be >= 1, got {self.resize_factor}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"need 0 < min_pixels <= max_pixels, got {self.min_pixels} and {self.max_pixels}"
            )
        if self.max_pixels < self.resize_factor**2:
            raise ValueError(f"max_pixels must be at least resize_factor**2 = {self.resize_factor**2}")
        if self.temperature is not None and self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 or None, got {self.temperature}")
        if self.max_images < 1:
            raise ValueError(f"max_images must be >= 1, got {self.max_images}")


class _Episode:
    """Mutable per-episode state; the Trajectory is its record."""

    def __init__(self, agent: Agent, traj: Trajectory) -> None:
        self.agent = agent
        self.traj = traj
        self.model_images: list[Image.Image] = []
        # Tool outputs and their lineage go straight into the trajectory's own lists.
        self.workspace = ImageWorkspace(
            traj.images,
            traj.image_parents,
            traj.image_to_parent,
            max_images=agent.config.max_images,
            preset=agent.config.preset,
        )

    async def add_model_copy(self, image: Image.Image) -> None:
        cfg = self.agent.config
        copy = await model_copy(
            image, factor=cfg.resize_factor, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels
        )
        self.model_images.append(copy)
        if len(self.traj.model_image_sizes) < len(self.model_images):
            self.traj.model_image_sizes.append(copy.size)


class Agent:
    """Runs episodes of the code-as-tool loop against a model backend and a sandbox.

    Args:
        backend: Any :class:`~cv_agent.backends.ModelBackend`.
        config: Loop settings.
        sandbox: Executes the code; a default :class:`cv_sandbox.Sandbox` is created (and closed by
            :meth:`close`) when omitted.

    Example:
        >>> from cv_agent.testing import ScriptedPolicy
        >>> agent = Agent(ScriptedPolicy(["<think>easy</think><answer>A</answer>"]))
        >>> traj = agent.run(Image.new("RGB", (64, 64)), "Which?")
        >>> traj.answer, traj.stop_reason
        ('A', 'answer')
    """

    def __init__(
        self, backend: ModelBackend, config: AgentConfig | None = None, sandbox: Sandbox | None = None
    ) -> None:
        self.backend = backend
        self.config = config or AgentConfig()
        self._owns_sandbox = sandbox is None
        self._sandbox = sandbox

    @property
    def preset(self) -> Preset:
        """The preset of this agent's episodes (``config.preset``)."""
        return get_preset(self.config.preset)

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox; the default one is started on first use (its warm workers cost a moment)."""
        if self._sandbox is None:
            self._sandbox = Sandbox()
        return self._sandbox

    # -- public API ------------------------------------------------------------------------------------
    async def arun(
        self,
        images: ImageLike | Sequence[ImageLike],
        question: str,
        *,
        item_id: str = "",
        meta: dict[str, Any] | None = None,
    ) -> Trajectory:
        """Run one episode to completion.

        Args:
            images: The input image or images (PIL, uint8 arrays or paths); image 0 is the main input.
            question: The user question.
            item_id: Caller's id, kept in the trajectory.
            meta: JSON-serialisable extra data kept in the trajectory.

        Returns:
            The finished :class:`Trajectory`; backend failures end it with ``stop_reason="error"``.

        Example:
            >>> traj = await agent.arun(img, "What does the sign say?", item_id="q1")  # doctest: +SKIP
        """
        if not isinstance(question, str):
            raise TypeError(f"question must be a string, got {type(question).__name__}")
        single = isinstance(images, (Image.Image, str, os.PathLike)) or _is_array(images)
        imgs = [images] if single else list(images)  # type: ignore[arg-type]
        if not imgs:
            raise ValueError("give at least one input image")
        full = [to_pil(im) for im in imgs]
        traj = Trajectory(
            item_id=item_id,
            question=question,
            images=full,
            n_input_images=len(full),
            image_parents=[None] * len(full),
            image_to_parent=[None] * len(full),
            meta=dict(meta or {}),
        )
        system = self.config.system_prompt
        if system is None:
            system = self.preset.system_prompt
        if system:
            traj.messages.append({"role": "system", "content": system})
        content: list[dict[str, Any]] = [{"type": "image", "image_index": k} for k in range(len(full))]
        content.append({"type": "text", "text": question})
        traj.messages.append({"role": "user", "content": content})
        return await self._loop(traj)

    async def acontinue(self, trajectory: Trajectory) -> Trajectory:
        """Resume an unfinished trajectory (e.g. loaded from disk) with this agent's limits.

        A trajectory that stopped on ``max_turns``, ``token_budget`` or ``error`` (or never stopped) goes on
        from its last message exactly as if the episode had never been interrupted; one that ended with an
        answer or without a tool call is returned unchanged.

        Example:
            >>> traj = await Agent(backend, AgentConfig(max_turns=12)).acontinue(Trajectory.load("runs", item_id="q1"))  # doctest: +SKIP
        """
        if trajectory.stop_reason in ("answer", "no_tool_call"):
            return trajectory
        trajectory.stop_reason = None
        trajectory.error = None
        return await self._loop(trajectory)

    def run(
        self,
        images: ImageLike | Sequence[ImageLike],
        question: str,
        *,
        item_id: str = "",
        meta: dict[str, Any] | None = None,
    ) -> Trajectory:
        """Synchronous :meth:`arun` (not inside a running event loop)."""
        return asyncio.run(self.arun(images, question, item_id=item_id, meta=meta))

    def close(self) -> None:
        """Close the sandbox if the agent created it."""
        if self._owns_sandbox and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    # -- the loop --------------------------------------------------------------------------------------
    async def _loop(self, traj: Trajectory) -> Trajectory:
        cfg = self.config
        ep = _Episode(self, traj)
        t_start = time.perf_counter()
        tim = traj.timings
        for key in ("total_s", "model_s", "sandbox_s", "overhead_s"):
            tim.setdefault(key, 0.0)
        use = traj.usage
        for key in ("prompt_tokens", "completion_tokens", "estimated"):
            use.setdefault(key, 0)
        for im in traj.images[len(ep.model_images) :]:
            await ep.add_model_copy(im)
        model_s = sandbox_s = 0.0
        # A backend written before presets (complete() without ``tools``) is called as it was.
        tools = {"tools": self.preset.tools()} if takes_tools(self.backend) else {}
        try:
            while traj.stop_reason is None:
                if traj.turns >= cfg.max_turns:
                    traj.stop_reason = "max_turns"
                    break
                max_new = cfg.max_new_tokens
                if cfg.token_budget is not None:
                    left = cfg.token_budget - use["completion_tokens"]
                    if left <= 0:
                        traj.stop_reason = "token_budget"
                        break
                    max_new = min(max_new, left)
                t0 = time.perf_counter()
                try:
                    gen = await self.backend.complete(
                        traj.messages,
                        ep.model_images,
                        max_new_tokens=max_new,
                        temperature=cfg.temperature,
                        **tools,
                    )
                except Exception as e:  # noqa: BLE001 - any backend failure ends the episode, recorded
                    model_s += time.perf_counter() - t0
                    traj.stop_reason = "error"
                    traj.error = f"{type(e).__name__}: {e}"
                    break
                model_s += time.perf_counter() - t0
                if not isinstance(gen, Generation):
                    gen = Generation(text=str(gen))
                self._account(traj, gen)
                text = gen.text
                traj.messages.append({"role": "assistant", "content": text})
                traj.final_text = text if not traj.final_text else traj.final_text + "\n" + text
                turn = traj.turns
                traj.turns += 1
                parsed = parse_tool_calls(text)
                answer = extract_answer(text)
                if isinstance(parsed, ParsedCall):
                    sandbox_s += await self._execute(ep, turn, parsed)
                elif answer is not None:
                    traj.answer = answer
                    traj.stop_reason = "answer"
                elif parsed.kind == "no_call":
                    traj.stop_reason = "no_tool_call"
                else:
                    self._reject(traj, turn, parsed)
                if (
                    traj.stop_reason is None
                    and cfg.token_budget is not None
                    and use["completion_tokens"] >= cfg.token_budget
                ):
                    traj.stop_reason = "token_budget"
        finally:
            total = time.perf_counter() - t_start
            tim["total_s"] += total
            tim["model_s"] += model_s
            tim["sandbox_s"] += sandbox_s
            tim["overhead_s"] += max(0.0, total - model_s - sandbox_s)
        return traj

    @staticmethod
    def _account(traj: Trajectory, gen: Generation) -> None:
        use = traj.usage
        if gen.completion_tokens is None:
            use["estimated"] = 1
            use["completion_tokens"] += max(1, len(gen.text) // 4)  # ~4 characters per BPE token
        else:
            use["completion_tokens"] += gen.completion_tokens
        if gen.prompt_tokens is not None:
            use["prompt_tokens"] += gen.prompt_tokens

    def _reject(self, traj: Trajectory, turn: int, err: ParseError) -> None:
        text = self.preset.parse_error_text(err)
        traj.messages.append({"role": "tool", "content": [{"type": "text", "text": text}]})
        traj.tool_calls.append(ToolCall(turn=turn, code="", ok=False, error=err.message, error_kind="parse"))

    async def _execute(self, ep: _Episode, turn: int, call: ParsedCall) -> float:
        notes = call_notes(call, self.preset)
        out = await ep.workspace.aexecute(
            self.sandbox, call.code, call.description, call.image_index, turn=turn
        )
        out.call.warnings = list(call.warnings)
        if out.image is not None:
            await ep.add_model_copy(out.image)
        self._tool_message(ep.traj, out.index, out.text, notes)
        ep.traj.tool_calls.append(out.call)
        return out.elapsed_s

    @staticmethod
    def _tool_message(traj: Trajectory, index: int | None, text: str, notes: list[str]) -> None:
        if notes:
            text = text + "\n" + "\n".join(notes)
        content: list[dict[str, Any]] = []
        if index is not None:
            content.append({"type": "image", "image_index": index})
        content.append({"type": "text", "text": text})
        traj.messages.append({"role": "tool", "content": content})


def call_notes(call: ParsedCall, preset: Preset | str = DEFAULT_PRESET) -> list[str]:
    """What the agent adds to a call's tool response about how it read the call (extra calls ignored, a
    default image used), in ``preset``'s words (:meth:`cv_protocol.Preset.call_notes`); each note is appended
    on its own line.

    Example:
        >>> from cv_protocol import parse_tool_calls, render_tool_call
        >>> call = parse_tool_calls(render_tool_call("result = image", "noop", 0) * 2)
        >>> call_notes(call), call_notes(call, "release")
        (['Note: your reply contained 2 tool calls; only the first was executed.'], [])
    """
    defaulted = any("image_index" in w for w in call.warnings)
    return get_preset(preset).call_notes(call.n_calls, call.image_index if defaulted else None)


def _is_array(x: Any) -> bool:
    return hasattr(x, "__array_interface__") and not isinstance(x, (list, tuple))


Episode = tuple[Any, str] | tuple[Any, str, str]


def _unpack(ep: Any) -> tuple[Any, str, str, dict[str, Any] | None]:
    if isinstance(ep, tuple):
        if len(ep) == 2:
            return ep[0], ep[1], "", None
        if len(ep) == 3:
            return ep[0], ep[1], ep[2], None
        if len(ep) == 4:
            return ep[0], ep[1], ep[2], ep[3]
        raise ValueError(f"an episode tuple is (images, question[, item_id[, meta]]), got {len(ep)} fields")
    if hasattr(ep, "images") and hasattr(ep, "question"):  # cv_data.Item and friends
        return ep.images, ep.question, str(getattr(ep, "id", "")), None
    raise TypeError(f"cannot read an episode from {type(ep).__name__}; pass (images, question, item_id)")


async def run_episodes(
    agent: Agent,
    episodes: Iterable[Any],
    concurrency: int = 64,
    *,
    progress: bool = True,
    on_done: Callable[[Trajectory], None] | None = None,
) -> list[Trajectory]:
    """Run many episodes concurrently on one event loop.

    Args:
        agent: The agent (its backend's own limit also applies).
        episodes: ``(images, question, item_id)`` tuples (``item_id`` and a 4th ``meta`` dict optional) or
            objects with ``images``, ``question`` and ``id`` (e.g. ``cv_data.Item``).
        concurrency: Most episodes in flight at once.
        progress: Show a tqdm progress bar.
        on_done: Called with each trajectory as soon as it finishes (e.g. to append it to disk).

    Returns:
        Trajectories in the order of ``episodes``. Failures never raise: a backend failure (or an
        unexpected exception) yields a trajectory with ``stop_reason="error"`` and ``error`` set.

    Example:
        >>> trajs = await run_episodes(agent, [(img, "What is written?", "q1")], concurrency=8)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    items = [_unpack(ep) for ep in episodes]
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(items), desc="episodes", unit="ep", disable=not progress)

    async def one(images: Any, question: str, item_id: str, meta: dict[str, Any] | None) -> Trajectory:
        async with sem:
            try:
                traj = await agent.arun(images, question, item_id=item_id, meta=meta)
            except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
                traj = Trajectory(
                    item_id=item_id, question=question, stop_reason="error", error=f"{type(e).__name__}: {e}"
                )
            bar.update(1)
            if on_done is not None:
                on_done(traj)
            return traj

    try:
        return list(await asyncio.gather(*(one(*it) for it in items)))
    finally:
        bar.close()
