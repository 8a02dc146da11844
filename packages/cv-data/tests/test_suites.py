"""The suite registry and the loaders of user copies of OCRBench, ChartQAPro, MVToolBench, V* and HRBench
(synthetic look-alike files)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from cv_data import (
    BUILTIN_SUITES,
    ORIENTATION_VARIANTS,
    SUITES,
    BenchConfig,
    ColumnMap,
    base_id_of,
    build_bench,
    load_suite,
    rows_to_items,
    variant_of,
    write_verl,
)
from cv_data.cli import main
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


# ------------------------------------------------------------------ registry


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_every_builtin_suite_builds_as_registered(name: str) -> None:
    info = SUITES[name]
    items = load_suite(name, size=2)
    assert len(items) == info.n_items(2)
    for it in items:
        v = variant_of(it)
        assert it.meta["variant"] == v and base_id_of(it) == it.meta["base_id"]
        if info.variants:
            assert v in info.variants
            assert it.id == f"{base_id_of(it)}/{v}"
        if name == "orientation":
            assert tuple(it.transform) == ORIENTATION_VARIANTS[v]
        if name in ("multi-tool", "crop-only"):
            assert it.transform[0] == "crop"
    if info.variants:
        assert {variant_of(it) for it in items} == set(info.variants)


def test_variant_names_have_one_spelling() -> None:
    names = {variant_of(it) for it in build_bench("multi-tool", num=12, seed=0, progress=False)}
    assert names <= {"rot90", "rot180", "rot270", "flip-h", "flip-v"} and len(names) > 2
    assert list(ORIENTATION_VARIANTS) == list(SUITES["orientation"].variants)


@pytest.mark.parametrize("name", BUILTIN_SUITES)
def test_cli_build_bench_accepts_every_builtin_suite(name: str, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(["build-bench", "--suite", name, "--num", "1", "--out", str(out), "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] == 1 and report["stats"]["items"] == SUITES[name].n_items(1)


def test_external_suites_are_not_built_and_unknown_suites_are_named() -> None:
    with pytest.raises(ValueError, match=r"read from your copy, not built: load_suite\('ocrbench'"):
        BenchConfig(suite="ocrbench")
    with pytest.raises(ValueError, match="unknown suite 'nope'; known suites"):
        load_suite("nope")
    with pytest.raises(ValueError, match="is built in: drop --data"):
        load_suite("orientation", data="x.parquet")


def test_column_map_accepts_names_alternatives_and_none() -> None:
    cm = ColumnMap(image="img", bbox=None, option_columns=["A", "B"])
    assert (cm.image, cm.bbox, cm.option_columns, cm.question) == (
        ("img",),
        (),
        ("A", "B"),
        ("question", "Question", "text", "query"),
    )
    assert ColumnMap.parse("answer=answers|label,default_task_type=ocr").answer == ("answers", "label")
    with pytest.raises(ValueError, match="ColumnMap.image must name at least one column"):
        ColumnMap(image=())


def test_answer_lists_and_unknown_transforms() -> None:
    im = _img("x")
    rows = [
        {"image": im, "question": "q", "answer": "['a', 'b']"},  # a list written as text (TSV/CSV)
        {"image": im, "question": "q", "answer": "c", "transform": ["rotate_45"]},
    ]
    from cv_data import BuildReport

    report = BuildReport()
    items = rows_to_items(rows, data_source="t", report=report)
    assert [(it.answer, it.meta.get("answers")) for it in items] == [("a", ["a", "b"])]
    assert report.errors[0].index == 1 and "unknown transform(s) ['rotate_45']" in report.errors[0].message
    joined = rows_to_items(rows[:1], ColumnMap(answer_first=False), data_source="t")
    assert joined[0].answer == "a | b" and "answers" not in joined[0].meta


# ------------------------------------------------------------------ external benchmarks


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
    assert [it.meta["variant"] for it in items[:6]] == list(ORIENTATION_VARIANTS)
    assert [it.id for it in items[:2]] == ["ocrbench-000000/source", "ocrbench-000000/rot90"]
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


def write_hrbench_tsv(path: Path, n: int = 3) -> Path:
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image"]
    lines = ["\t".join(header)]
    for i in range(n):
        b64 = base64.b64encode(_png(_img(f"hr{i}", (300, 200)), "JPEG")).decode()
        lines.append(
            "\t".join(
                [str(i), "What color is the sign?", "BCD"[i], "single", "red", "blue", "green", "white", b64]
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_hrbench_tsv_base64_and_option_columns(tmp_path: Path) -> None:
    items = load_suite("hrbench", data=write_hrbench_tsv(tmp_path / "hr_bench_4k.tsv"))
    assert [it.choices for it in items][0] == ["red", "blue", "green", "white"] and items[2].answer == "D"
    assert [it.id for it in items] == ["0", "1", "2"] and items[0].images[0].size == (300, 200)
    assert items[0].meta["category"] == "single" and items[0].data_source == "HRBench"


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


def test_mvtoolbench_verl_parquet(tmp_path: Path) -> None:
    src = build_bench("multi-tool", num=2, seed=5, progress=False)
    write_verl(src, tmp_path / "mvtoolbench.parquet")
    items = load_suite("mvtoolbench", data=tmp_path / "mvtoolbench.parquet")
    assert [it.transform for it in items] == [it.transform for it in src] and items[0].bbox == src[0].bbox
    assert [variant_of(it) for it in items] == [variant_of(it) for it in src]


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
        and base_id_of(it) == "mv-1"
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
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no .parquet/.jsonl/.json/.tsv file"):
        load_suite("vstar", data=tmp_path / "empty")
