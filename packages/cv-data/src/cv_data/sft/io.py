"""The SFT layout (one parquet row per trajectory, images stored once, read by cv-train, ``datasets`` and
LLaMA-Factory), saving and loading it, and its ShareGPT form (LLaMA-Factory's ``dataset_info.json``)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cv_protocol import DEFAULT_PRESET, IMAGE_TOKEN, Preset, content_text, get_preset

from cv_data._images import decode, to_struct
from cv_data.records import Layout, image_struct_type, iter_parquet_rows
from cv_data.report import BuildReport

from .record import RECORD_FIELDS

__all__ = [
    "SFT_LAYOUT",
    "SHAREGPT_TAGS",
    "iter_sft",
    "llamafactory_dataset_info",
    "load_sft",
    "read_sft",
    "save_sft",
    "sft_row",
    "sharegpt_conversation",
    "sharegpt_tools",
]


def _text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def _file_stem(record_id: str) -> str:
    # Item ids may hold "/" (benchmark variants, "<base>/<variant>"): image file names must not.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", record_id)


def _parquet_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"role": m["role"], "content": [{"type": p["type"], "text": p.get("text")} for p in m["content"]]}
        for m in messages
    ]


#: Our roles -> ShareGPT's ``from`` tags, as the CodeVision release's LLaMA-Factory config names them.
SHAREGPT_TAGS: dict[str, str] = {"user": "human", "assistant": "gpt", "tool": "tool", "system": "system"}


def sharegpt_tools(preset: Preset = DEFAULT_PRESET) -> str:
    """The ShareGPT ``tools`` value of records built with ``preset``: the JSON list of its tool schema, from
    which LLaMA-Factory's Qwen templates write the same ``# Tools`` block into the system prompt as the chat
    template does at inference; ``""`` (no block) for a preset whose system prompt alone describes the tool
    (``tools_in_prompt=False``).

    Example:
        >>> json.loads(sharegpt_tools())[0]["function"]["name"]
        'code_image_tool'
    """
    return json.dumps([preset.tool_schema()]) if preset.tools_in_prompt else ""


def sharegpt_conversation(
    record: dict[str, Any], preset: Preset = DEFAULT_PRESET, *, tools: str | None = None
) -> dict[str, Any]:
    """A record in LLaMA-Factory's ShareGPT form: ``conversations`` (``from`` / ``value``, one ``<image>`` per
    image), ``system`` (the record's own system turn) and ``tools`` (:func:`sharegpt_tools` of ``preset``,
    the preset the record was built with, or ``tools`` as given, e.g. an imported row's own column). Tool
    values are the response texts without ``<tool_response>`` tags: the template adds them.

    Example:
        >>> rec = {"messages": [{"role": "system", "content": [{"type": "text", "text": "S"}]},
        ...                     {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]},
        ...                     {"role": "assistant", "content": [{"type": "text", "text": "<answer>a</answer>"}]}]}
        >>> conv = sharegpt_conversation(rec)
        >>> conv["system"], conv["conversations"][0], json.loads(conv["tools"])[0]["function"]["name"]
        ('S', {'from': 'human', 'value': '<image>q'}, 'code_image_tool')
    """
    msgs = record["messages"]
    system = content_text(msgs[0]["content"]) if msgs and msgs[0]["role"] == "system" else ""
    turns = [
        {"from": SHAREGPT_TAGS[m["role"]], "value": content_text(m["content"], IMAGE_TOKEN)}
        for m in msgs
        if m["role"] != "system"
    ]
    return {
        "conversations": turns,
        "system": system,
        "tools": sharegpt_tools(preset) if tools is None else tools,
    }


def llamafactory_dataset_info(file_name: str, name: str = "codevision_sft") -> dict[str, Any]:
    """LLaMA-Factory's ``dataset_info.json`` entry for our SFT data: the release's ShareGPT tags
    (``from``/``value``, ``human``/``gpt``/``tool``) plus the ``tools`` column; ``file_name`` may be a
    folder of parquet shards.

    Example:
        >>> llamafactory_dataset_info("data")["codevision_sft"]["columns"]["tools"]
        'tools'
    """
    return {
        name: {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {
                "messages": "conversations",
                "images": "images",
                "system": "system",
                "tools": "tools",
            },
            "tags": {
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
                "assistant_tag": "gpt",
                "observation_tag": "tool",
            },
        }
    }


def _sft_schema() -> Any:
    import pyarrow as pa

    s = pa.string()
    part = pa.struct([("type", s), ("text", s)])
    return pa.schema(
        [
            ("id", s),
            ("kind", s),
            ("data_source", s),
            ("item_id", s),
            ("answer", s),
            ("transform", pa.list_(s)),
            ("tool_ops", pa.list_(pa.list_(s))),
            ("messages", pa.list_(pa.struct([("role", s), ("content", pa.list_(part))]))),
            ("images", pa.list_(image_struct_type())),
            ("conversations", pa.list_(pa.struct([("from", s), ("value", s)]))),
            ("system", s),
            ("tools", s),
            ("meta", s),
        ]
    )


#: The SFT layout: one row per trajectory, its images stored once, read by cv-train (``messages`` +
#: ``images``) and by LLaMA-Factory (``conversations`` + ``images`` + ``system`` + ``tools``).
SFT_LAYOUT = Layout(
    "sft",
    {
        "id": "trajectory id",
        "kind": "single_tool / multi_tool / multi_crop / error_recovery / no_tool (or the writer's kind)",
        "data_source": "the item's source",
        "item_id": "the item's id",
        "answer": "ground-truth answer",
        "transform": "the item's transforms",
        "tool_ops": "per tool call, the op names cv-sandbox traced",
        "messages": "chat messages, content as parts ({type: image} placeholders in images order): read by "
        "cv-train, whose chat template renders the images of tool turns",
        "images": "the images (PNG bytes), once each, in placeholder order: the input, then tool outputs",
        "conversations": "the same turns in LLaMA-Factory's ShareGPT form (from: human/gpt/tool, <image> tokens)",
        "system": "the system prompt (ShareGPT)",
        "tools": "JSON list of the preset's tool schema (ShareGPT; LLaMA-Factory writes the # Tools block "
        "from it); empty where the system prompt alone describes the tool",
        "meta": "JSON object of the writer's extra fields",
    },
    _sft_schema,
)


def sft_row(
    record: dict[str, Any], preset: Preset = DEFAULT_PRESET, *, tools: str | None = None
) -> dict[str, Any]:
    """``record`` as a row of :data:`SFT_LAYOUT` (images PNG-encoded once); ``preset`` is the one the record
    was built with (its ``tools`` column, :func:`sharegpt_conversation`)."""
    extra = {k: v for k, v in record.items() if k not in (*RECORD_FIELDS, "messages", "images")}
    return {
        **{k: record.get(k) for k in RECORD_FIELDS},
        "answer": str(record.get("answer", "")),
        "transform": list(record.get("transform") or []),
        "tool_ops": [list(ops) for ops in record.get("tool_ops") or []],
        "messages": _parquet_messages(record["messages"]),
        "images": [to_struct(im) for im in record["images"]],
        **sharegpt_conversation(record, preset, tools=tools),
        "meta": json.dumps(extra, ensure_ascii=False, default=str),
    }


def save_sft(
    records: Iterable[dict[str, Any]],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("parquet",),
    report: BuildReport | None = None,
    preset: Preset | str = DEFAULT_PRESET,
) -> dict[str, Path]:
    """Save a small set of trajectories (for large ones: ``cv-data build-sft``, which streams and shards).

    ``parquet``: ``sft.parquet`` (:data:`SFT_LAYOUT`: images stored once, read by cv-train, ``datasets``
    and, through ``dataset_info.json``, LLaMA-Factory). ``sharegpt``: also ``sharegpt.json`` + ``images/``,
    a second copy of every image for tools that want JSON and files. The report goes to ``report.json``.
    ``preset`` is the one the records were built with (a ``cv_protocol.PRESETS`` name or a Preset): it
    gives the ShareGPT ``tools`` column (:func:`sharegpt_tools`).

    Example:
        >>> import tempfile
        >>> from cv_data import SFTBuildConfig, build_sft
        >>> paths = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), tempfile.mkdtemp())
        >>> sorted(paths)
        ['dataset_info', 'parquet', 'report']
    """
    from cv_data.records import write_parquet

    bad = set(formats) - {"parquet", "sharegpt"}
    if bad:
        raise ValueError(f"unknown formats {sorted(bad)}; use 'parquet' and/or 'sharegpt'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = list(records)
    preset = get_preset(preset)
    paths: dict[str, Path] = {}
    info: dict[str, Any] = {}
    if "parquet" in formats:
        rows = [sft_row(r, preset) for r in records]
        schema = SFT_LAYOUT.schema()
        paths["parquet"] = write_parquet(rows, out / "sft.parquet", SFT_LAYOUT.image_columns, schema=schema)
        info |= llamafactory_dataset_info("sft.parquet")
    if "sharegpt" in formats:
        (out / "images").mkdir(exist_ok=True)
        conv = []
        for r in records:
            names = []
            for k, im in enumerate(r["images"]):
                name = f"images/{_file_stem(str(r['id']))}_{k}.png"
                im.save(out / name, compress_level=1)
                names.append(name)
            conv.append(
                {**sharegpt_conversation(r, preset), "images": names, "id": r["id"], "kind": r.get("kind")}
            )
        (out / "sharegpt.json").write_text(json.dumps(conv, ensure_ascii=False, indent=1))
        info |= llamafactory_dataset_info(
            "sharegpt.json", "codevision_sft_json" if info else "codevision_sft"
        )
        paths["sharegpt"] = out / "sharegpt.json"
    (out / "dataset_info.json").write_text(json.dumps(info, indent=2))
    paths["dataset_info"] = out / "dataset_info.json"
    rep = report if report is not None else BuildReport(total=len(records), ok=len(records))
    paths["report"] = rep.write(out / "report.json")
    return paths


def load_sft(path: str | Path) -> list[dict[str, Any]]:
    """Load trajectories: a ``cv-data build-sft`` folder (``data/*.parquet``), ``sft.parquet`` or a folder
    holding it (:func:`save_sft`), or ``sharegpt.json``; images decoded to PIL, image parts as
    ``{"type": "image"}``, the writer's extra fields restored from ``meta``.

    Example:
        >>> import tempfile
        >>> from cv_data import SFTBuildConfig, build_sft
        >>> d = tempfile.mkdtemp()
        >>> _ = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), d)
        >>> load_sft(d)[0]["messages"][1]["content"][0]
        {'type': 'image'}
    """
    return list(iter_sft(path))


def iter_sft(path: str | Path) -> Iterator[dict[str, Any]]:
    """:func:`load_sft` one record at a time (bounded memory)."""
    p = Path(path)
    if p.is_dir() and not (p / "data").is_dir():
        p = p / "sft.parquet" if (p / "sft.parquet").exists() else p / "sharegpt.json"
    if not p.exists():
        raise FileNotFoundError(
            f"no SFT data at {path}: expected a cv-data build-sft folder, sft.parquet or sharegpt.json"
        )
    if p.suffix == ".json":
        yield from _load_sharegpt(p)
        return
    for row in iter_parquet_rows(p):
        yield _record_from_row(row)


def _record_from_row(row: dict[str, Any]) -> dict[str, Any]:
    msgs = [
        {
            "role": m["role"],
            "content": [
                {"type": "image"} if c["type"] == "image" else _text(c["text"] or "") for c in m["content"]
            ],
        }
        for m in row["messages"]
    ]
    meta = row.pop("meta", None)
    for col in ("conversations", "system", "tools"):  # the ShareGPT view of the same turns
        row.pop(col, None)
    rec = {**row, "messages": msgs, "images": [decode(v) for v in row["images"]]}
    if meta:
        rec |= json.loads(meta)
    return rec


#: Alias of :func:`load_sft` (the name cv-train looks up).
read_sft = load_sft

_ROLES = {v: k for k, v in SHAREGPT_TAGS.items()}


def _load_sharegpt(p: Path) -> list[dict[str, Any]]:
    out = []
    for r in json.loads(p.read_text()):
        turns = r.get("conversations") or r.get("messages") or []
        msgs = [{"role": "system", "content": [_text(r["system"])]}] if r.get("system") else []
        for m in turns:
            role = _ROLES.get(m.get("from"), m.get("from")) if "from" in m else m["role"]
            text = m["value"] if "value" in m else m["content"]
            parts: list[dict[str, Any]] = []
            for k, chunk in enumerate(text.split(IMAGE_TOKEN)):
                if k:
                    parts.append({"type": "image"})
                if chunk:
                    parts.append(_text(chunk))
            msgs.append({"role": role, "content": parts})
        out.append(
            {
                **{
                    k: v
                    for k, v in r.items()
                    if k not in ("messages", "conversations", "system", "tools", "images")
                },
                "messages": msgs,
                "images": [decode(n, p.parent) for n in r["images"]],
            }
        )
    return out
