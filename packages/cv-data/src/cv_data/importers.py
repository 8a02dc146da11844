"""Importers: the data people already have, in its published layout, into our item schema, with every image
stored in the dataset (never an absolute path) and every record that cannot be converted reported.

==================  ===========================================================================================
``codevision-rl``   the CodeVision release's RL parquet (verl layout: ``prompt``, ``images``, ``reward_model``,
                    ``extra_info.transform`` as a list, a name or a dict, box in ``extra_info.bbox`` or
                    ``bbox_2d``); ``train_group_*.parquet``
``mvtoolbench``     the release's ``mvtoolbench.parquet`` (the same verl layout)
``deepeyes``        DeepEyes' training parquet (``data_*.parquet``: verl layout; the user turn carries the
                    question plus DeepEyes' zoom-tool instructions, which are removed)
``vstar``           V* Bench: ``test_questions.jsonl`` (``image``, ``text`` with ``(A) ..`` options, ``label``,
                    ``category``, ``question_id``), or the GitHub layout ``<category>/<name>.jpg`` +
                    ``<name>.json`` (``question``, ``options``: the first is correct); the per-image JSON's
                    ``bbox`` (``[x, y, w, h]`` per ``target_object``) becomes the answer box (``crop``)
``hrbench``         HR-Bench TSV (``index``, ``question``, ``answer`` letter, ``A`` .. ``D``, ``category``,
                    ``cycle_category``, ``image`` as base64)
``thyme-rl``        Thyme's RL JSON/JSONL (``messages``, ``images`` paths, ``solution``, ``question``)
``thyme-sft``       Thyme's SFT JSON/JSONL (``image`` list, ``question``, ``response``): the question, the
                    original image and the ``<answer>`` become an item; the trajectory itself is not
                    converted (its code reads and writes image files by absolute path, which cv-sandbox's
                    in-memory tool does not run), and the report says so
``codevision-sft``  the CodeVision release's SFT data as LLaMA-Factory reads it (ShareGPT ``conversations`` of
                    ``from``/``value`` turns ``human``/``gpt``/``tool``, ``images`` paths, ``system``; or a
                    folder with its ``dataset_info.json``) into SFT records (the SFT layout)
==================  ===========================================================================================

Image paths are resolved against the input's folder, its ``images/`` folder, and by file name when a
published path is absolute (``/mllm_hdd/...``): a record whose image cannot be found is reported, never
kept with a dangling path.
"""

from __future__ import annotations

import csv
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cv_protocol import (
    IMAGE_TOKEN,
    TOOL_CALL_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    ParseError,
    extract_answer,
    parse_tool_calls,
)

from ._images import decode
from .item import Item
from .records import _plain, count_parquet_rows, parquet_files, parquet_range, verl_item

LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Importer:
    """A published layout read as items (subclasses convert one row).

    Attributes:
        name: ``--input-format`` / ``cv-data import --from`` name.
        data_source: Recorded on items whose rows name none.
        split: Split recorded on the items (benchmarks: ``test``).
        description: One line for the CLI help.
    """

    name: str
    data_source: str
    split: str = "train"
    description: str = ""

    # ---------------------------------------------------------------- rows (main process)

    def recognizes(self, root: Path) -> bool:
        """Whether ``root`` is in this importer's published layout (benchmark suites fall back to their
        column map otherwise)."""
        try:
            return bool(self.files(root))
        except FileNotFoundError:
            return False

    def files(self, root: Path) -> list[Path]:
        """The files holding the rows, in order."""
        if root.is_file():
            return [root]
        found = parquet_files(root)
        if found:
            return found
        for suffix in (".jsonl", ".json", ".tsv"):
            found = sorted(root.glob(f"*{suffix}"))
            if found:
                return found
        raise FileNotFoundError(f"{root} holds no parquet/jsonl/json/tsv file of the {self.name} layout")

    def count(self, root: Path) -> int:
        """Number of rows."""
        files = self.files(root)
        if files[0].suffix == ".parquet":
            return count_parquet_rows(root)
        return sum(1 for _ in self.rows(root, 0, 1 << 62))

    def rows(self, root: Path, start: int, stop: int) -> Iterator[Any]:
        """Rows ``start .. stop-1``."""
        files = self.files(root)
        if files[0].suffix == ".parquet":
            yield from parquet_range(files, start, stop)
            return
        for i, row in enumerate(text_rows(files)):
            if i >= stop:
                return
            if i >= start:
                yield row

    # ---------------------------------------------------------------- conversion (worker)

    def item(self, row: Any, index: int, root: Path) -> Item:
        """Row ``index`` as an item; raises KeyError / ValueError with what is wrong."""
        raise NotImplementedError


