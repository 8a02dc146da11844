"""Training data: validate cv-data SFT records and RL items, and turn them into TRL datasets.

SFT record (cv-data): ``{"messages": [...], "images": [PIL, ...], "id", "kind", "data_source"}`` with image
placeholders ``{"type": "image"}`` in user and tool turns, filled by ``images`` in order. RL item: cv-data
``Item`` (or a dict with its fields). Bad records fail fast with the record id and what to fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cv_protocol import TOOL_CALL_START, Preset, content_text, get_preset
from PIL import Image

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool")


class DatasetError(ValueError):
    """A training record is malformed; the message names the record and what to fix."""


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        return []
    return content


def validate_sft_record(record: dict[str, Any], index: int = 0) -> None:
    """Check one SFT record; raise :class:`DatasetError` saying what is wrong and how to fix it.

    Example:
        >>> validate_sft_record({"messages": [{"role": "user", "content": "hi"}], "images": []})
        Traceback (most recent call last):
        ...
        cv_train.data.DatasetError: SFT record 0 (id=?): has no assistant turn; every trajectory must end with an assistant answer
    """
    rid = f"SFT record {index} (id={record.get('id', '?')})"
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{rid}: 'messages' must be a non-empty list of {{role, content}} dicts")
    images = record.get("images")
    if images is None:
        images = []
    if not isinstance(images, list | tuple):
        raise DatasetError(f"{rid}: 'images' must be a list of PIL images (placeholder order)")
    placeholders = 0
    previous = None
    for j, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ROLES:
            raise DatasetError(f"{rid}: message {j} has role {role!r}; use one of {ROLES}")
        content = msg.get("content")
        if not isinstance(content, str | list):
            raise DatasetError(f"{rid}: message {j} ({role}) content must be a string or a list of parts")
        for part in _parts(msg):
            ptype = part.get("type") if isinstance(part, dict) else None
            if ptype not in ("text", "image"):
                raise DatasetError(
                    f"{rid}: message {j} ({role}) has a part of type {ptype!r}; use 'text' or 'image'"
                )
            if ptype == "image":
                if role not in ("user", "tool"):
                    raise DatasetError(
                        f"{rid}: message {j} ({role}) holds an image; images belong to user or tool turns"
                    )
                placeholders += 1
        if role == "system" and j != 0:
            raise DatasetError(f"{rid}: the system message must come first (found at {j})")
        if role == "tool" and previous not in ("assistant", "tool"):
            raise DatasetError(f"{rid}: tool message {j} does not follow an assistant tool call")
        if role == "assistant" and not content_text(content).strip():
            raise DatasetError(
                f"{rid}: assistant message {j} is empty; every assistant turn needs text to train on"
            )
        if (
            role == "tool"
            and previous == "assistant"
            and TOOL_CALL_START not in content_text(messages[j - 1].get("content"))
        ):
            raise DatasetError(
                f"{rid}: tool message {j} answers assistant turn {j - 1}, which has no <tool_call>"
            )
        previous = role
    if not any(m["role"] == "assistant" for m in messages):
        raise DatasetError(
            f"{rid}: has no assistant turn; every trajectory must end with an assistant answer"
        )
    if messages[-1]["role"] != "assistant":
        raise DatasetError(
            f"{rid}: ends with a {messages[-1]['role']} turn; trajectories must end with the assistant"
        )
    if placeholders != len(images):
        raise DatasetError(
            f"{rid}: {placeholders} image placeholders in messages but {len(images)} images; "
            "'images' must hold exactly one image per {'type': 'image'} part, in order"
        )
    for k, im in enumerate(images):
        if not isinstance(im, Image.Image):
            raise DatasetError(
                f"{rid}: images[{k}] is a {type(im).__name__}, not a PIL image (load paths first)"
            )


def _normalise_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Uniform shape for Arrow: every content a list of ``{"type", "text"}`` parts (image parts text=None)."""
    out = []
    for msg in messages:
        parts = [
            {"type": p["type"], "text": p.get("text") if p["type"] == "text" else None} for p in _parts(msg)
        ]
        out.append({"role": msg["role"], "content": parts})
    return out


