from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from cv_data import (
    BuildReport,
    ColumnMap,
    Item,
    RLBuildConfig,
    build_rl_items,
    load_table,
    read_items,
    read_verl,
    write_items,
    write_verl,
)
from PIL import Image


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return build_rl_items(
        RLBuildConfig(num=3, seed=2, sources={"chart": 1.0, "document": 1.0}, progress=False)
    )


def _same_items(a: list[Item], b: list[Item]) -> None:
    assert [x.id for x in a] == [x.id for x in b]
    for x, y in zip(a, b, strict=True):
        assert x.to_dict() == y.to_dict()
        assert np.array_equal(np.asarray(x.images[0]), np.asarray(y.images[0]))


@pytest.mark.parametrize("name", ["items.parquet", "jsonl_dir"])
def test_items_round_trip(tmp_path: Path, items: list[Item], name: str) -> None:
    p = write_items(items, tmp_path / name)
    _same_items(items, read_items(p))


def test_parquet_readable_by_datasets(tmp_path: Path, items: list[Item]) -> None:
    import datasets

    p = write_items(items, tmp_path / "x.parquet")
    ds = datasets.load_dataset("parquet", data_files=str(p), split="train")
    assert isinstance(ds[0]["images"][0], Image.Image)
    assert ds[0]["id"] == items[0].id


def test_verl_round_trip(tmp_path: Path, items: list[Item]) -> None:
    import pyarrow.parquet as pq

    p = write_verl(items, tmp_path / "verl.parquet", system_prompt="sys")
    row = pq.read_table(p).to_pylist()[0]
    assert row["prompt"][-1]["content"].startswith("<image>")
    assert row["reward_model"] == {"style": "rule", "ground_truth": items[0].answer}
    assert row["extra_info"]["transform"] == items[0].transform
    back = read_verl(p)
    _same_items(items, back)


def _png(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_records_are_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 30), "red").save(tmp_path / "imgs" / "ok.png")
    (tmp_path / "imgs" / "trunc.png").write_bytes(_png("blue")[:60])
    (tmp_path / "imgs" / "junk.png").write_bytes(b"not an image at all")
    rows = [
        {"img": "imgs/ok.png", "q": "colour?", "a": ["red"], "box": [1, 1, 20, 20]},
        {"img": "imgs/trunc.png", "q": "colour?", "a": "blue"},
        {"img": "imgs/junk.png", "q": "colour?", "a": "x"},
        {"img": "imgs/ok.png", "a": "missing question"},
        {"img": "imgs/ok.png", "q": "box?", "a": "y", "box": [10, 10, 400, 20]},
        {"img": "imgs/missing.png", "q": "?", "a": "z"},
        {"img": "imgs/ok.png", "q": "fine", "a": "red"},
    ]
    f = tmp_path / "data.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    report = BuildReport()
    out = load_table(f, ColumnMap(image="img", question="q", answer="a", bbox="box"), report=report)
    assert [it.question for it in out] == ["colour?", "fine"]
    assert out[0].answer == "red" and out[0].bbox == [1.0, 1.0, 20.0, 20.0]
    stages = sorted((e.index, e.stage) for e in report.errors)
    assert stages == [(1, "image"), (2, "image"), (3, "columns"), (4, "bbox"), (5, "image"), (7, "load")]
    msgs = " ".join(e.message for e in report.errors)
    assert "truncated" in msgs and "outside" in msgs and "'q'" in msgs and "not found" in msgs
    assert report.total == 8 and report.ok == 2
    rp = report.write(tmp_path)
    assert json.loads(rp.read_text())["failed"] == 6


def test_column_map_parse() -> None:
    cm = ColumnMap.parse("image=img,question=query,answer=answers,answer_first=false")
    assert (cm.image, cm.question, cm.answer, cm.answer_first) == (("img",), ("query",), ("answers",), False)
    with pytest.raises(ValueError, match="unknown ColumnMap field"):
        ColumnMap.parse("picture=x")


def test_item_validation() -> None:
    im = Image.new("RGB", (10, 10))
    with pytest.raises(ValueError, match="outside"):
        Item(id="a", images=[im], question="q", answer="a", bbox=[0, 0, 11, 30])
    with pytest.raises(ValueError, match="reversed"):
        Item(id="a", images=[im], question="q", answer="a", bbox=[5, 0, 1, 3])
    with pytest.raises(ValueError, match="task_type"):
        Item(id="a", images=[im], question="q", answer="a", task_type="video")


def test_load_hf_with_column_map(tmp_path: Path) -> None:
    import datasets

    feats = datasets.Features(
        {
            "img": datasets.Image(),
            "query": datasets.Value("string"),
            "answers": datasets.List(datasets.Value("string")),
        }
    )
    ds = datasets.Dataset.from_dict(
        {
            "img": [Image.new("RGB", (20, 10), "red")] * 2,
            "query": ["a?", "b?"],
            "answers": [["x", "y"], ["z"]],
        },
        features=feats,
    )
    p = tmp_path / "hf.parquet"
    ds.to_parquet(str(p))
    from cv_data import load_hf

    items = load_hf(
        "parquet",
        "train",
        ColumnMap(image="img", question="query", answer="answers"),
        data_source="mybench",
        data_files=str(p),
    )
    assert [(it.id, it.question, it.answer) for it in items] == [
        ("mybench-000000", "a?", "x"),
        ("mybench-000001", "b?", "z"),
    ]
    assert items[0].images[0].size == (20, 10)
