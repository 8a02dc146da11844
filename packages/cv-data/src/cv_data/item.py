"""The dataset record shared by RL, SFT and benchmarks.

Transform names (and the ops that undo them) are :mod:`cv_protocol.ops`'s; task types are cv-rewards'
(they select its matching rules).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cv_protocol import TRANSFORM_NAMES
from cv_rewards import TASK_TYPES
from PIL import Image


@dataclass
class Item:
    """One RL / benchmark item.

    Attributes:
        id: Unique id, e.g. ``"doc-000012"`` or ``"doc-000012/rot90"`` for a benchmark variant.
        images: Images the model receives; ``images[0]`` is the input image (already transformed).
        question: The question text shown to the model.
        answer: Ground-truth answer (a string; numbers are written as the model should answer them).
        transform: Perturbations applied, in order, e.g. ``["crop", "rotate_90"]``: names from
            :data:`cv_protocol.TRANSFORM_NAMES` (``crop`` means "the answer needs a zoom into bbox"; the
            others are real pixel transforms, rotations counter-clockwise as ``Image.rotate``).
        bbox: Answer region ``[x1, y1, x2, y2]`` in pixels of ``images[0]`` as the model receives it
            (after transforms), or ``None`` when the answer has no single region.
        data_source: Where it came from, e.g. ``"synthetic/document"`` or ``"ocrbench"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        task_type: One of :data:`cv_rewards.TASK_TYPES`.
        choices: Multiple-choice options (answer is then the letter), or ``None``.
        meta: Free-form JSON-serialisable metadata (question kind, variant, base id, corruption, ...).
    """

    id: str
    images: list[Image.Image]
    question: str
    answer: str
    transform: list[str] = field(default_factory=list)
    bbox: list[float] | None = None
    data_source: str = ""
    split: str = "test"
    task_type: str = "general"
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("Item.id is empty: give every item a unique id")
        if not self.images:
            raise ValueError(f"Item {self.id!r} has no images: images[0] must be the input image")
        for k, im in enumerate(self.images):
            if not isinstance(im, Image.Image):
                raise TypeError(f"Item {self.id!r}: images[{k}] is {type(im).__name__}, expected a PIL image")
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"Item {self.id!r}: task_type {self.task_type!r} not in {sorted(TASK_TYPES)}")
        bad = [t for t in self.transform if t not in TRANSFORM_NAMES]
        if bad:
            raise ValueError(
                f"Item {self.id!r}: unknown transform(s) {bad}; allowed: {list(TRANSFORM_NAMES)}"
            )
        if self.bbox is not None:
            self.bbox = [float(v) for v in self.bbox]
            check_bbox(self.bbox, self.images[0].size, what=f"Item {self.id!r} bbox")
        self.answer = str(self.answer)

    def to_dict(self, *, with_images: bool = False) -> dict[str, Any]:
        """Plain dict of the fields (images only if ``with_images``)."""
        d: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "transform": list(self.transform),
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "data_source": self.data_source,
            "split": self.split,
            "task_type": self.task_type,
            "choices": list(self.choices) if self.choices is not None else None,
            "meta": dict(self.meta),
        }
        if with_images:
            d["images"] = list(self.images)
        return d


def check_bbox(bbox: list[float], size: tuple[int, int], *, what: str = "bbox", tol: float = 0.5) -> None:
    """Raise ``ValueError`` unless ``bbox`` is a non-empty ``[x1, y1, x2, y2]`` inside an image of ``size``.

    Example:
        >>> check_bbox([0, 0, 10, 10], (20, 20))
    """
    if len(bbox) != 4:
        raise ValueError(f"{what} must have 4 numbers [x1, y1, x2, y2], got {bbox!r}")
    x1, y1, x2, y2 = bbox
    w, h = size
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"{what} {bbox!r} is empty or reversed: need x2 > x1 and y2 > y1")
    if x1 < -tol or y1 < -tol or x2 > w + tol or y2 > h + tol:
        raise ValueError(f"{what} {bbox!r} lies outside the {w}x{h} image")
