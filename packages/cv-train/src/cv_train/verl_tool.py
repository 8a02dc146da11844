"""verl users keep verl: cv-sandbox as a verl tool, and cv-rewards as a verl reward function.

verl trains multi-turn agents with tools that implement its ``verl.tools.base_tool.BaseTool`` (verl 0.10 has
none for code execution). :class:`CodeImageTool` is one: each call runs through
:class:`cv_sandbox.ImageWorkspace` (the executor the agent, cv-train's RL environment and cv-data use), so
image lineage, the op trace and crop boxes mapped into input image 0's frame are ours, and the model is
answered in a :class:`cv_protocol.Preset`'s words. The trace facts of each trajectory go to verl's
``extra_fields``, which verl's reward loop hands to the reward function as ``extra_info``;
:func:`compute_score` turns them into a cv-rewards record and scores it. A verl recipe switches with two
settings (a full tool config: ``packages/cv-train/verl/code_image_tool.yaml``)::

    actor_rollout_ref.rollout.multi_turn.tool_config_path=packages/cv-train/verl/code_image_tool.yaml
    reward.custom_reward_function.path=pkg://cv_train.verl_tool reward.custom_reward_function.name=compute_score

verl is not a dependency of cv-train (it pins transformers below the version this workspace uses): install
it in the training environment. Nothing here imports verl until verl itself asks for
:class:`CodeImageTool` (``get_tool_class`` reads the attribute), so ``import cv_train`` never needs it.

Per-trajectory state: verl creates and releases a tool instance around every call, and hands each call the
trajectory's ``AgentData`` (``execute(..., agent_data=...)``, whose docstring invites tools to keep session
data there). The trajectory's workspace lives on that object (never exported), its trace under
``extra_fields["cv_tool_calls"]``. The input images are ``create_kwargs["image"]`` when the dataset passes
them (the release's layout: full resolution), else the images the model was shown
(``agent_data.image_data`` at the first call). Calls of one turn run one at a time, in call order, so image
indices agree with the order in which verl appends the outputs to the conversation.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, fields
from typing import Any
from uuid import uuid4

from cv_protocol import TOOL_NAME, ParseError, Preset, get_preset, parse_tool_arguments
from cv_sandbox import ImageWorkspace, SandboxConfig, ToolCall, shared_sandbox
from PIL import Image

# CodeImageTool is public too, built on first access (it needs verl): not in __all__, so that
# `from cv_train.verl_tool import *` does not import verl.
__all__ = [
    "INPUT_SIZE_KEY",
    "TRACE_KEY",
    "VerlToolConfig",
    "VerlToolCore",
    "compute_score",
    "model_text",
    "verl_tool_class",
]

#: ``extra_fields`` key of a trajectory's tool calls (``cv_sandbox.ToolCall.to_dict()`` each, JSON-safe).
TRACE_KEY = "cv_tool_calls"
#: ``extra_fields`` key of the size ``[w, h]`` of input image 0 as the tool saw it (the frame of the boxes).
INPUT_SIZE_KEY = "cv_input_size"
# Attributes on verl's AgentData (not exported by verl, unlike extra_fields).
_WORKSPACE_ATTR = "_cv_workspace"
_LOCK_ATTR = "_cv_lock"


@dataclass
class VerlToolConfig:
    """The ``config:`` block of :class:`CodeImageTool` in a verl tool-config YAML.

    Attributes:
        type: verl's tool type; ``"native"`` (the only one verl 0.10 has).
        preset: What the model is shown (a ``cv_protocol.PRESETS`` name): tool-response texts, the code
            limit and, when the YAML gives no ``tool_schema``, the tool schema.
        timeout_s: Wall-clock limit of one call in the sandbox.
        max_images: Most images per trajectory (inputs and tool outputs); further calls are refused.
        sandbox_workers: Warm worker processes of the process's sandbox (calls of concurrent trajectories
            run in parallel up to this number).

    Example:
        >>> VerlToolConfig.from_dict({"type": "native", "preset": "release"}).preset
        'release'
    """

    type: str = "native"
    preset: str = "default"
    timeout_s: float = 10.0
    max_images: int = 32
    sandbox_workers: int = 4

    def __post_init__(self) -> None:
        if self.type != "native":
            raise ValueError(f"type={self.type!r}: cv_train.verl_tool.CodeImageTool is a native verl tool")
        get_preset(self.preset)
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s={self.timeout_s}: set a positive limit in seconds")
        if self.max_images < 2:
            raise ValueError(f"max_images={self.max_images}: set at least 2 (the input and one output)")
        if self.sandbox_workers < 1:
            raise ValueError(f"sandbox_workers={self.sandbox_workers}: set at least 1")

    @classmethod
    def from_dict(cls, config: dict[str, Any] | None) -> VerlToolConfig:
        """Read the YAML's ``config`` block; unknown keys are an error naming the known ones."""
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown} for CodeImageTool; known keys: {sorted(known)}")
        return cls(**config)