def text_rows(files: list[Path]) -> Iterator[Any]:
    """The raw rows of JSONL (lines), JSON (list items or values) and TSV (dicts) files, in order."""
    for f in files:
        if f.suffix == ".jsonl":
            with open(f, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        yield line
        elif f.suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            yield from data if isinstance(data, list) else list(data.values())
        elif f.suffix == ".tsv":
            csv.field_size_limit(1 << 30)  # HRBench TSVs inline whole images as base64
            with open(f, encoding="utf-8", newline="") as fh:
                yield from csv.DictReader(fh, delimiter="\t")


def parse_row(row: Any, index: int) -> dict[str, Any]:
    """A row as a dict (JSONL rows arrive as text lines)."""
    if isinstance(row, str):
        try:
            row = json.loads(row)
        except json.JSONDecodeError as e:
            raise ValueError(f"input row {index} is not valid JSON: {e}") from None
    if not isinstance(row, dict):
        raise ValueError(f"input row {index} is a {type(row).__name__}, not an object")
    return row


class ImageNotFound(ValueError):
    """A record's image that cannot be found or decoded (reported at stage ``image``)."""


def find_image(value: Any, root: Path) -> Any:
    """An image value decoded; a path is looked up as given (relative to ``root`` or its folder), in
    ``images/``, by file name alone, and by its last folder and name (published absolute paths from the
    authors' machines).

    Raises:
        ImageNotFound: The image is not found or cannot be decoded (the message names the path).
    """
    if not isinstance(value, str):
        try:
            return decode(value)
        except ValueError as e:
            raise ImageNotFound(str(e)) from e
    base = root if root.is_dir() else root.parent
    p = Path(value)
    cands = [p] if p.is_absolute() else [base / p, base / "images" / p]
    cands += [base / p.name, base / "images" / p.name, base / p.parent.name / p.name]
    for cand in cands:
        if cand.is_file():
            try:
                return decode(str(cand))
            except ValueError as e:
                raise ImageNotFound(str(e)) from e
    where = f"{base}, {base / 'images'}, by name and by folder/name"
    raise ImageNotFound(f"image file not found: {value!r} (looked in {where})")


def options_text(options: list[str]) -> str:
    """Lettered options, one per line.

    Example:
        >>> options_text(["red", "blue"])
        '(A) red\\n(B) blue'
    """
    return "\n".join(f"({LETTERS[k]}) {o}" for k, o in enumerate(options))


_OPTION = re.compile(r"^\(([A-J])\)\s*(.+?)\s*$")


def parse_options(text: str) -> list[str] | None:
    """The ``(A) ..`` option lines of a question text (V*'s layout), in order, or ``None``.

    Example:
        >>> parse_options("What color?\\n(A) red\\n(B) blue\\nAnswer with the option's letter.")
        ['red', 'blue']
    """
    opts = [m.group(2) for m in map(_OPTION.match, text.splitlines()) if m]
    return opts or None


# ------------------------------------------------------------------------------ verl layouts


@dataclass(frozen=True)
class VerlImporter(Importer):
    """verl's RL parquet (the CodeVision release, MVToolBench): :func:`cv_data.records.verl_item`."""

    def item(self, row: Any, index: int, root: Path) -> Item:
        return verl_item(parse_row(row, index), index, default_source=self.data_source)


_DEEPEYES_SUFFIX = re.compile(r"\s*\n\s*Think first, call \*\*image_zoom_in_tool\*\*.*\Z", re.S)


@dataclass(frozen=True)
class DeepEyesImporter(Importer):
    """DeepEyes' training parquet: verl layout whose user turn is ``<image>\\n{question}\\nThink first, call
    **image_zoom_in_tool** ...`` (visual-toolbox files) or ``<image>\\n{instructions}\\nQuestion:\\n{question}``
    (ThinkLite file): the peer's tool instructions are removed, our prompt preset replaces them."""

    def item(self, row: Any, index: int, root: Path) -> Item:
        row = parse_row(row, index)
        extra = dict(row.get("extra_info") or {})
        extra.pop("question", None)  # recomputed from the prompt, without the instructions
        users = [
            m for m in _plain(row.get("prompt")) or [] if isinstance(m, dict) and m.get("role") == "user"
        ]
        if not users:
            raise ValueError("prompt has no user turn")
        text = str(users[-1].get("content") or "").replace("<image>", "")
        text = _DEEPEYES_SUFFIX.sub("", text)
        if "Question:\n" in text:
            text = text.split("Question:\n", 1)[1]
        extra["question"] = text.strip()
        item = verl_item({**row, "extra_info": extra}, index, default_source=self.data_source)
        item.meta = {**item.meta, "env_name": row.get("env_name")} if row.get("env_name") else item.meta
        return item


# ------------------------------------------------------------------------------ benchmarks


@dataclass(frozen=True)
class VStarImporter(Importer):
    """V* Bench (see the module table): the jsonl layout, or the per-image JSON layout."""

    def files(self, root: Path) -> list[Path]:
        if root.is_file():
            return [root]
        if (root / "test_questions.jsonl").is_file():
            return [root / "test_questions.jsonl"]
        found = sorted(root.glob("*/*.json"))
        if not found:
            raise FileNotFoundError(
                f"{root} holds neither test_questions.jsonl nor <category>/<image>.json annotations of V*"
            )
        return found

    def recognizes(self, root: Path) -> bool:
        try:
            files = self.files(root)
        except FileNotFoundError:
            return False
        if files[0].suffix != ".jsonl":
            return files[0].suffix == ".json"
        first = next(text_rows(files[:1]), None)
        try:
            row = parse_row(first, 0) if first is not None else {}
        except ValueError:
            return False
        return {"image", "text", "label"} <= set(row)

    def rows(self, root: Path, start: int, stop: int) -> Iterator[Any]:
        files = self.files(root)
        if files[0].suffix == ".jsonl":
            yield from super().rows(root, start, stop)
            return
        for i, f in enumerate(files):  # one annotation file per item
            if i >= stop:
                return
            if i >= start:
                yield {"annotation": str(f.relative_to(root))}

    def item(self, row: Any, index: int, root: Path) -> Item:
        row = parse_row(row, index)
        base = root if root.is_dir() else root.parent
        if "annotation" in row:  # GitHub layout: options[0] is the answer; shuffle them, deterministically
            ann_path = base / row["annotation"]
            ann = json.loads(ann_path.read_text(encoding="utf-8"))
            options = [str(o) for o in ann["options"]]
            shift = zlib.crc32(ann_path.stem.encode()) % len(options)
            order = [(k + shift) % len(options) for k in range(len(options))]
            choices = [options[k] for k in order]
            question = f"{ann['question']}\n{options_text(choices)}\nAnswer with the option's letter from the given choices directly."
            answer = LETTERS[order.index(0)]
            image_ref = next(
                (
                    str(p.relative_to(base))
                    for p in ann_path.parent.glob(ann_path.stem + ".*")
                    if p.suffix != ".json"
                ),
                None,
            )
            if image_ref is None:
                raise ValueError(f"image file not found next to {row['annotation']}")
            rid, category = f"{ann_path.parent.name}/{ann_path.stem}", ann_path.parent.name
        else:
            for col in ("image", "text", "label"):
                if col not in row:
                    raise KeyError(col)
            question, answer, image_ref = str(row["text"]), str(row["label"]).strip(), str(row["image"])
            choices = parse_options(question)
            rid = str(row.get("question_id", f"vstar-{index:06d}"))
            category = str(row.get("category") or image_ref.split("/")[0])
            ann_path = (base / image_ref).with_suffix(".json")
            ann = json.loads(ann_path.read_text(encoding="utf-8")) if ann_path.is_file() else {}
        image = find_image(image_ref, base)
        meta: dict[str, Any] = {"category": category, "image": Path(image_ref).name}
        bbox = None
        boxes = [[float(v) for v in b] for b in ann.get("bbox") or []]
        if boxes:  # [x, y, w, h] per target object
            xyxy = [[x, y, x + w, y + h] for x, y, w, h in boxes]
            bbox = [
                min(b[0] for b in xyxy),
                min(b[1] for b in xyxy),
                max(b[2] for b in xyxy),
                max(b[3] for b in xyxy),
            ]
            bbox = [
                max(0.0, bbox[0]),
                max(0.0, bbox[1]),
                min(float(image.width), bbox[2]),
                min(float(image.height), bbox[3]),
            ]
            meta |= {"boxes": xyxy, "target_object": ann.get("target_object")}
        return Item(
            id=rid,
            images=[image],
            question=question,
            answer=answer,
            transform=["crop"] if bbox else [],
            bbox=bbox,
            data_source=self.data_source,
            split=self.split,
            task_type="general",
            choices=choices,
            meta=meta,
        )


@dataclass(frozen=True)
class HRBenchImporter(Importer):
    """HR-Bench TSV: the options go into the question text (the model must see them) and ``choices``."""

    def item(self, row: Any, index: int, root: Path) -> Item:
        row = parse_row(row, index)
        for col in ("question", "answer", "image"):
            if not row.get(col):
                raise KeyError(col)
        options = [str(row[c]) for c in "ABCD" if row.get(c) not in (None, "")]
        question = str(row["question"])
        if options and not parse_options(question):
            question = f"{question}\n{options_text(options)}\nAnswer with the option's letter from the given choices directly."
        meta = {k: row[k] for k in ("category", "cycle_category") if row.get(k)}
        return Item(
            id=str(row.get("index", f"hrbench-{index:06d}")),
            images=[find_image(_b64_or_path(row["image"]), root)],
            question=question,
            answer=str(row["answer"]).strip(),
            data_source=self.data_source,
            split=self.split,
            choices=options or None,
            meta=meta,
        )


def _b64_or_path(v: str) -> Any:
    import base64

    if len(v) > 256:
        try:
            return base64.b64decode(v, validate=True)
        except ValueError:
            pass
    return v


# ------------------------------------------------------------------------------ Thyme


def _clean_question(text: str) -> str:
    return text.replace("<image>", "").strip()


@dataclass(frozen=True)
class ThymeRLImporter(Importer):
    """Thyme's RL rows: ``messages`` (system, user), ``images`` (paths), ``solution``, ``question``."""

    def item(self, row: Any, index: int, root: Path) -> Item:
        row = parse_row(row, index)
        if not row.get("images"):
            raise KeyError("images")
        if row.get("solution") in (None, ""):
            raise KeyError("solution")
        question = row.get("question")
        if not question:
            users = [m for m in row.get("messages") or [] if m.get("role") == "user"]
            if not users:
                raise KeyError("question")
            question = users[-1].get("content")
        return Item(
            id=str(row.get("id") or f"thyme-rl-{index:06d}"),
            images=[find_image(v, root) for v in row["images"]],
            question=_clean_question(str(question)),
            answer=str(row["solution"]).strip(),
            data_source=self.data_source,
            split=self.split,
            meta={"source_row": index},
        )


@dataclass(frozen=True)
class ThymeSFTImporter(Importer):
    """Thyme's SFT rows (``image`` list, ``question``, ``response``) as items: the first image, the question
    and the final ``<answer>``; the trajectory is not converted (see the module docstring)."""

    def item(self, row: Any, index: int, root: Path) -> Item:
        row = parse_row(row, index)
        for col in ("image", "question", "response"):
            if not row.get(col):
                raise KeyError(col)
        found = extract_answer(str(row["response"]))
        if not found:
            raise ValueError("response has no <answer>...</answer>: nothing to use as the ground truth")
        answer = found.strip().strip("*").strip()
        images = row["image"] if isinstance(row["image"], list) else [row["image"]]
        return Item(
            id=str(row.get("id") or f"thyme-sft-{index:06d}"),
            images=[find_image(images[0], root)],
            question=_clean_question(str(row["question"])),
            answer=answer,
            data_source=self.data_source,
            split=self.split,
            meta={"source_row": index, "trajectory": "not converted: Thyme's code works on image files"},
        )


# ------------------------------------------------------------------------------ CodeVision SFT (ShareGPT)


#: The release's LLaMA-Factory tags (``LLaMA-Factory/data/dataset_info.json``, entry ``codevision_sft``).
RELEASE_SHAREGPT = {
    "messages": "conversations",
    "images": "images",
    "system": "system",
    "tools": "tools",
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "tool",
    "system_tag": "system",
    "function_tag": "function_call",
}


def _unwrap_tool_response(text: str) -> str:
    t = text.strip()
    if t.startswith(TOOL_RESPONSE_START) and t.endswith(TOOL_RESPONSE_END):
        return t[len(TOOL_RESPONSE_START) : -len(TOOL_RESPONSE_END)].strip("\n")
    return text


class UnreadableCall(ValueError):
    """An assistant turn's ``<tool_call>`` that ``cv_protocol.parse_tool_calls`` cannot read."""


@dataclass(frozen=True)
class ShareGPTImporter(Importer):
    """LLaMA-Factory ShareGPT trajectories (the CodeVision release's SFT data) as SFT records.

    Reads a JSON / JSONL file, or a folder with ``dataset_info.json`` (its first ``sharegpt`` entry names the
    file and the tags; without one, the release's tags :data:`RELEASE_SHAREGPT`). Each row becomes an SFT
    record (:func:`cv_data.sft.sft_record`): turns mapped to system/user/assistant/tool, ``<image>`` tokens
    to image parts, images loaded and stored, tool values unwrapped from ``<tool_response>`` (the template
    adds it), ``answer`` from the last ``<answer>``. A row is reported when a turn has an unknown tag, turns
    do not alternate, placeholders and images disagree, an image is missing, a tool turn follows no
    ``<tool_call>``, or a call cannot be read by ``cv_protocol.parse_tool_calls``. The calls are not
    re-executed: ``tool_ops`` stays empty.
    """

    kind: str = "sft"

    def _entry(self, root: Path) -> tuple[Path, dict[str, str]]:
        if root.is_dir() and (root / "dataset_info.json").is_file():
            info = json.loads((root / "dataset_info.json").read_text(encoding="utf-8"))
            for entry in info.values():
                if entry.get("formatting") == "sharegpt" and "file_name" in entry:
                    tags = {**RELEASE_SHAREGPT, **entry.get("columns", {}), **entry.get("tags", {})}
                    return root / entry["file_name"], tags
        return root, dict(RELEASE_SHAREGPT)

    def files(self, root: Path) -> list[Path]:
        return super().files(self._entry(root)[0])

    def count(self, root: Path) -> int:
        return sum(1 for _ in self.rows(root, 0, 1 << 62))

    def rows(self, root: Path, start: int, stop: int) -> Iterator[Any]:
        yield from super().rows(self._entry(root)[0], start, stop)

    def tools(self, row: Any, index: int, root: Path) -> str:
        """Row ``index``'s own ShareGPT ``tools`` value (a JSON list), ``""`` when it has none (the release's
        rows have none: its system prompt describes the tool), so the converted row is trained as published.
        """
        value = parse_row(row, index).get(self._entry(root)[1]["tools"])
        if value is None or isinstance(value, str):
            return value or ""
        return json.dumps(value)

    def record(self, row: Any, index: int, root: Path) -> dict[str, Any]:
        """Row ``index`` as an SFT record; raises KeyError / ValueError with what is wrong."""
        from .sft.record import sft_record

        row = parse_row(row, index)
        data_file, tags = self._entry(root)
        turns = row.get(tags["messages"])
        if not turns:
            raise KeyError(tags["messages"])
        roles = {
            tags["user_tag"]: "user",
            tags["assistant_tag"]: "assistant",
            tags["observation_tag"]: "tool",
            tags["system_tag"]: "system",
            tags["function_tag"]: "assistant",
        }
        messages: list[dict[str, Any]] = []
        system = row.get(tags["system"])
        if system:
            messages.append({"role": "system", "content": [{"type": "text", "text": str(system)}]})
        for k, turn in enumerate(turns):
            tag = turn.get(tags["role_tag"])
            if tag not in roles:
                raise ValueError(f"turn {k} has the unknown tag {tag!r}; expected one of {sorted(roles)}")
            role, text = roles[tag], str(turn.get(tags["content_tag"]) or "")
            if role == "tool":
                text = _unwrap_tool_response(text)
                prev = messages[-1] if messages else None
                if (
                    prev is None
                    or prev["role"] != "assistant"
                    or TOOL_CALL_START not in prev["content"][-1]["text"]
                ):
                    raise ValueError(f"turn {k} ({tag}) answers no <tool_call>")
            if role == "assistant" and TOOL_CALL_START in text:
                call = parse_tool_calls(text)
                if isinstance(call, ParseError):
                    raise UnreadableCall(
                        f"turn {k}: the tool call cannot be read ({call.kind}): {call.message}"
                    )
            parts: list[dict[str, Any]] = []
            for j, chunk in enumerate(text.split(IMAGE_TOKEN)):
                if j:
                    parts.append({"type": "image"})
                if chunk or (j == 0 and not parts and IMAGE_TOKEN not in text):
                    parts.append({"type": "text", "text": chunk})
            messages.append({"role": role, "content": parts})
        if messages[-1]["role"] != "assistant":
            raise ValueError("the conversation does not end with an assistant turn")
        refs = row.get(tags["images"]) or []
        refs = refs if isinstance(refs, list) else [refs]
        images = [find_image(v, data_file) for v in refs]
        rid = str(row.get("id") or f"{self.name}-{index:06d}")
        final = "".join(p.get("text", "") for p in messages[-1]["content"])
        return sft_record(
            messages,
            images,
            id=rid,
            kind=str(row.get("kind") or "imported"),
            data_source=self.data_source,
            item_id=rid,
            answer=extract_answer(final) or "",
            source_row=index,
        )


#: Every importer by name.
IMPORTERS: dict[str, Importer] = {
    imp.name: imp
    for imp in (
        VerlImporter("codevision-rl", "codevision", "train", "CodeVision release RL parquet (verl layout)"),
        VerlImporter("mvtoolbench", "MVToolBench", "test", "the release's mvtoolbench.parquet"),
        DeepEyesImporter("deepeyes", "deepeyes", "train", "DeepEyes training parquet (verl layout)"),
        VStarImporter("vstar", "V*", "test", "V* Bench (test_questions.jsonl or per-image JSON)"),
        HRBenchImporter("hrbench", "HRBench", "test", "HR-Bench 4K/8K TSV"),
        ThymeRLImporter("thyme-rl", "thyme", "train", "Thyme RL JSON/JSONL"),
        ThymeSFTImporter("thyme-sft", "thyme", "train", "Thyme SFT JSON/JSONL (as items)"),
        ShareGPTImporter(
            "codevision-sft", "codevision", "train", "CodeVision release SFT (LLaMA-Factory ShareGPT)"
        ),
    )
}

#: Importers whose rows become SFT records (``cv-data import`` writes the SFT layout); the others give items.
SFT_IMPORTERS: tuple[str, ...] = tuple(n for n, imp in IMPORTERS.items() if getattr(imp, "kind", "") == "sft")


@dataclass(frozen=True)
class _SFTImportTask:
    importer: str
    root: str
    index: int
    row: Any


def _sft_import_rows(task: _SFTImportTask) -> Any:
    from .sft.io import sft_row
    from .shards import RecordRows

    try:
        rec = IMPORTERS[task.importer].record(task.row, task.index, Path(task.root))  # type: ignore[attr-defined]
    except (KeyError, ValueError, TypeError) as e:
        msg = f"missing column {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
        stages = ((KeyError, "columns"), (ImageNotFound, "image"), (UnreadableCall, "tool_call"))
        stage = next((name for cls, name in stages if isinstance(e, cls)), "load")
        rid = task.row.get("id") if isinstance(task.row, dict) else None
        return RecordRows(error=(stage, rid, msg))
    tools = IMPORTERS[task.importer].tools(task.row, task.index, Path(task.root))  # type: ignore[attr-defined]
    return RecordRows(
        rows=[sft_row(rec, tools=tools)],
        stats={"tool_turns": sum(m["role"] == "tool" for m in rec["messages"])},
    )


def sft_import_spec(name: str, path: str | Path, *, command: str = "") -> Any:
    """The :class:`~cv_data.shards.BuildSpec` that converts an SFT importer's input into the SFT layout."""
    from .sft.io import SFT_LAYOUT, llamafactory_dataset_info
    from .shards import BuildSpec

    imp = IMPORTERS[name]
    root = Path(path).expanduser()

    def tasks(start: int, stop: int) -> Iterator[_SFTImportTask]:
        for i, row in enumerate(imp.rows(root, start, stop), start):
            yield _SFTImportTask(name, str(root), i, row)

    files = [[f.name, f.stat().st_size] for f in imp.files(root)]
    return BuildSpec(
        builder="import",
        num=imp.count(root),
        layout=SFT_LAYOUT,
        tasks=tasks,
        make=_sft_import_rows,
        settings={"importer": name, "input": {"name": root.name, "files": files}},
        command=command or f"cv-data import --from {name} --input {root.name} --out OUT",
        title=f"{imp.description}, converted by cv-data",
        description=(
            f"Trajectories of {root.name} in cv-data's SFT layout: images stored inside (once each), turns as "
            "messages and as ShareGPT columns; the calls were checked with cv_protocol's parser, not re-executed."
        ),
        usage="- cv-train: `dataset: {out}`.\n- LLaMA-Factory: `dataset_dir: {out}`, `dataset: codevision_sft`.",
        extra_files={"dataset_info.json": json.dumps(llamafactory_dataset_info("data"), indent=2) + "\n"},
    )
