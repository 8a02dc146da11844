"""Saving and loading SFT records: parquet (``datasets``-readable images) and ShareGPT JSON (LLaMA-Factory)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cv_protocol import IMAGE_TOKEN, content_text

from cv_data._images import decode, to_struct
from cv_data.report import BuildReport

__all__ = ["load_sft", "read_sft", "save_sft"]


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


def save_sft(
    records: Iterable[dict[str, Any]],
    out_dir: str | Path,
    *,
    formats: Sequence[str] = ("parquet", "sharegpt"),
    report: BuildReport | None = None,
) -> dict[str, Path]:
    """Save trajectories as parquet (``sft.parquet``, datasets-readable images) and/or ShareGPT JSON for
    LLaMA-Factory (``sharegpt.json`` + ``images/`` + ``dataset_info.json``); the report goes to ``report.json``.

    Example:
        >>> import tempfile
        >>> from cv_data import SFTBuildConfig, build_sft
        >>> paths = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), tempfile.mkdtemp())
        >>> sorted(paths)
        ['parquet', 'report', 'sharegpt']
    """
    from cv_data.records import write_parquet

    bad = set(formats) - {"parquet", "sharegpt"}
    if bad:
        raise ValueError(f"unknown formats {sorted(bad)}; use 'parquet' and/or 'sharegpt'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = list(records)
    paths: dict[str, Path] = {}
    if "parquet" in formats:
        rows = []
        for r in records:
            row = {k: v for k, v in r.items() if k not in ("messages", "images")}
            row["messages"] = _parquet_messages(r["messages"])
            row["images"] = [to_struct(im) for im in r["images"]]
            rows.append(row)
        paths["parquet"] = write_parquet(rows, out / "sft.parquet", image_columns=["images"])
    if "sharegpt" in formats:
        (out / "images").mkdir(exist_ok=True)
        conv = []
        for r in records:
            names = []
            for k, im in enumerate(r["images"]):
                name = f"images/{_file_stem(str(r['id']))}_{k}.png"
                im.save(out / name, compress_level=1)
                names.append(name)
            msgs = []
            for m in r["messages"]:
                msgs.append({"role": m["role"], "content": content_text(m["content"], IMAGE_TOKEN)})
            conv.append({"messages": msgs, "images": names, "id": r["id"], "kind": r.get("kind")})
        (out / "sharegpt.json").write_text(json.dumps(conv, ensure_ascii=False, indent=1))
        info = {
            "codevision_sft": {
                "file_name": "sharegpt.json",
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {
                    "role_tag": "role",
                    "content_tag": "content",
                    "user_tag": "user",
                    "assistant_tag": "assistant",
                    "observation_tag": "tool",
                    "system_tag": "system",
                },
            }
        }
        (out / "dataset_info.json").write_text(json.dumps(info, indent=2))
        paths["sharegpt"] = out / "sharegpt.json"
    rep = report if report is not None else BuildReport(total=len(records), ok=len(records))
    paths["report"] = rep.write(out / "report.json")
    return paths


def load_sft(path: str | Path) -> list[dict[str, Any]]:
    """Load trajectories saved by :func:`save_sft` (``sft.parquet`` or a folder holding it, or
    ``sharegpt.json``) with images decoded to PIL and image parts as ``{"type": "image"}``.

    Example:
        >>> import tempfile
        >>> from cv_data import SFTBuildConfig, build_sft
        >>> d = tempfile.mkdtemp()
        >>> _ = save_sft(build_sft(SFTBuildConfig(num=1, progress=False)), d)
        >>> load_sft(d)[0]["messages"][1]["content"][0]
        {'type': 'image'}
    """
    p = Path(path)
    if p.is_dir():
        p = p / "sft.parquet" if (p / "sft.parquet").exists() else p / "sharegpt.json"
    if not p.is_file():
        raise FileNotFoundError(
            f"no SFT data at {path}: expected sft.parquet or sharegpt.json written by save_sft"
        )
    if p.suffix == ".json":
        return _load_sharegpt(p)
    import pyarrow.parquet as pq

    out = []
    for row in pq.read_table(p).to_pylist():
        msgs = [
            {
                "role": m["role"],
                "content": [
                    {"type": "image"} if c["type"] == "image" else _text(c["text"] or "")
                    for c in m["content"]
                ],
            }
            for m in row["messages"]
        ]
        row["messages"] = msgs
        row["images"] = [decode(v) for v in row["images"]]
        out.append(row)
    return out


#: Alias of :func:`load_sft` (the name cv-train looks up).
read_sft = load_sft


def _load_sharegpt(p: Path) -> list[dict[str, Any]]:
    out = []
    for r in json.loads(p.read_text()):
        msgs = []
        for m in r["messages"]:
            parts: list[dict[str, Any]] = []
            chunks = m["content"].split("<image>")
            for k, chunk in enumerate(chunks):
                if k:
                    parts.append({"type": "image"})
                if chunk:
                    parts.append(_text(chunk))
            msgs.append({"role": m["role"], "content": parts})
        out.append(
            {
                **{k: v for k, v in r.items() if k not in ("messages", "images")},
                "messages": msgs,
                "images": [decode(n, p.parent) for n in r["images"]],
            }
        )
    return out
