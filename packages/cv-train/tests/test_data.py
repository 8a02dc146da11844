"""SFT record and RL item validation: malformed data fails fast, naming the record and the fix."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cv_data.testing import tiny_item, tiny_items
from cv_train.data import (
    DatasetError,
    load_sft_records,
    read_sft_records,
    rl_dataset,
    rl_rows,
    sft_dataset,
    validate_sft_record,
)
from cv_train.sft import fill_image_placeholders
from PIL import Image


def hand_record() -> dict[str, Any]:
    """A hand-made record in cv-data's SFT format: tool call, image tool output, final answer."""
    img0, img1 = Image.new("RGB", (40, 20), "white"), Image.new("RGB", (20, 40), "white")
    return {
        "id": "hand-1",
        "kind": "single-tool",
        "data_source": "test",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is written?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "text",
                        "text": '<think>rotated</think>\n<tool_call>\n{"name": "code_image_tool", "arguments": {"code": "result = image.rotate(90, expand=True)", "description": "d", "image_index": 0}}\n</tool_call>',
                    }
                ],
            },
            {
                "role": "tool",
                "content": [
                    {"type": "image"},
                    {"type": "text", "text": "Execution succeeded. The result is image 1 (20x40 pixels)."},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "<think>now upright</think>\n<answer>HELLO</answer>"}],
            },
        ],
        "images": [img0, img1],
    }


def test_hand_record_and_cv_data_records_are_valid() -> None:
    from cv_data import make_trajectory
    from cv_sandbox import Sandbox

    validate_sft_record(hand_record())
    with Sandbox() as sb:
        records = [
            make_trajectory(i, kind, seed=1, sandbox=sb)
            for i, kind in enumerate(("single_tool", "no_tool", "error_recovery"))
        ]
    for i, r in enumerate(records):
        validate_sft_record(r, i)
        n_tool_images = sum(
            1 for m in r["messages"] if m["role"] == "tool" for p in m["content"] if p["type"] == "image"
        )
        assert len(r["images"]) == 1 + n_tool_images
    err = next(r for r in records if r["kind"] == "error_recovery")
    tool_texts = [
        p["text"] for m in err["messages"] if m["role"] == "tool" for p in m["content"] if p["type"] == "text"
    ]
    assert tool_texts[0].startswith("Execution failed") and tool_texts[1].startswith("Execution succeeded")


def _broken(mutate: Any) -> dict[str, Any]:
    rec = hand_record()
    mutate(rec)
    return rec


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r["images"].pop(), "2 image placeholders in messages but 1 images"),
        (lambda r: r["messages"].pop(), "ends with a tool turn"),
        (
            lambda r: r["messages"][2].update(content=[{"type": "text", "text": "<think>x</think> no call"}]),
            "has no <tool_call>",
        ),
        (lambda r: r["messages"][4].update(content=""), "assistant message 4 is empty"),
        (lambda r: r["messages"][1].update(role="human"), "role 'human'"),
        (
            lambda r: r["messages"][2]["content"].append({"type": "image"}),
            "images belong to user or tool turns",
        ),
        (lambda r: r["messages"][1]["content"].append({"type": "video"}), "type 'video'"),
        (lambda r: r.update(images=["a.png", "b.png"]), "not a PIL image"),
        (lambda r: r.update(messages=[]), "non-empty list"),
        (
            lambda r: r["messages"].insert(2, {"role": "system", "content": "again"}),
            "system message must come first",
        ),
    ],
)
def test_bad_sft_records_fail_fast(mutate: Any, fragment: str) -> None:
    with pytest.raises(DatasetError) as err:
        validate_sft_record(_broken(mutate), 3)
    assert "SFT record 3 (id=hand-1)" in str(err.value) and fragment in str(err.value)


def test_sft_dataset_roundtrip_keeps_order_and_images() -> None:
    ds = sft_dataset([hand_record()])
    row = ds[0]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert [im.size for im in row["images"]] == [(40, 20), (20, 40)]
    filled = fill_image_placeholders(row["messages"], row["images"])
    sizes = [p["image"].size for m in filled for p in m["content"] if p["type"] == "image"]
    assert sizes == [(40, 20), (20, 40)]  # the tool turn's image too, which TRL's own helper skips
    with pytest.raises(DatasetError, match="SFT dataset is empty"):
        sft_dataset([])


def test_fill_image_placeholders_counts() -> None:
    msgs = hand_record()["messages"]
    with pytest.raises(ValueError, match="only 2 image placeholders"):
        fill_image_placeholders(msgs, [1, 2, 3])
    with pytest.raises(ValueError, match="more image placeholders than images"):
        fill_image_placeholders(msgs, [1])


def test_read_sft_records_from_jsonl(tmp_path: Path) -> None:
    rec = hand_record()
    for i, im in enumerate(rec["images"]):
        im.save(tmp_path / f"{i}.png")
    line = {**{k: v for k, v in rec.items() if k != "images"}, "images": ["0.png", "1.png"]}
    (tmp_path / "records.jsonl").write_text(json.dumps(line) + "\n")
    records = load_sft_records(str(tmp_path))
    assert len(records) == 1 and records[0]["images"][1].size == (20, 40)
    (tmp_path / "records.jsonl").write_text(json.dumps({**line, "images": ["missing.png"]}) + "\n")
    with pytest.raises(DatasetError, match="not found next to the records file"):
        read_sft_records(tmp_path)
    (tmp_path / "records.jsonl").write_text("{not json\n")
    with pytest.raises(DatasetError, match="is not valid JSON"):
        read_sft_records(tmp_path / "records.jsonl")
    with pytest.raises(DatasetError, match="does not exist"):
        read_sft_records(tmp_path / "nope")


