from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cv_data import (
    SFT_KINDS,
    SFTBuildConfig,
    build_sft,
    load_sft,
    make_trajectory,
    replay_trajectory,
    save_sft,
)
from cv_protocol import SYSTEM_PROMPT
from cv_sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def records(sandbox) -> list[dict]:
    return [make_trajectory(i, k, seed=3, sandbox=sandbox) for k in SFT_KINDS for i in range(2)]


def _texts(msg: dict) -> str:
    return "".join(p.get("text") or "" for p in msg["content"] if p["type"] == "text")


def test_every_trajectory_replays_to_the_same_images(records, sandbox) -> None:
    for rec in records:
        assert replay_trajectory(rec, sandbox) == [], rec["id"]


def test_message_structure(records) -> None:
    for rec in records:
        msgs = rec["messages"]
        assert msgs[0]["role"] == "system" and _texts(msgs[0]) == SYSTEM_PROMPT
        assert msgs[1]["role"] == "user" and msgs[1]["content"][0] == {"type": "image"}
        n_img = sum(p["type"] == "image" for m in msgs for p in m["content"])
        assert n_img == len(rec["images"])
        last = _texts(msgs[-1])
        assert msgs[-1]["role"] == "assistant" and last.startswith("<think>")
        assert last.endswith(f"<answer>{rec['answer']}</answer>")
        for m in msgs[2:-1]:
            if m["role"] == "assistant":
                t = _texts(m)
                assert (
                    t.startswith("<think>") and "</think>\n<tool_call>\n" in t and t.endswith("</tool_call>")
                )
        tools = [m for m in msgs if m["role"] == "tool"]
        expected = {"no_tool": 0, "single_tool": 1}.get(rec["kind"], 2)
        assert len(tools) == expected


def test_error_recovery_has_real_error_then_fix(records) -> None:
    for rec in (r for r in records if r["kind"] == "error_recovery"):
        tools = [m for m in rec["messages"] if m["role"] == "tool"]
        assert [p["type"] for p in tools[0]["content"]] == ["text"]
        assert _texts(tools[0]).startswith("Execution failed")
        assert _texts(tools[1]).startswith("Execution succeeded")


def test_code_spellings_vary(records) -> None:
    code = " ".join(_texts(m) for r in records for m in r["messages"] if m["role"] == "assistant")
    assert "np." in code and "cv2." in code and "image." in code


def test_deterministic(sandbox) -> None:
    a = make_trajectory(1, "multi_tool", seed=9, sandbox=sandbox)
    b = make_trajectory(1, "multi_tool", seed=9, sandbox=sandbox)
    assert a["messages"] == b["messages"]
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a["images"], b["images"], strict=True)
    )


def test_build_save_load(tmp_path: Path) -> None:
    recs = build_sft(
        SFTBuildConfig(num=3, seed=1, kinds={"error_recovery": 1.0, "single_tool": 1.0}, progress=False)
    )
    paths = save_sft(recs, tmp_path, formats=["parquet", "sharegpt"])
    for src in (tmp_path, paths["sharegpt"]):
        back = load_sft(src)
        assert [r["id"] for r in back] == [r["id"] for r in recs]
        for r, b in zip(recs, back, strict=True):
            assert b["messages"] == r["messages"]
            assert all(
                np.array_equal(np.asarray(x), np.asarray(y))
                for x, y in zip(r["images"], b["images"], strict=True)
            )
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["codevision_sft"]["file_name"] == "sft.parquet"
    assert info["codevision_sft_json"]["file_name"] == "sharegpt.json"
    sg = json.loads(paths["sharegpt"].read_text())
    for conv in sg:
        assert sum(m["value"].count("<image>") for m in conv["conversations"]) == len(conv["images"])
    assert json.loads(paths["report"].read_text())["ok"] == 3


