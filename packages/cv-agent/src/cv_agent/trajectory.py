"""What one episode records, and its JSONL + PNG serialisation.

On disk a directory holds many trajectories:

``trajectories.jsonl``
    One JSON object per line, one line per trajectory (:meth:`Trajectory.to_dict`), images referenced by
    relative path.
``images/<line>/<k>.png``
    Full-resolution image ``k`` of the trajectory on line ``<line>`` (0-based), lossless.

:func:`save_trajectories` / :func:`load_trajectories` handle the whole directory; :meth:`Trajectory.save`
appends one trajectory and :meth:`Trajectory.load` reads one back. A trajectory's tool calls are
:class:`cv_sandbox.ToolCall` records (re-exported here and from ``cv_agent``), written by the one executor,
:class:`cv_sandbox.ImageWorkspace`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cv_protocol import completion_to_text
from cv_sandbox import ToolCall
from PIL import Image

__all__ = [
    "IMAGES_DIR",
    "JSONL_NAME",
    "STOP_REASONS",
    "ToolCall",
    "Trajectory",
    "load_trajectories",
    "save_trajectories",
]

JSONL_NAME = "trajectories.jsonl"
IMAGES_DIR = "images"
STOP_REASONS: frozenset[str] = frozenset({"answer", "max_turns", "token_budget", "no_tool_call", "error"})
_FORMAT_VERSION = 1


@dataclass
class Trajectory:
    """One episode: the conversation, every image, every tool call and why it stopped.

    Attributes:
        item_id: Caller's id of the item.
        question: The user question.
        messages: OpenAI-style messages; image parts are ``{"type": "image", "image_index": k}``.
        images: Full-resolution images; index ``k`` as the model addresses it (inputs first).
        n_input_images: How many leading images are inputs (the rest are tool outputs).
        image_parents: ``image_parents[k]``: the image that image ``k`` was computed from (``None`` for inputs).
        image_to_parent: Affine maps from image ``k``'s pixels to its parent's (``None``: untrackable/input).
        model_image_sizes: ``(width, height)`` of each image as the model saw it (after the pixel budget).
        tool_calls: Every tool call, in order.
        final_text: All assistant text, turns joined by newlines.
        answer: Text of the last ``<answer>`` of the final reply, else ``None``.
        stop_reason: ``"answer"``, ``"max_turns"``, ``"token_budget"``, ``"no_tool_call"``, ``"error"``, or
            ``None`` while running.
        turns: Assistant turns generated.
        timings: Seconds: ``total_s``, ``model_s``, ``sandbox_s``, ``overhead_s`` (the loop's own work).
        usage: Token counts: ``prompt_tokens`` (sum over turns), ``completion_tokens``; ``estimated`` is 1
            when a backend reported none and lengths were estimated from text.
        error: The backend failure when ``stop_reason == "error"``.
        meta: Free-form caller data (kept through save/load; must be JSON-serialisable).
    """

    item_id: str
    question: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    n_input_images: int = 1
    image_parents: list[int | None] = field(default_factory=list)
    image_to_parent: list[list[float] | None] = field(default_factory=list)
    model_image_sizes: list[tuple[int, int]] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    final_text: str = ""
    answer: str | None = None
    stop_reason: str | None = None
    turns: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    # -- views -------------------------------------------------------------------------------------------
    @property
    def assistant_texts(self) -> list[str]:
        return [m["content"] for m in self.messages if m["role"] == "assistant"]

    def completion_text(self) -> str:
        """Assistant turns and tool responses as one string, as the Qwen templates render them after the
        prompt (tool turns inside ``<tool_response>`` tags, images as ``<image>``): the input that
        cv-rewards' ``format_reward``/``extract_answer`` expect.

        Example:
            >>> t = Trajectory("x", "q", messages=[{"role": "assistant", "content": "<answer>A</answer>"}])
            >>> t.completion_text()
            '<answer>A</answer>'
        """
        turns = [m for m in self.messages if m["role"] in ("assistant", "tool")]
        return completion_to_text(turns, sep="\n")

    def crop_boxes_input(self) -> list[tuple[float, float, float, float]]:
        """Every traced crop box mapped into input image 0's frame (untrackable ones skipped)."""
        return [tuple(op["box_input"]) for c in self.tool_calls for op in c.ops if op.get("box_input")]  # type: ignore[misc]

    # -- (de)serialisation -----------------------------------------------------------------------------
    def to_dict(self, image_paths: list[str] | None = None) -> dict[str, Any]:
        """JSON-serialisable dict; images appear as ``image_paths`` (relative paths) when given."""
        return {
            "format_version": _FORMAT_VERSION,
            "item_id": self.item_id,
            "question": self.question,
            "messages": json.loads(json.dumps(self.messages)),
            "image_paths": image_paths,
            "image_sizes": [list(im.size) for im in self.images],
            "n_input_images": self.n_input_images,
            "image_parents": list(self.image_parents),
            "image_to_parent": [list(a) if a is not None else None for a in self.image_to_parent],
            "model_image_sizes": [list(s) for s in self.model_image_sizes],
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "final_text": self.final_text,
            "answer": self.answer,
            "stop_reason": self.stop_reason,
            "turns": self.turns,
            "timings": dict(self.timings),
            "usage": dict(self.usage),
            "error": self.error,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], images: list[Image.Image] | None = None) -> Trajectory:
        """Inverse of :meth:`to_dict`; ``images`` supplies the pixels (see :func:`load_trajectories`)."""
        if d.get("format_version", 1) > _FORMAT_VERSION:
            raise ValueError(
                f"trajectory format {d['format_version']} is newer than this cv-agent ({_FORMAT_VERSION})"
            )
        return cls(
            item_id=d["item_id"],
            question=d["question"],
            messages=d.get("messages", []),
            images=list(images or []),
            n_input_images=d.get("n_input_images", 1),
            image_parents=list(d.get("image_parents", [])),
            image_to_parent=[list(a) if a is not None else None for a in d.get("image_to_parent", [])],
            model_image_sizes=[tuple(s) for s in d.get("model_image_sizes", [])],  # type: ignore[misc]
            tool_calls=[ToolCall.from_dict(c) for c in d.get("tool_calls", [])],
            final_text=d.get("final_text", ""),
            answer=d.get("answer"),
            stop_reason=d.get("stop_reason"),
            turns=d.get("turns", 0),
            timings=dict(d.get("timings", {})),
            usage=dict(d.get("usage", {})),
            error=d.get("error"),
            meta=dict(d.get("meta", {})),
        )

    def save(self, directory: str | os.PathLike[str]) -> int:
        """Append this trajectory to ``directory`` (JSONL line + PNGs). Returns its line index.

        Example:
            >>> Trajectory("a", "q").save("/tmp/trajs")  # doctest: +SKIP
            0
        """
        return save_trajectories([self], directory, append=True)[0]

    @classmethod
    def load(
        cls, directory: str | os.PathLike[str], item_id: str | None = None, index: int | None = None
    ) -> Trajectory:
        """Load one trajectory from ``directory``: by line ``index``, by ``item_id`` (the last one saved
        with that id), or the only one present.

        Example:
            >>> Trajectory.load("/tmp/trajs", item_id="a")  # doctest: +SKIP
        """
        trajs = load_trajectories(directory)
        if index is not None:
            return trajs[index]
        if item_id is not None:
            matches = [t for t in trajs if t.item_id == item_id]
            if not matches:
                raise KeyError(f"no trajectory with item_id {item_id!r} in {directory}")
            return matches[-1]
        if len(trajs) != 1:
            raise ValueError(f"{directory} holds {len(trajs)} trajectories; pass item_id= or index=")
        return trajs[0]


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def save_trajectories(
    trajectories: Iterable[Trajectory], directory: str | os.PathLike[str], *, append: bool = True
) -> list[int]:
    """Write trajectories to ``directory`` (see the module docstring for the layout).

    Args:
        trajectories: What to write.
        directory: Created if missing.
        append: Add after existing lines (default) or start the file afresh.

    Returns:
        The line index of each trajectory.

    Example:
        >>> save_trajectories([Trajectory("a", "q")], "/tmp/trajs")  # doctest: +SKIP
        [0]
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    jsonl = root / JSONL_NAME
    if not append and jsonl.exists():
        jsonl.unlink()
    line = _count_lines(jsonl)
    indices: list[int] = []
    with jsonl.open("a", encoding="utf-8") as f:
        for traj in trajectories:
            img_dir = root / IMAGES_DIR / f"{line:06d}"
            img_dir.mkdir(parents=True, exist_ok=True)
            paths = []
            for k, im in enumerate(traj.images):
                rel = f"{IMAGES_DIR}/{line:06d}/{k}.png"
                if im.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
                    im = im.convert("RGB")  # PNG cannot hold e.g. float images
                im.save(root / rel, format="PNG", compress_level=1)
                paths.append(rel)
            f.write(json.dumps(traj.to_dict(image_paths=paths), ensure_ascii=False) + "\n")
            indices.append(line)
            line += 1
    return indices


def load_trajectories(directory: str | os.PathLike[str]) -> list[Trajectory]:
    """Read every trajectory of ``directory`` with its images (fully loaded, files closed).

    Example:
        >>> [t.item_id for t in load_trajectories("/tmp/trajs")]  # doctest: +SKIP
        ['a']
    """
    root = Path(directory)
    jsonl = root / JSONL_NAME if root.is_dir() else root
    if not jsonl.is_file():
        raise FileNotFoundError(f"no {JSONL_NAME} in {directory}")
    base = jsonl.parent
    out = []
    with jsonl.open(encoding="utf-8") as f:
        for n, raw in enumerate(f):
            if not raw.strip():
                continue
            try:
                d = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"{jsonl}:{n + 1}: not valid JSON ({e})") from e
            images = []
            for rel in d.get("image_paths") or []:
                p = base / rel
                if not p.is_file():
                    raise FileNotFoundError(f"{jsonl}:{n + 1}: missing image file {p}")
                with Image.open(p) as im:
                    im.load()
                    images.append(im.copy())
            out.append(Trajectory.from_dict(d, images))
    return out