def test_rl_rows_shape_and_labels() -> None:
    items = tiny_items(6, seed=2)
    rows = rl_rows(items)
    assert len(rows) == 6
    row = rows[0]
    assert row["prompt"][1]["content"][0] == {"type": "image"}
    assert (
        row["answer"] == items[0].answer
        and row["transform"] == items[0].transform
        and row["item_id"] == items[0].id
    )
    ds = rl_dataset(items)
    assert set(ds.column_names) >= {"prompt", "images", "answer", "transform", "bbox", "item_id", "question"}
    assert ds[0]["images"][0].size == items[0].images[0].size


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"answer": ""}, "missing ['answer']"),
        ({"images": []}, "missing ['images']"),
        ({"bbox": [10, 10, 5, 20]}, "x1 < x2"),
        ({"transform": ["crop"], "bbox": None}, "'crop' but no bbox"),
        ({"images": ["x.png"]}, "must be PIL images"),
    ],
)
def test_bad_rl_items_fail_fast(change: dict[str, Any], fragment: str) -> None:
    item = {f.name: getattr(tiny_item(0), f.name) for f in dataclasses.fields(tiny_item(0))}
    item.update(change)
    with pytest.raises(DatasetError, match="RL item 0") as err:
        rl_rows([item])
    assert fragment in str(err.value)


def test_rl_rows_accepts_item_objects() -> None:
    class Item:  # the attribute shape of cv_data.Item
        def __init__(self, d: dict[str, Any]) -> None:
            self.__dict__.update(d)

    d = {f.name: getattr(tiny_item(0), f.name) for f in dataclasses.fields(tiny_item(0))}
    assert rl_rows([Item(d)])[0]["item_id"] == d["id"]
    assert rl_rows([tiny_item(0)])[0]["item_id"] == d["id"]  # and cv_data.Item itself


def test_cv_data_trajectories_and_items_pass_validation(tmp_path: Path) -> None:
    from cv_data import save_sft
    from cv_train.data import load_rl_items

    records = load_sft_records("cv-data", num_synthetic=3, seed=1)
    for i, rec in enumerate(records):
        validate_sft_record(rec, i)
    save_sft(records, tmp_path)
    back = read_sft_records(tmp_path)
    assert [[m["role"] for m in r["messages"]] for r in back] == [
        [m["role"] for m in r["messages"]] for r in records
    ]
    assert [[im.size for im in r["images"]] for r in back] == [
        [im.size for im in r["images"]] for r in records
    ]
    assert len(sft_dataset(back)) == 3
    rows = rl_rows(load_rl_items("cv-data", num_synthetic=3, seed=1))
    assert len(rows) == 3 and all(r["answer"] and r["images"] for r in rows)


def test_release_verl_parquet_and_cv_data_builds_are_rl_datasets(tmp_path: Path) -> None:
    """The CodeVision release's RL parquet (box in `extra_info.bbox_2d`, `transform` keyed by op, its own
    system prompt) and a `cv-data build-rl` folder (verl layout, sharded) both load as RL items."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from cv_data import RLBuildConfig, build_rl, write_verl
    from cv_data.testing import tiny_items
    from cv_train.data import load_rl_items

    items = tiny_items(3, seed=2)
    path = write_verl(items, tmp_path / "train_group_1.parquet", system_prompt="release prompt")
    rows = []
    for row, it in zip(pq.read_table(path).to_pylist(), items, strict=True):
        extra = {k: v for k, v in row["extra_info"].items() if k not in ("tools_kwargs", "need_tools_kwargs")}
        extra["bbox_2d"], extra["bbox"] = extra.pop("bbox"), None
        extra["transform"] = dict.fromkeys(it.transform, 1) if it.transform else None
        rows.append({**row, "extra_info": extra})
    pq.write_table(pa.Table.from_pylist(rows), path)
    got = rl_rows(load_rl_items(str(path)))
    assert [r["bbox"] for r in got] == [it.bbox for it in items]
    assert [r["transform"] for r in got] == [it.transform for it in items]
    assert [r["item_id"] for r in got] == [it.id for it in items]

    build_rl(RLBuildConfig(num=2, sources={"chart": 1.0}, progress=False), tmp_path / "rl")
    assert [r["item_id"] for r in rl_rows(load_rl_items(str(tmp_path / "rl")))] == [
        "chart-s0-000000",
        "chart-s0-000001",
    ]


def test_a_build_sft_folder_is_an_sft_dataset(tmp_path: Path) -> None:
    from cv_data import SFTBuildConfig, build_sft_dataset

    cfg = SFTBuildConfig(num=2, seed=1, kinds={"single_tool": 1.0}, progress=False)
    build_sft_dataset(cfg, tmp_path / "sft")
    records = read_sft_records(tmp_path / "sft")
    assert [r["id"] for r in records] == ["sft-single_tool-s1-000000", "sft-single_tool-s1-000001"]
    assert len(sft_dataset(records)) == 2
