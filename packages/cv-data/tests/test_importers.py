"""Importers: small files written in each published layout (the CodeVision release, MVToolBench, DeepEyes,
V*, HR-Bench, Thyme) convert into our items with the images inside, and bad records are reported."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cv_data import IMPORTERS, InputSpec, read_items, write_verl
from cv_data.cli import main
from cv_data.testing import tiny_items
from PIL import Image, ImageDraw


def _img(text: str, size: tuple[int, int] = (240, 160)) -> Image.Image:
    im = Image.new("RGB", size, (250, 250, 245))
    ImageDraw.Draw(im).text((20, 20), text, fill=(0, 0, 0))
    return im


def _png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _import(name: str, src: Path, out: Path) -> dict:
    assert main(["import", "--from", name, "--input", str(src), "--out", str(out), "--no-progress"]) == 0
    for f in (out / "data").glob("*.parquet"):  # images are stored inside, never as paths
        for row in pq.read_table(f, columns=["images"]).to_pylist():
            assert all(im["bytes"] and im["path"] is None for im in row["images"])
    return json.loads((out / "report.json").read_text())


def release_rl_parquet(path: Path) -> list:
    """The CodeVision release's RL layout: its own system prompt, ``extra_info.bbox_2d``, ``transform`` as a
    dict keyed by op, no tool fields."""
    items = tiny_items(3, seed=4)
    write_verl(items, path, system_prompt="release prompt")
    rows = []
    for row, it in zip(pq.read_table(path).to_pylist(), items, strict=True):
        extra = {k: v for k, v in row["extra_info"].items() if k not in ("tools_kwargs", "need_tools_kwargs")}
        extra["bbox_2d"], extra["bbox"] = extra.pop("bbox"), None
        extra["transform"] = dict.fromkeys(it.transform, 1) if it.transform else None
        rows.append({k: v for k, v in row.items() if k != "agent_name"} | {"extra_info": extra})
    no_answer = {**rows[0]["extra_info"], "answer": None, "id": "no-answer"}
    rows.append({**rows[0], "reward_model": {"style": "rule", "ground_truth": None}, "extra_info": no_answer})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return items


def test_codevision_release_rl_and_mvtoolbench(tmp_path: Path) -> None:
    items = release_rl_parquet(tmp_path / "train_group_1.parquet")
    for name in ("codevision-rl", "mvtoolbench"):
        rep = _import(name, tmp_path / "train_group_1.parquet", tmp_path / name)
        assert (rep["ok"], rep["failed"]) == (3, 1) and "ground_truth is missing" in rep["errors"][0][
            "message"
        ]
        got = read_items(tmp_path / name)
        assert [(g.id, g.transform, g.bbox) for g in got] == [(i.id, i.transform, i.bbox) for i in items]
    card = (tmp_path / "mvtoolbench" / "README.md").read_text()
    assert "cv-data import --from mvtoolbench --input train_group_1.parquet" in card


def _deepeyes_row(k: int, user: str, answer: str) -> dict:
    return {
        "data_source": "vstar" if k == 0 else "thinklite",
        "prompt": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user},
        ],
        "images": [{"bytes": _png(_img(f"d{k}"), "JPEG"), "path": None}],
        "ability": "vqa",
        "env_name": "visual_toolbox_v2",
        "reward_model": {"style": "model", "ground_truth": answer},
        "extra_info": {"index": k, "answer": answer, "split": "train"},
    }


def test_deepeyes_questions_lose_the_peer_tool_instructions(tmp_path: Path) -> None:
    tools = (
        "\nThink first, call **image_zoom_in_tool** if needed, then answer. Format strictly as:  "
        "<think>...</think>  <tool_call>...</tool_call> (if tools needed)  <answer>...</answer> "
    )
    rows = [
        _deepeyes_row(0, "<image>\nWhat is the color of the bag?" + tools, "red"),
        _deepeyes_row(1, "<image>\nSolve step by step.\nQuestion:\nHow many cups are there?", "3"),
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data_0.1.2_visual_toolbox_v2.parquet")
    _import("deepeyes", tmp_path, tmp_path / "out")
    got = read_items(tmp_path / "out")
    assert [g.question for g in got] == ["What is the color of the bag?", "How many cups are there?"]
    assert [g.answer for g in got] == ["red", "3"] and got[0].meta["env_name"] == "visual_toolbox_v2"
    assert got[0].data_source == "vstar" and got[0].transform == []


def test_vstar_jsonl_layout_reads_boxes_from_the_annotations(tmp_path: Path) -> None:
    (tmp_path / "direct_attributes").mkdir()
    _img("cup", (400, 300)).save(tmp_path / "direct_attributes" / "sa_1.jpg")
    ann = {"target_object": ["cup", "glass"], "bbox": [[10, 20, 30, 40], [100, 50, 20, 20]], "question": "?"}
    (tmp_path / "direct_attributes" / "sa_1.json").write_text(json.dumps(ann))
    text = "What is the color of the cup?\n(A) red\n(B) blue\n(C) green\nAnswer with the option's letter."
    rows = [
        {
            "image": "direct_attributes/sa_1.jpg",
            "text": text,
            "category": "direct_attributes",
            "question_id": 0,
            "label": "B",
        },
        {
            "image": "direct_attributes/gone.jpg",
            "text": text,
            "category": "direct_attributes",
            "question_id": 1,
            "label": "A",
        },
    ]
    (tmp_path / "test_questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rep = _import("vstar", tmp_path, tmp_path / "out")
    assert (
        rep["failed"] == 1
        and rep["errors"][0]["stage"] == "image"
        and "gone.jpg" in rep["errors"][0]["message"]
    )
    (it,) = read_items(tmp_path / "out")
    assert (it.id, it.answer, it.choices, it.split) == ("0", "B", ["red", "blue", "green"], "test")
    assert it.bbox == [10.0, 20.0, 120.0, 70.0] and it.transform == ["crop"]
    assert it.meta["boxes"] == [[10.0, 20.0, 40.0, 60.0], [100.0, 50.0, 120.0, 70.0]]


def test_vstar_github_layout_shuffles_options_deterministically(tmp_path: Path) -> None:
    (tmp_path / "relative_position").mkdir()
    for name in ("sa_7", "sa_8"):
        _img(name).save(tmp_path / "relative_position" / f"{name}.jpg")
        ann = {
            "question": "Is the cup left of the dog?",
            "options": ["left", "right"],
            "bbox": [[1, 2, 3, 4]],
            "target_object": ["cup"],
        }
        (tmp_path / "relative_position" / f"{name}.json").write_text(json.dumps(ann))
    items = InputSpec(str(tmp_path), "vstar").read()
    assert [it.id for it in items] == ["relative_position/sa_7", "relative_position/sa_8"]
    for it in items:  # the published first option is the answer wherever it lands
        assert it.choices[ord(it.answer) - ord("A")] == "left" and f"({it.answer}) left" in it.question
    assert items == InputSpec(str(tmp_path), "vstar").read()


def test_hrbench_options_reach_the_question(tmp_path: Path) -> None:
    header = ["index", "question", "answer", "category", "cycle_category", "A", "B", "C", "D", "image"]
    b64 = base64.b64encode(_png(_img("hr"), "JPEG")).decode()
    lines = [
        "\t".join(header),
        "\t".join(["5", "What color is the sign?", "C", "single", "0", "red", "blue", "green", "white", b64]),
    ]
    lines.append("\t".join(["6", "Broken?", "A", "single", "0", "x", "y", "z", "w", "bm90IGFuIGltYWdl" * 20]))
    (tmp_path / "hr_bench_4k.tsv").write_text("\n".join(lines) + "\n")
    rep = _import("hrbench", tmp_path / "hr_bench_4k.tsv", tmp_path / "out")
    assert rep["failed"] == 1 and rep["errors"][0]["stage"] == "image"
    (it,) = read_items(tmp_path / "out")
    assert it.question.splitlines()[1:5] == ["(A) red", "(B) blue", "(C) green", "(D) white"]
    assert (it.id, it.answer, it.choices[2], it.meta["category"]) == ("5", "C", "green", "single")


def test_thyme_rl_and_sft_with_absolute_published_paths(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    _img("orig").save(tmp_path / "images" / "0904.0709_0.jpg")
    rl = [
        {
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "<image>\nWhat color?\n"},
            ],
            "images": ["/mllm_hdd/yfzhang/data/0904.0709_0.jpg"],
            "solution": "black",
            "question": "What color is the frame?",
        },
        {"messages": [], "images": ["/nowhere/missing.jpg"], "solution": "x", "question": "q"},
    ]
    (tmp_path / "rl.json").write_text(json.dumps(rl))
    rep = _import("thyme-rl", tmp_path / "rl.json", tmp_path / "rl")
    assert rep["failed"] == 1 and "missing.jpg" in rep["errors"][0]["message"]
    (it,) = read_items(tmp_path / "rl")
    assert (it.question, it.answer, it.images[0].size) == ("What color is the frame?", "black", (240, 160))
    sft = [
        {
            "image": ["/path/to/0904.0709_0.jpg", "/path/to/processed.jpg"],
            "question": "<image>\nWhich option?\nA. x\nB. y",
            "response": "<think>zoom<code>```python\nimport cv2\n```</code></think><answer> **B. y** </answer>",
        },
        {"image": ["/path/to/0904.0709_0.jpg"], "question": "q", "response": "<think>no answer</think>"},
    ]
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    rep = _import("thyme-sft", tmp_path / "sft.jsonl", tmp_path / "sft")
    assert rep["failed"] == 1 and "no <answer>" in rep["errors"][0]["message"]
    (it,) = read_items(tmp_path / "sft")
    assert (
        it.answer == "B. y"
        and it.question.startswith("Which option?")
        and "not converted" in it.meta["trajectory"]
    )


@pytest.mark.parametrize("name", sorted(IMPORTERS))
def test_every_item_importer_is_an_input_format_of_the_builders(name: str) -> None:
    from cv_data import INPUT_FORMATS
    from cv_data.importers import SFT_IMPORTERS

    assert (name in INPUT_FORMATS) == (name not in SFT_IMPORTERS)


def test_codevision_release_sft_becomes_sft_records(tmp_path: Path) -> None:
    from cv_data import load_sft
    from cv_protocol import render_tool_call

    (tmp_path / "imgs").mkdir()
    _img("in").save(tmp_path / "imgs" / "a.png")
    _img("out", (120, 80)).save(tmp_path / "imgs" / "b.png")
    call = render_tool_call("result = image.rotate(90, expand=True)", "rotate", 0)
    good = {
        "system": "You are an advanced MLLM ...",
        "conversations": [
            {"from": "human", "value": "<image>What is written?"},
            {"from": "gpt", "value": f"<think>sideways</think>\n{call}"},
            {"from": "tool", "value": "<tool_response>\n<image>Execution succeeded.\n</tool_response>"},
            {"from": "gpt", "value": "<think>now upright</think>\n<answer>HELLO</answer>"},
        ],
        "images": ["imgs/a.png", "/home/authors/data/imgs/b.png"],
    }
    mismatch = {**good, "images": ["imgs/a.png"]}
    unreadable = {
        **good,
        "conversations": [good["conversations"][0], {"from": "gpt", "value": "<tool_call>{oops</tool_call>"}],
    }
    (tmp_path / "codevision_sft.json").write_text(json.dumps([good, mismatch, unreadable]))
    info = {
        "codevision_sft": {
            "file_name": "codevision_sft.json",
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "images": "images", "system": "system"},
            "tags": {
                "observation_tag": "tool",
                "assistant_tag": "gpt",
                "role_tag": "from",
                "content_tag": "value",
                "user_tag": "human",
            },
        }
    }
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    rep = _import("codevision-sft", tmp_path, tmp_path / "out")
    assert (rep["ok"], rep["failed"]) == (1, 2)
    assert [(e["index"], e["stage"]) for e in rep["errors"]] == [(1, "load"), (2, "tool_call")]
    assert "2 image placeholders but 1 images" in rep["errors"][0]["message"]
    (rec,) = load_sft(tmp_path / "out")
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert rec["messages"][3]["content"] == [
        {"type": "image"},
        {"type": "text", "text": "Execution succeeded."},
    ]
    assert [im.size for im in rec["images"]] == [(240, 160), (120, 80)] and rec["answer"] == "HELLO"
    assert (tmp_path / "out" / "dataset_info.json").is_file()
    # the release's rows have no tools column (its system prompt describes the tool): none is invented
    (row,) = pq.read_table(tmp_path / "out" / "data").to_pylist()
    assert (row["system"], row["tools"]) == ("You are an advanced MLLM ...", "")
