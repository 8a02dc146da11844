"""Loaders for user copies of OCRBench, ChartQAPro, MVToolBench, V* and HRBench (synthetic look-alike files)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from cv_bench import EvalConfig, evaluate, load_results, load_suite
from cv_bench.cli import main
from cv_bench.suites import variant_of
from PIL import Image, ImageDraw


def _img(text: str, size: tuple[int, int] = (160, 90)) -> Image.Image:
    im = Image.new("RGB", size, (250, 250, 245))
    d = ImageDraw.Draw(im)
    d.rectangle((5, 5, size[0] - 30, size[1] - 20), outline=(10, 10, 10))
    d.text((12, 12), text, fill=(0, 0, 0))
    return im


def _png(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def test_ocrbench_parquet_with_answer_lists_expands_to_six_variants(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "image": {"bytes": _png(_img(f"word{i}")), "path": None},
            "question": "What is written?",
            "answer": [f"word{i}", f"WORD{i}"],
            "question_type": "Regular Text Recognition",
            "dataset": "IIIT5K",
        }
        for i in range(2)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ocrbench.parquet")
    items = load_suite("ocrbench", data=tmp_path)
    assert len(items) == 12
    assert [it.meta["variant"] for it in items[:6]] == [
        "source",
        "rot90",
        "rot180",
        "rot270",
        "hflip",
        "vflip",
    ]
    assert items[1].images[0].size == (90, 160) and items[1].transform == ["rotate_90"]
    assert items[0].meta["answers"] == ["word0", "WORD0"] and items[0].task_type == "ocr"
    assert items[0].meta["category"] == "Regular Text Recognition" and items[0].data_source == "OCRBench"
    assert len(load_suite("ocrbench", data=tmp_path, limit=7)) == 7


def test_chartqapro_jsonl_conversation_uses_last_turn(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    _img("chart").save(tmp_path / "images" / "c1.png")
    row = {
        "image": "c1.png",
        "Question": ["What is the max?", "And the min?"],
        "Answer": ["9", "2"],
        "Question Type": "Conversational",
    }
    (tmp_path / "chartqapro.jsonl").write_text(json.dumps(row) + "\n")
    items = load_suite("chartqapro", data=tmp_path / "chartqapro.jsonl")
    assert len(items) == 6 and items[0].question == "And the min?" and items[0].answer == "2"
    assert "answers" not in items[0].meta and items[0].task_type == "chart"


def test_hrbench_tsv_base64_and_option_columns_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image"]
    lines = ["\t".join(header)]
    for i in range(3):
        b64 = base64.b64encode(_png(_img(f"hr{i}", (300, 200)), "JPEG")).decode()
        lines.append(
            "\t".join(
                [str(i), "What color is the sign?", "BCD"[i], "single", "red", "blue", "green", "white", b64]
            )
        )
    (tmp_path / "hr_bench_4k.tsv").write_text("\n".join(lines) + "\n")
    items = load_suite("hrbench", data=tmp_path / "hr_bench_4k.tsv")
    assert [it.choices for it in items][0] == ["red", "blue", "green", "white"] and items[2].answer == "D"
    out = tmp_path / "run"
    assert (
        main(
            [
                "eval",
                "--model",
                "reference",
                "--suite",
                "hrbench",
                "--data",
                str(tmp_path / "hr_bench_4k.tsv"),
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    res = load_results(out)
    assert len(res) == 3 and all(r.correct and r.match_method == "choice" for r in res)
    assert "source" in capsys.readouterr().out


def test_vstar_jsonl_with_image_paths(tmp_path: Path) -> None:
    (tmp_path / "direct_attributes").mkdir()
    _img("v").save(tmp_path / "direct_attributes" / "sa_1.jpg")
    row = {
        "image": "direct_attributes/sa_1.jpg",
        "text": "What is the color of the cup?\n(A) red\n(B) blue\nAnswer with the option's letter.",
        "category": "direct_attributes",
        "question_id": 7,
        "label": "A",
    }
    (tmp_path / "test_questions.jsonl").write_text(json.dumps(row) + "\n")
    items = load_suite("vstar", data=tmp_path)
    assert items[0].id == "7" and items[0].answer == "A" and items[0].question.startswith("What is the color")


def test_mvtoolbench_verl_parquet_reference_scores_100(tmp_path: Path) -> None:
    from cv_data import build_bench, write_verl

    src = build_bench("multi_tool", num=2, seed=5, progress=False)
    write_verl(src, tmp_path / "mvtoolbench.parquet")
    items = load_suite("mvtoolbench", data=tmp_path / "mvtoolbench.parquet")
    assert [it.transform for it in items] == [it.transform for it in src] and items[0].bbox == src[0].bbox
    out = evaluate(
        EvalConfig(
            model="reference",
            suite="mvtoolbench",
            data=str(tmp_path / "mvtoolbench.parquet"),
            out=tmp_path / "run",
            progress=False,
            trajectories="none",
        )
    )
    assert out.summary["overall"] == 100.0 and out.new == 2


def test_generic_mvtoolbench_columns_with_transform_and_bbox(tmp_path: Path) -> None:
    _img("mv", (200, 120)).save(tmp_path / "a.png")
    row = {
        "id": "mv-1",
        "image": "a.png",
        "question": "q?",
        "answer": "x",
        "transform": ["crop", "rotate_90"],
        "bbox": [10, 10, 60, 50],
    }
    (tmp_path / "mv.jsonl").write_text(json.dumps(row) + "\n")
    it = load_suite("mvtoolbench", data=tmp_path / "mv.jsonl")[0]
    assert (
        it.transform == ["crop", "rotate_90"]
        and it.bbox == [10.0, 10.0, 60.0, 50.0]
        and variant_of(it) == "crop+rot90"
    )


def test_missing_columns_and_images_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text(json.dumps({"img_b64": "x", "prompt": "q"}) + "\n")
    with pytest.raises(
        ValueError, match=r"lacks image, question, answer; columns present \['img_b64', 'prompt'\]"
    ):
        load_suite("vstar", data=tmp_path / "bad.jsonl")
    (tmp_path / "gone.jsonl").write_text(
        json.dumps({"image": "nope.png", "question": "q", "answer": "a"}) + "\n"
    )
    with pytest.raises(ValueError, match="nope.png"):
        load_suite("vstar", data=tmp_path / "gone.jsonl")
    with pytest.raises(ValueError, match="needs your copy"):
        load_suite("ocrbench")
    with pytest.raises(FileNotFoundError):
        load_suite("ocrbench", data=tmp_path / "missing.parquet")


def test_items_suite_reads_cv_data_files(tmp_path: Path) -> None:
    from cv_data import build_bench, write_items

    write_items(build_bench("orientation", num=1, progress=False), tmp_path / "x.parquet")
    out = evaluate(
        EvalConfig(
            model="reference",
            suite="items",
            data=str(tmp_path / "x.parquet"),
            out=tmp_path / "run",
            progress=False,
            trajectories="none",
        )
    )
    assert out.new == 6 and out.summary["avg"] == 100.0