def _to_image(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes") is not None:  # a parquet image struct
        from io import BytesIO

        return Image.open(BytesIO(value["bytes"])).copy()
    if isinstance(value, str):
        return Image.open(value).copy()
    raise TypeError(f"cannot read an input image from {type(value).__name__}")


def _input_images(create_kwargs: dict[str, Any]) -> list[Image.Image] | None:
    images = create_kwargs.get("image", create_kwargs.get("images"))
    if images is None:
        return None
    return [_to_image(im) for im in (images if isinstance(images, list | tuple) else [images])]


class _Trajectory:
    """One trajectory's workspace and lock (on verl's AgentData, or on a tool instance without one)."""

    def __init__(self, images: list[Image.Image], preset: Preset, max_images: int) -> None:
        self.workspace = ImageWorkspace(list(images), max_images=max_images, preset=preset)
        self.lock = asyncio.Lock()


class VerlToolCore:
    """What :class:`CodeImageTool` does, apart from verl's base class (tested without verl).

    Args:
        config: The tool's ``config`` block (:class:`VerlToolConfig`).
        sandbox: The sandbox (default: the process's shared one for the configuration).
    """

    def __init__(self, config: dict[str, Any] | None, sandbox: Any = None) -> None:
        self.cv_config = VerlToolConfig.from_dict(config)
        self.preset = get_preset(self.cv_config.preset)
        self._sandbox = sandbox
        self._instances: dict[str, dict[str, Any]] = {}

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            cfg = self.cv_config
            self._sandbox = shared_sandbox(
                SandboxConfig(timeout_s=cfg.timeout_s, workers=cfg.sandbox_workers)
            )
        return self._sandbox

    def new_instance(self, instance_id: str | None, kwargs: dict[str, Any]) -> str:
        instance_id = instance_id or uuid4().hex
        create_kwargs = dict(kwargs.get("create_kwargs") or {})
        create_kwargs.update({k: v for k, v in kwargs.items() if k != "create_kwargs"})
        self._instances[instance_id] = {"inputs": _input_images(create_kwargs), "trajectory": None}
        return instance_id

    def drop_instance(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    def _trajectory(self, instance_id: str, agent_data: Any) -> _Trajectory:
        inst = self._instances.get(instance_id)
        if inst is None:
            raise KeyError(f"unknown tool instance {instance_id!r}: call create() first")
        holder = agent_data
        if holder is None:
            # A loop that passes no AgentData: state lives as long as the instance (one call in verl).
            if inst["trajectory"] is None:
                if inst["inputs"] is None:
                    raise ValueError(
                        "no input images: pass create_kwargs={'image': [...]} in tools_kwargs, or run under "
                        "verl's tool agent loop (which passes agent_data)"
                    )
                inst["trajectory"] = _Trajectory(inst["inputs"], self.preset, self.cv_config.max_images)
            return inst["trajectory"]
        traj = getattr(holder, _WORKSPACE_ATTR, None)
        if traj is None:
            inputs = inst["inputs"]
            if inputs is None:  # before any tool output, the conversation's images are the inputs
                inputs = [_to_image(im) for im in (getattr(holder, "image_data", None) or [])]
            if not inputs:
                raise ValueError("the trajectory has no image for the tool to work on")
            traj = _Trajectory(inputs, self.preset, self.cv_config.max_images)
            setattr(holder, _WORKSPACE_ATTR, traj)
            extra = getattr(holder, "extra_fields", None)
            if isinstance(extra, dict):
                extra[TRACE_KEY] = []
                extra[INPUT_SIZE_KEY] = list(inputs[0].size)
        return traj

    async def call(
        self, instance_id: str, parameters: dict[str, Any], agent_data: Any = None
    ) -> tuple[str, Image.Image | None, dict[str, Any]]:
        """Run one call: ``(text for the model, new image or None, metrics)``.

        ``parameters`` (verl's decoded arguments) are read by :func:`cv_protocol.parse_tool_arguments`, the
        rules of every other path's parser, so the same sloppy arguments are repaired and the same mistakes
        answered.
        """
        traj = self._trajectory(instance_id, agent_data)
        extra = getattr(agent_data, "extra_fields", None)
        trace = extra.setdefault(TRACE_KEY, []) if isinstance(extra, dict) else []
        turn = max(int(getattr(agent_data, "assistant_turns", 1)) - 1, 0) if agent_data is not None else 0
        call = parse_tool_arguments(parameters)
        if isinstance(call, ParseError):
            # recorded as the agent records an unreadable call: a failed tool turn
            trace.append(
                ToolCall(turn=turn, code="", ok=False, error=call.message, error_kind="parse").to_dict()
            )
            return self.preset.parse_error_text(call), None, {"ok": False, "error_kind": "parse", "ops": []}
        from cv_agent import call_notes

        async with traj.lock:  # one call at a time per trajectory, in call order
            out = await traj.workspace.aexecute(
                self.sandbox, call.code, call.description, call.image_index, turn=turn
            )
        out.call.warnings = list(call.warnings)
        trace.append(out.call.to_dict())
        text = "\n".join([out.text, *call_notes(call, self.preset)])
        metrics = {"ok": out.call.ok, "error_kind": out.call.error_kind, "ops": out.call.op_names}
        return text, out.image, metrics


def verl_tool_class() -> type:
    """Build :class:`CodeImageTool` on verl's ``BaseTool`` (imports verl; an install hint when it is missing).

    Example:
        >>> verl_tool_class()  # doctest: +SKIP
        <class 'cv_train.verl_tool.CodeImageTool'>
    """
    try:
        from verl.tools.base_tool import BaseTool
        from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse
    except ImportError as e:
        raise ImportError(
            "cv_train.verl_tool.CodeImageTool is a verl tool: install verl in this environment (pip install "
            f"verl); importing it failed: {e}"
        ) from e

    class CodeImageTool(BaseTool):
        """verl ``BaseTool`` running ``code_image_tool`` calls through cv-sandbox (see the module docstring).

        Args:
            config: The YAML's ``config`` block (:class:`VerlToolConfig`).
            tool_schema: The YAML's ``tool_schema``; ``None`` uses the preset's (what the model is shown).
        """

        def __init__(self, config: dict[str, Any], tool_schema: Any = None) -> None:
            self.core = VerlToolCore(config)
            schema = tool_schema
            if schema is None:
                schema = OpenAIFunctionToolSchema.model_validate(self.core.preset.tool_schema())
            elif schema.function.name != TOOL_NAME:
                raise ValueError(
                    f"tool_schema names {schema.function.name!r}; the tool is {TOOL_NAME!r} (the name the "
                    "parser and the rewards read)"
                )
            super().__init__(config, schema)

        async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, Any]:
            return self.core.new_instance(instance_id, kwargs), ToolResponse()

        async def execute(
            self, instance_id: str, parameters: dict[str, Any], **kwargs: Any
        ) -> tuple[Any, float, dict]:
            text, image, metrics = await self.core.call(instance_id, parameters, kwargs.get("agent_data"))
            # As verl's multimodal tools answer: the image, then the text (verl renders them in that order).
            response = (
                ToolResponse(image=[image], text=text) if image is not None else ToolResponse(text=text)
            )
            return response, 0.0, metrics

        async def release(self, instance_id: str, **kwargs: Any) -> None:
            self.core.drop_instance(instance_id)

    CodeImageTool.__module__ = __name__
    return CodeImageTool


def __getattr__(name: str) -> Any:
    # verl's get_tool_class does getattr(module, "CodeImageTool"): build the class (importing verl) only then.
    if name == "CodeImageTool":
        cls = verl_tool_class()
        globals()["CodeImageTool"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------- reward
# verl decodes a response with skip_special_tokens=True: a tool turn is left as "user\n<tool_response>...
# </tool_response>\nassistant\n" between the model's turns (Qwen templates); the model wrote none of it.
_TOOL_TURN = re.compile(r"\n?(?:user|tool)\n<tool_response>.*?</tool_response>\n?(?:assistant\n)?", re.DOTALL)


def model_text(solution_str: str) -> str:
    """The model-written text of a verl response: tool turns and their role lines removed.

    Example:
        >>> model_text("<think>a</think>\\nuser\\n<tool_response>\\nok\\n</tool_response>\\nassistant\\n<answer>B</answer>")
        '<think>a</think><answer>B</answer>'
    """
    return _TOOL_TURN.sub("", solution_str)


def _scaled_bbox(extra_info: dict[str, Any]) -> list[float] | None:
    bbox = extra_info.get("bbox")
    if bbox is None:
        bbox = extra_info.get("bbox_2d")  # the release's column
    if bbox is None or len(bbox) != 4:
        return None
    box = [float(v) for v in bbox]
    seen, size = extra_info.get(INPUT_SIZE_KEY), extra_info.get("image_size")
    if seen and size and list(seen) != list(size):
        # the tool worked on the model's resized copy: bring the item's box into that frame
        sx, sy = seen[0] / size[0], seen[1] / size[1]
        box = [box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy]
    return box


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    *,
    variant: str = "paper",
    matcher: str = "default",
    format_check: str = "default",
    **_: Any,
) -> dict[str, Any]:
    """verl reward function (``reward.custom_reward_function``): cv-rewards' process reward of one rollout.

    The rollout's tool calls are the :class:`CodeImageTool` trace that verl's reward loop merges into
    ``extra_info`` (``extra_info["cv_tool_calls"]``); the item's labels are ``ground_truth`` and
    ``extra_info``'s ``transform``, ``bbox`` (or the release's ``bbox_2d``; with ``image_size`` = ``[w, h]``
    of the stored image it is scaled into the frame the tool saw), ``choices``, ``task_type``, ``id``,
    ``question``. verl scores rollouts one at a time, so group terms are not available: this is
    :func:`cv_rewards.score_rollout`. ``variant``, ``matcher`` and ``format_check`` come from
    ``reward.custom_reward_function.reward_kwargs`` (``ProcessRewardConfig``).

    Returns:
        ``{"score": total, "acc": 0/1, "<component>": value, ...}`` with the same keys for every rollout
        of a configuration (verl logs them as lists).

    Example:
        >>> r = compute_score("doc", "<think>x</think><answer>A</answer>", "A", {"transform": []})
        >>> r["acc"], round(r["score"], 2)
        (1.0, 1.1)
    """
    from cv_rewards import ProcessRewardConfig, score_rollout

    from cv_train.rewards import trace_record

    info = dict(extra_info or {})
    answer = ground_truth.get("ground_truth") if isinstance(ground_truth, dict) else ground_truth
    row = {
        "answer": "" if answer is None else str(answer),
        "transform": info.get("transform") or [],
        "bbox": _scaled_bbox(info),
        "choices": info.get("choices"),
        "task_type": info.get("task_type") or "general",
        "item_id": info.get("id", ""),
        "question": info.get("question") or "",
    }
    if isinstance(row["transform"], str):  # some layouts store it JSON-encoded
        row["transform"] = json.loads(row["transform"])
    record = trace_record(model_text(solution_str), info.get(TRACE_KEY) or [], row)
    config = ProcessRewardConfig(variant=variant, matcher=matcher, format_check=format_check)
    b = score_rollout(record, config)
    return {
        "score": b.total,
        "acc": float(b.correct),
        **{k: float(v) for k, v in sorted(b.components.items())},
    }
