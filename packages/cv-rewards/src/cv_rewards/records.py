"""Plain records of one rollout: the final text, every tool call with its traced ops, and the item's labels.

The process reward only needs what the sandbox trace says actually ran, so the records hold op names and
crop boxes, never images. They round-trip through JSON (``to_dict``/``from_dict``), which is the line
schema of ``cv-rewards score``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OpRecord", "RolloutRecord", "ToolCallRecord"]

Box = tuple[float, float, float, float]


def _as_box(value: Any, what: str, *, sort: bool = False) -> Box | None:
    """Validate a ``[x1, y1, x2, y2]`` box (``None`` passes through); ``sort`` orders swapped corners."""
    if value is None:
        return None
    try:
        box = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be four numbers [x1, y1, x2, y2], got {value!r}") from exc
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f"{what} must be four finite numbers [x1, y1, x2, y2], got {value!r}")
    if sort:
        box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    if box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"{what} must satisfy x2 >= x1 and y2 >= y1, got {value!r}")
    return box  # type: ignore[return-value]


@dataclass(frozen=True)
class OpRecord:
    """One image operation that executed inside a tool call (from the sandbox trace).

    Attributes:
        name: Canonical op name: ``rotate_90|rotate_180|rotate_270`` (counter-clockwise),
            ``flip_horizontal``, ``flip_vertical``, ``crop``, or any other (optional) op such as
            ``contrast``, ``sharpen``, ``grayscale``, ``threshold``.
        box: For ``crop``: ``(x1, y1, x2, y2)`` in pixels of input image 0 (the frame of the item's
            ``bbox``); ``None`` for other ops or when the box could not be mapped back. Swapped corners
            (a box mapped through a flip) are put in order.
        effective: ``False`` when the tracer knows the op left the pixels materially unchanged
            (``enhance(1.0)``, a resize to the same size, ``rotate(0)``). Such an op earns no
            optional-tool credit in the paper variant. Absent from the trace means ``True``.

    Example:
        >>> OpRecord("crop", (10, 0, 0, 10)).box
        (0.0, 0.0, 10.0, 10.0)
        >>> OpRecord.from_dict({"name": "contrast", "effective": False}).effective
        False
    """

    name: str
    box: Box | None = None
    effective: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(
                f"OpRecord.name must be a non-empty op name such as 'rotate_90', got {self.name!r}"
            )
        # A crop box mapped back to image 0 through a flip or rotation has swapped corners; it is still
        # the same box, so order them rather than reject or drop it.
        object.__setattr__(self, "box", _as_box(self.box, f"OpRecord({self.name!r}).box", sort=True))
        if not isinstance(self.effective, bool):
            raise ValueError(f"OpRecord({self.name!r}).effective must be a bool, got {self.effective!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict ``{"name", "box"}``, plus ``"effective": false`` for an op that changed nothing."""
        d: dict[str, Any] = {"name": self.name, "box": list(self.box) if self.box is not None else None}
        if not self.effective:
            d["effective"] = False
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> OpRecord:
        """Build from ``{"name", "box", "effective"}``; also accepts cv-agent's ``box_input`` key or a bare name.

        Example:
            >>> OpRecord.from_dict({"name": "crop", "box_input": [1, 2, 3, 4]}).box
            (1.0, 2.0, 3.0, 4.0)
        """
        if isinstance(d, str):
            return cls(d)
        if not isinstance(d, dict) or "name" not in d:
            raise ValueError(f"an op must be a dict with a 'name' key, got {d!r}")
        # cv-agent records the crop box mapped into image 0 as `box_input`; prefer it over the raw box,
        # which is in the frame of whichever image the call selected.
        box = d.get("box_input", d.get("box"))
        effective = d.get("effective")
        return cls(name=d["name"], box=box, effective=True if effective is None else effective)


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call (one tool turn) of a rollout.

    Attributes:
        success: Whether the code ran and produced an image. Failed calls still count as tool turns but
            never earn strategy credit.
        ops: The ops the trace recorded, in execution order.
        error: The error text of a failed call, for logging.

    Example:
        >>> ToolCallRecord(True, [OpRecord("rotate_270")]).op_names
        ['rotate_270']
    """

    success: bool
    ops: list[OpRecord] = field(default_factory=list)
    error: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.success, bool):
            raise ValueError(f"ToolCallRecord.success must be a bool, got {self.success!r}")
        ops = [op if isinstance(op, OpRecord) else OpRecord.from_dict(op) for op in self.ops]
        object.__setattr__(self, "ops", ops)

    @property
    def op_names(self) -> list[str]:
        """Names of the traced ops, in order."""
        return [op.name for op in self.ops]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict ``{"success", "ops", "error"}``."""
        return {"success": self.success, "ops": [op.to_dict() for op in self.ops], "error": self.error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCallRecord:
        """Build from ``{"success", "ops", "error"}``; also accepts cv-agent's ``ToolCall.to_dict()``
        (``ok`` instead of ``success``, ops with ``box_input``).

        Example:
            >>> ToolCallRecord.from_dict({"ok": False, "ops": [], "error": "NameError"}).success
            False
        """
        if not isinstance(d, dict):
            raise ValueError(f"a tool call must be a dict, got {type(d).__name__}")
        if "success" in d:
            success = d["success"]
        elif "ok" in d:
            success = d["ok"]
        else:
            raise ValueError(f"a tool call needs a 'success' (or 'ok') flag, got keys {sorted(d)}")
        return cls(
            success=bool(success),
            ops=[OpRecord.from_dict(o) for o in d.get("ops") or []],
            error=d.get("error"),
        )


@dataclass
class RolloutRecord:
    """Everything the rewards need about one rollout of one item.

    Attributes:
        completion: All assistant text of the rollout (think blocks, tool calls, the final answer). Tool
            responses, if present, must be wrapped in ``<tool_response>...</tool_response>``.
        tool_calls: Every tool call in order, failed ones included.
        transform: Perturbations applied to the item, e.g. ``["crop", "rotate_90"]``.
        bbox: Answer region ``[x1, y1, x2, y2]`` in pixels of input image 0; required when ``transform``
            contains ``"crop"``.
        gt_answer: Ground-truth answer.
        correct: Pre-computed correctness; ``None`` means "match the extracted answer against
            ``gt_answer``".
        choices: Multiple-choice options (letters A, B, ... in order), or ``None``.
        task_type: ``"general"``, ``"ocr"``, ``"math"`` or ``"chart"``; selects matching rules and the
            judge prompt.
        prompt_id: Identifier of the prompt; rollouts of one prompt form a group.
        question: The question, passed to the LLM judge when one is used.

    Example:
        >>> r = RolloutRecord("<think>ok</think><answer>B</answer>", [], [], None, "B")
        >>> RolloutRecord.from_dict(r.to_dict()) == r
        True
    """

    completion: str
    tool_calls: list[ToolCallRecord]
    transform: list[str]
    bbox: list[float] | None
    gt_answer: str
    correct: bool | None = None
    choices: list[str] | None = None
    task_type: str = "general"
    prompt_id: str = ""
    question: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.completion, str):
            raise ValueError(f"RolloutRecord.completion must be a str, got {type(self.completion).__name__}")
        if isinstance(self.transform, str) or not all(isinstance(t, str) for t in self.transform):
            raise ValueError(f"RolloutRecord.transform must be a list of op names, got {self.transform!r}")
        self.transform = list(self.transform)
        self.tool_calls = [
            c if isinstance(c, ToolCallRecord) else ToolCallRecord.from_dict(c) for c in self.tool_calls
        ]
        box = _as_box(self.bbox, "RolloutRecord.bbox")
        self.bbox = list(box) if box is not None else None
        if self.gt_answer is None:
            raise ValueError("RolloutRecord.gt_answer is required (the ground-truth answer string)")
        self.gt_answer = str(self.gt_answer)
        if self.correct is not None and not isinstance(self.correct, bool):
            raise ValueError(f"RolloutRecord.correct must be True, False or None, got {self.correct!r}")
        if self.choices is not None:
            self.choices = [str(c) for c in self.choices]
        self.prompt_id = "" if self.prompt_id is None else str(self.prompt_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the same keys as the fields."""
        return {
            "completion": self.completion,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "transform": list(self.transform),
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "gt_answer": self.gt_answer,
            "correct": self.correct,
            "choices": list(self.choices) if self.choices is not None else None,
            "task_type": self.task_type,
            "prompt_id": self.prompt_id,
            "question": self.question,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutRecord:
        """Build from a dict as written by :meth:`to_dict` (unknown keys are rejected).

        ``answer`` is accepted as an alias of ``gt_answer`` (the dataset column name).
        """
        if not isinstance(d, dict):
            raise ValueError(f"a rollout record must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        if "gt_answer" not in d and "answer" in d:
            d["gt_answer"] = d.pop("answer")
        known = {
            "completion",
            "tool_calls",
            "transform",
            "bbox",
            "gt_answer",
            "correct",
            "choices",
            "task_type",
            "prompt_id",
            "question",
        }
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown rollout record keys {unknown}; expected a subset of {sorted(known)}")
        missing = [k for k in ("completion", "gt_answer") if k not in d]
        if missing:
            raise ValueError(f"rollout record lacks required keys {missing}")
        return cls(
            completion=d["completion"],
            tool_calls=[ToolCallRecord.from_dict(c) for c in d.get("tool_calls") or []],
            transform=list(d.get("transform") or []),
            bbox=d.get("bbox"),
            gt_answer=d["gt_answer"],
            correct=d.get("correct"),
            choices=d.get("choices"),
            task_type=d.get("task_type") or "general",
            prompt_id=d.get("prompt_id") or "",
            question=d.get("question") or "",
        )