def sft_dataset(records: Iterable[dict[str, Any]]) -> Any:
    """Validate SFT records and build a ``datasets.Dataset`` with ``messages`` and ``images`` columns.

    Example:
        >>> from cv_data.testing import tiny_sft_records
        >>> sft_dataset(tiny_sft_records(1)).column_names
        ['messages', 'images', 'id', 'kind']
    """
    import datasets

    rows = []
    for i, rec in enumerate(records):
        validate_sft_record(rec, i)
        rows.append(
            {
                "messages": _normalise_messages(rec["messages"]),
                "images": [im.convert("RGB") for im in rec.get("images") or []],
                "id": str(rec.get("id", i)),
                "kind": str(rec.get("kind", "")),
            }
        )
    if not rows:
        raise DatasetError(
            "the SFT dataset is empty: point dataset at a folder with records, or use 'cv-data'"
        )
    features = datasets.Features(
        {
            "messages": [
                {
                    "role": datasets.Value("string"),
                    "content": [{"type": datasets.Value("string"), "text": datasets.Value("string")}],
                }
            ],
            "images": datasets.Sequence(datasets.Image()),
            "id": datasets.Value("string"),
            "kind": datasets.Value("string"),
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def read_sft_records(path: str | Path) -> list[dict[str, Any]]:
    """Read SFT records from disk.

    cv-data's own output (a ``cv-data build-sft`` folder, ``sft.parquet`` / ``sharegpt.json`` from ``save_sft``)
    is read with ``cv_data.load_sft``;
    otherwise a ``.jsonl`` file (or a folder holding one) whose ``images`` are paths relative to the file.

    Example:
        >>> read_sft_records("/nonexistent")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        cv_train.data.DatasetError: ...
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(
            f"SFT dataset {str(p)!r} does not exist: set dataset to a cv-data SFT folder or 'cv-data'"
        )
    cv_data_files = [p] if p.suffix in (".parquet", ".json") else [p / "sft.parquet", p / "sharegpt.json"]
    build_folder = any((p / "data").glob("*.parquet"))  # written by `cv-data build-sft`
    if build_folder or any(f.is_file() for f in cv_data_files):
        from cv_data import load_sft

        return list(load_sft(p))
    jsonl = p if p.is_file() else next(iter(sorted(p.glob("*.jsonl"))), None)
    if jsonl is None:
        raise DatasetError(
            f"no SFT records in {p}: expected sft.parquet / sharegpt.json (cv-data save_sft) or a .jsonl"
        )
    records = []
    for n, line in enumerate(jsonl.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{jsonl}:{n + 1} is not valid JSON ({e}); fix or remove the line") from None
        imgs = []
        for ref in rec.get("images") or []:
            ip = (jsonl.parent / ref) if isinstance(ref, str) else None
            if ip is None or not ip.is_file():
                raise DatasetError(f"{jsonl}:{n + 1}: image {ref!r} not found next to the records file")
            with Image.open(ip) as im:
                imgs.append(im.convert("RGB"))
        rec["images"] = imgs
        records.append(rec)
    return records


def load_sft_records(
    dataset: str, num_synthetic: int = 64, seed: int = 0, preset: Preset | str = "default"
) -> list[dict[str, Any]]:
    """Records for an :class:`~cv_train.config.SFTRecipe` ``dataset`` value.

    ``"cv-data"``: build ``num_synthetic`` trajectories in-process with cv-data's five-kind builder (a small
    ``num_synthetic`` for smoke runs); ``"toy"``: ``num_synthetic`` trajectories of cv-data's toy task
    (:mod:`cv_data.toy`, the default CPU run); both with ``preset``'s system prompt and tool texts. Anything
    else: a path (:func:`read_sft_records`), whose records carry the texts they were built with.
    """
    if dataset in ("cv-data", "toy"):
        from cv_data import SFTBuildConfig, build_sft

        kinds = {"kinds": {"toy": 1.0}} if dataset == "toy" else {}
        config = SFTBuildConfig(num=num_synthetic, seed=seed, preset=preset, progress=False, **kinds)
        return list(build_sft(config))
    return read_sft_records(dataset)


# ----------------------------------------------------------------------------------------------- RL items

_RL_REQUIRED = ("images", "question", "answer")


def _item_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)
    fields = (
        "id",
        "images",
        "question",
        "answer",
        "transform",
        "bbox",
        "data_source",
        "task_type",
        "choices",
    )
    return {f: getattr(item, f) for f in fields if hasattr(item, f)}


def rl_rows(
    items: Iterable[Any], system_prompt: str | None = None, *, preset: Preset | str = "default"
) -> list[dict[str, Any]]:
    """Turn RL items (cv-data ``Item`` or dicts) into GRPO rows, validating each.

    Each row has a conversational ``prompt`` (system + user with one image placeholder per image), ``images``,
    and the reward columns ``answer``, ``transform``, ``bbox``, ``choices``, ``task_type``, ``item_id``. The
    system message is ``preset``'s system prompt unless ``system_prompt`` replaces it.

    Example:
        >>> from cv_data.testing import tiny_items
        >>> row = rl_rows(tiny_items(1))[0]
        >>> [m["role"] for m in row["prompt"]], len(row["images"])
        (['system', 'user'], 1)
    """
    if system_prompt is None:
        system_prompt = get_preset(preset).system_prompt
    rows = []
    for i, raw in enumerate(items):
        item = _item_dict(raw)
        rid = f"RL item {i} (id={item.get('id', '?')})"
        missing = [k for k in _RL_REQUIRED if not item.get(k)]
        if missing:
            raise DatasetError(f"{rid}: missing {missing}; every RL item needs images, question and answer")
        images = list(item["images"])
        if not all(isinstance(im, Image.Image) for im in images):
            raise DatasetError(f"{rid}: images must be PIL images")
        bbox = item.get("bbox")
        if bbox is not None:
            if len(bbox) != 4 or not (bbox[0] < bbox[2] and bbox[1] < bbox[3]):
                raise DatasetError(f"{rid}: bbox {bbox} must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2")
            bbox = [float(v) for v in bbox]
        transform = list(item.get("transform") or [])
        if "crop" in transform and bbox is None:
            raise DatasetError(
                f"{rid}: transform has 'crop' but no bbox; the crop reward needs the answer region"
            )
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": system_prompt},
                    {
                        "role": "user",
                        "content": [{"type": "image"} for _ in images]
                        + [{"type": "text", "text": item["question"]}],
                    },
                ],
                "images": [im.convert("RGB") for im in images],
                "answer": str(item["answer"]),
                "transform": transform,
                "bbox": bbox,
                "choices": list(item["choices"]) if item.get("choices") else None,
                "task_type": str(item.get("task_type") or "general"),
                "item_id": str(item.get("id", i)),
                "question": str(item["question"]),
            }
        )
    if not rows:
        raise DatasetError("the RL dataset is empty: point dataset at cv-data items, or use 'cv-data'")
    return rows


def rl_dataset(items: Sequence[Any], preset: Preset | str = "default") -> Any:
    """``datasets.Dataset`` of :func:`rl_rows` (with ``preset``'s system prompt) for ``GRPOTrainer``."""
    import datasets

    rows = rl_rows(items, preset=preset)
    # Uniform prompt shape for Arrow: content as parts everywhere.
    for row in rows:
        row["prompt"] = [
            {
                "role": m["role"],
                "content": m["content"]
                if isinstance(m["content"], list)
                else [{"type": "text", "text": m["content"]}],
            }
            for m in row["prompt"]
        ]
        for m in row["prompt"]:
            m["content"] = [{"type": p["type"], "text": p.get("text")} for p in m["content"]]
    features = datasets.Features(
        {
            "prompt": [
                {
                    "role": datasets.Value("string"),
                    "content": [{"type": datasets.Value("string"), "text": datasets.Value("string")}],
                }
            ],
            "images": datasets.Sequence(datasets.Image()),
            "answer": datasets.Value("string"),
            "transform": datasets.Sequence(datasets.Value("string")),
            "bbox": datasets.Sequence(datasets.Value("float64")),
            "choices": datasets.Sequence(datasets.Value("string")),
            "task_type": datasets.Value("string"),
            "item_id": datasets.Value("string"),
            "question": datasets.Value("string"),
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def load_rl_items(dataset: str, num_synthetic: int = 64, seed: int = 0) -> list[Any]:
    """Items for an :class:`~cv_train.config.RLRecipe` ``dataset`` value.

    ``"cv-data"``: ``num_synthetic`` items from cv-data's RL builder; ``"toy"``: ``num_synthetic`` items of
    cv-data's toy task, the four orientations equally often; anything else is read with
    ``cv_data.read_items``: a ``cv-data build-rl`` folder (``data/*.parquet``), a ``write_items`` file, or
    a verl RL parquet file or folder such as the CodeVision release's ``train_group_*.parquet`` (box in
    ``extra_info.bbox`` or ``bbox_2d``). Rows cv-data cannot read are an error (with their count and first
    message), never silently skipped.
    """
    if dataset in ("cv-data", "toy"):
        from cv_data import RLBuildConfig, build_rl_items

        toy: dict[str, Any] = {}
        if dataset == "toy":
            from cv_data.toy import TOY_ROTATIONS

            toy = dict(sources={"toy": 1.0}, transforms=TOY_ROTATIONS, p_identity=0.25, p_compose=0.0)
        return list(build_rl_items(RLBuildConfig(num=num_synthetic, seed=seed, progress=False, **toy)))
    p = Path(dataset)
    if not p.exists():
        raise DatasetError(
            f"RL dataset {dataset!r} does not exist: set dataset to a cv-data build folder, a verl parquet or 'cv-data'"
        )
    from cv_data import read_items
    from cv_data.report import BuildReport

    report = BuildReport()
    items = list(read_items(p, report=report))
    if report.errors:
        first = report.errors[0]
        raise DatasetError(
            f"{len(report.errors)} unreadable item(s) in {p} (first: {first}); fix or rewrite them with cv-data"
        )
    return items