def test_sft_parquet_readable_by_datasets(tmp_path: Path) -> None:
    import datasets
    from PIL import Image

    save_sft(
        build_sft(SFTBuildConfig(num=2, seed=2, kinds={"single_tool": 1.0}, progress=False)),
        tmp_path,
        formats=["parquet"],
    )
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "sft.parquet"), split="train")
    row = ds[0]
    assert all(isinstance(im, Image.Image) for im in row["images"])
    assert row["messages"][0]["role"] == "system"


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown SFT kinds"):
        SFTBuildConfig(kinds={"magic": 1.0})


def test_sandbox_trace_of_successful_calls_equals_corrective_ops(records) -> None:
    geometric = {"rotate_90", "rotate_180", "rotate_270", "flip_horizontal", "flip_vertical", "crop"}
    from cv_protocol import corrective_ops

    for rec in records:
        if rec["kind"] in ("no_tool", "multi_crop"):
            continue
        tools = [m for m in rec["messages"] if m["role"] == "tool"]
        assert len(tools) == len(rec["tool_ops"])
        done = [
            op
            for ops, m in zip(rec["tool_ops"], tools, strict=True)
            if any(p["type"] == "image" for p in m["content"])
            for op in ops
            if op in geometric
        ]
        assert done == corrective_ops(rec["transform"]), rec["id"]


def test_testing_fakes(sandbox) -> None:
    from cv_data.testing import tiny_items, tiny_sft_records

    items = tiny_items(4, seed=1)
    assert len({it.id for it in items}) == 4 and all(it.bbox is not None for it in items)
    recs = tiny_sft_records(2, seed=1, sandbox=sandbox)
    assert all(replay_trajectory(r, sandbox) == [] for r in recs)


def test_replay_catches_changed_pixels_texts_and_lost_images(records, sandbox) -> None:
    rec = next(r for r in records if r["kind"] == "multi_tool")
    changed = dict(rec, images=list(rec["images"]))
    changed["images"][1] = changed["images"][1].transpose(0)  # a mirrored tool output
    assert any("replayed image 1 differs in pixels" in p for p in replay_trajectory(changed, sandbox))
    msgs = [dict(m, content=[dict(p) for p in m["content"]]) for m in rec["messages"]]
    tool = next(m for m in msgs if m["role"] == "tool")
    tool["content"][-1]["text"] = tool["content"][-1]["text"].replace("image 1", "image 7")
    assert any("tool text differs" in p for p in replay_trajectory(dict(rec, messages=msgs), sandbox))
    lost = dict(rec, images=rec["images"][:-1])
    assert replay_trajectory(lost, sandbox) == [
        f"message 4: record has no stored image {len(rec['images']) - 1}"
    ]


def test_sft_record_orders_images_by_placeholder_and_checks_them() -> None:
    from cv_data import sft_record
    from PIL import Image

    a, b = Image.new("RGB", (2, 2)), Image.new("I", (3, 3))
    msgs = [
        {"role": "user", "content": [{"type": "image", "image_index": 1}, {"type": "text", "text": "q"}]},
        {"role": "tool", "content": [{"type": "image", "image_index": 0}, {"type": "text", "text": "ok"}]},
    ]
    meta = dict(id="r", kind="teacher", data_source="s", item_id="i", answer="A")
    rec = sft_record(msgs, [a, b], **meta, correct=True)
    assert [im.size for im in rec["images"]] == [(3, 3), (2, 2)] and rec["images"][0].mode == "RGB"
    assert rec["messages"][0]["content"][0] == {"type": "image"} and rec["correct"] is True
    assert rec["tool_ops"] == [] and rec["transform"] == []
    with pytest.raises(ValueError, match="2 image placeholders but 1 images"):
        sft_record([{"role": "user", "content": [{"type": "image"}, {"type": "image"}]}], [a], **meta)


def test_sharegpt_image_names_survive_ids_with_slashes(tmp_path: Path, records) -> None:
    rec = dict(records[0], id="teacher-orientation-0003/rot90")
    paths = save_sft([rec], tmp_path, formats=["sharegpt"])
    back = load_sft(paths["sharegpt"])
    assert back[0]["id"] == rec["id"] and len(back[0]["images"]) == len(rec["images"])
