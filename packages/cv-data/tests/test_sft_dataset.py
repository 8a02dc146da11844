"""Streamed SFT builds: images stored once, the ShareGPT columns LLaMA-Factory reads beside the messages
cv-train reads, resumable shards, and the in-memory builder's records read back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from cv_data import SFTBuildConfig, ShardConfig, build_sft, build_sft_dataset, load_sft
from cv_protocol import DEFAULT_PRESET, TOOL_RESPONSE_START, content_text

CFG = {
    "num": 4,
    "seed": 5,
    "kinds": {"multi_tool": 1.0, "error_recovery": 1.0, "no_tool": 1.0},
    "progress": False,
}


def test_images_are_stored_once_and_read_back_unchanged(tmp_path: Path) -> None:
    res = build_sft_dataset(SFTBuildConfig(**CFG), tmp_path / "sft", shards=ShardConfig(records_per_shard=3))
    assert sorted(p.name for p in res.out.iterdir()) == [
        "README.md",
        "data",
        "dataset_info.json",
        "report.json",
    ]
    assert sorted(p.name for p in (res.out / "data").iterdir()) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    want = build_sft(SFTBuildConfig(**CFG))
    got = load_sft(res.out)
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for a, b in zip(want, got, strict=True):
        assert a["messages"] == b["messages"] and a["tool_ops"] == b["tool_ops"]
        assert len(a["images"]) == len(b["images"])  # one stored image per image of the trajectory
        assert all(
            np.array_equal(np.asarray(x), np.asarray(y))
            for x, y in zip(a["images"], b["images"], strict=True)
        )
    stored = sum(
        len(r["images"]) for f in res.files for r in pq.read_table(f, columns=["images"]).to_pylist()
    )
    assert stored == sum(len(r["images"]) for r in want)


def test_sharegpt_columns_follow_the_release_config(tmp_path: Path) -> None:
    res = build_sft_dataset(SFTBuildConfig(**CFG), tmp_path / "sft")
    rows = pq.read_table(res.files[0]).to_pylist()
    for row in rows:
        tags = [t["from"] for t in row["conversations"]]
        assert tags[0] == "human" and tags[-1] == "gpt"
        assert all(t in (("human", "tool") if k % 2 == 0 else ("gpt",)) for k, t in enumerate(tags))
        assert sum(t["value"].count("<image>") for t in row["conversations"]) == len(row["images"])
        assert not any(t["value"].startswith(TOOL_RESPONSE_START) for t in row["conversations"])
        assert row["system"] == content_text(row["messages"][0]["content"]) == DEFAULT_PRESET.system_prompt
        assert json.loads(row["tools"]) == [DEFAULT_PRESET.tool_schema()]
    info = json.loads((res.out / "dataset_info.json").read_text())["codevision_sft"]
    assert info["tags"] == {
        "role_tag": "from",
        "content_tag": "value",
        "user_tag": "human",
        "assistant_tag": "gpt",
        "observation_tag": "tool",
    }
    assert info["columns"] == {
        "messages": "conversations",
        "images": "images",
        "system": "system",
        "tools": "tools",
    }
    card = (res.out / "README.md").read_text()
    assert "Stock TRL `SFTTrainer` does not load these records" in card


def test_sft_shards_resume_and_union(tmp_path: Path) -> None:
    shards = ShardConfig(records_per_shard=2)
    whole = build_sft_dataset(SFTBuildConfig(**CFG), tmp_path / "one", shards=shards)
    a = build_sft_dataset(SFTBuildConfig(**CFG), tmp_path / "two", shards=shards, shard=(0, 2))
    b = build_sft_dataset(SFTBuildConfig(**CFG), tmp_path / "two", shards=shards, shard=(1, 2))
    assert (a.complete, b.complete) == (False, True)
    assert [f.read_bytes() for f in whole.files] == [f.read_bytes() for f in b.files]
    assert (tmp_path / "two" / "dataset_info.json").read_text() == (
        whole.out / "dataset_info.json"
    ).read_text()
