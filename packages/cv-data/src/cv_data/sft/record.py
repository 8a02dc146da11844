"""The SFT record: one executed trajectory in TRL ``SFTTrainer``'s conversational VLM layout (its one home).

Every writer of SFT data builds its records here: cv-data's scripted expert (:func:`cv_data.build_sft`) and
teacher distillation (``cv-bench distill``, which converts the agent's trajectories). A record::

    {"messages": [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>..</think>\\n<tool_call>..</tool_call>"}]},
        {"role": "tool", "content": [{"type": "image"}, {"type": "text", "text": tool_response_text(...)}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<think>..</think>\\n<answer>..</answer>"}]}],
     "images": [PIL, ...],   # in the order of the {"type": "image"} placeholders, RGB or L
     "id": ..., "kind": ..., "data_source": ..., "item_id": ..., "answer": ..., "transform": [...],
     "tool_ops": [[...], ...],   # per tool call: op names from the sandbox trace (empty for failed calls)
     ...}                        # writer-specific fields (e.g. distillation's "correct", "teacher_answer")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

__all__ = ["RECORD_FIELDS", "sft_record"]

#: Fields every record has besides ``messages`` and ``images``.
RECORD_FIELDS: tuple[str, ...] = ("id", "kind", "data_source", "item_id", "answer", "transform", "tool_ops")


def _text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [_text(content)]
    if not isinstance(content, list):
        raise ValueError(f"message content must be a string or a list of parts, got {type(content).__name__}")
    return [dict(p) for p in content]


def sft_record(
    messages: Sequence[dict[str, Any]],
    images: Sequence[Image.Image],
    *,
    id: str,  # noqa: A002 - the record's field name
    kind: str,
    data_source: str,
    item_id: str,
    answer: str,
    transform: Sequence[str] = (),
    tool_ops: Sequence[Sequence[str]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Build one SFT record from plain chat messages, their images and the item's metadata.

    Args:
        messages: OpenAI-style messages. Content is a string or a list of parts; image parts are either
            ``{"type": "image"}`` (``images`` are then in placeholder order) or
            ``{"type": "image", "image_index": k}`` (``images[k]``, as cv-agent's trajectories write them;
            the record's images are put in placeholder order).
        images: The full-resolution images.
        id: Record id.
        kind: Trajectory kind (``cv_data.SFT_KINDS``, or ``"teacher"``).
        data_source: The item's source.
        item_id: The item's id.
        answer: The ground-truth answer.
        transform: The item's transforms.
        tool_ops: Per tool call, the op names the sandbox traced.
        **extra: Further fields, kept as given.

    Returns:
        The record (see the module docstring); images are converted to RGB unless RGB or L.

    Raises:
        ValueError: When placeholders and images disagree.

    Example:
        >>> from PIL import Image
        >>> msgs = [{"role": "user", "content": [{"type": "image", "image_index": 0}, {"type": "text", "text": "q"}]},
        ...         {"role": "assistant", "content": "<answer>A</answer>"}]
        >>> rec = sft_record(msgs, [Image.new("RGBA", (4, 4))], id="r0", kind="no_tool", data_source="s",
        ...                  item_id="i0", answer="A")
        >>> rec["messages"][1]["content"], rec["images"][0].mode
        ([{'type': 'text', 'text': '<answer>A</answer>'}], 'RGB')
    """
    out_msgs: list[dict[str, Any]] = []
    order: list[int] = []
    indexed: bool | None = None
    for m in messages:
        parts = []
        for p in _parts(m["content"]):
            if p.get("type") == "image":
                has_index = "image_index" in p
                if indexed is not None and has_index != indexed:
                    raise ValueError(
                        "image parts mix {'type': 'image'} and {'type': 'image', 'image_index': k}"
                    )
                indexed = has_index
                order.append(int(p["image_index"]) if has_index else len(order))
                parts.append({"type": "image"})
            else:
                parts.append(_text(str(p.get("text", ""))))
        out_msgs.append({"role": m["role"], "content": parts})
    if not indexed and len(order) != len(images):
        raise ValueError(f"{len(order)} image placeholders but {len(images)} images")
    if any(not 0 <= k < len(images) for k in order):
        raise ValueError(f"image placeholders refer to images {order}, but there are {len(images)}")
    ordered = [images[k] for k in order]
    return {
        "messages": out_msgs,
        "images": [im if im.mode in ("RGB", "L") else im.convert("RGB") for im in ordered],
        "id": id,
        "kind": kind,
        "data_source": data_source,
        "item_id": item_id,
        "answer": answer,
        "transform": list(transform),
        "tool_ops": [list(ops) for ops in tool_ops],
        **extra,
    }
