"""Evaluation of user copies of external benchmarks (loaders: cv-data's tests/test_suites.py)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from cv_bench import EvalConfig, evaluate, load_results
from cv_bench.cli import main
from PIL import Image, ImageDraw


def _jpeg(text: str) -> bytes:
    im = Image.new("RGB", (300, 200), (250, 250, 245))
    ImageDraw.Draw(im).text((12, 12), text, fill=(0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, format="JPEG")
    return buf.getvalue()


def test_hrbench_tsv_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = ["index", "question", "answer", "category", "A", "B", "C", "D", "image"]
    lines = ["\t".join(header)]
    for i in range(3):
        b64 = base64.b64encode(_jpeg(f"hr{i}")).decode()
        row = [str(i), "What color is the sign?", "BCD"[i], "single", "red", "blue", "green", "white", b64]
        lines.append("\t".join(row))
    (tmp_path / "hr_bench_4k.tsv").write_text("\n".join(lines) + "\n")
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


def test_mvtoolbench_verl_parquet_reference_scores_100(tmp_path: Path) -> None:
    from cv_data import build_bench, write_verl

    write_verl(build_bench("multi-tool", num=2, seed=5, progress=False), tmp_path / "mvtoolbench.parquet")
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
    assert out.summary["avg"] == 100.0 and out.new == 2


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


def test_a_build_bench_folder_is_evaluated(tmp_path: Path) -> None:
    """`cv-data build-bench` writes a sharded folder (verl layout by default); cv-bench evaluates it as is."""
    from cv_data import BenchConfig, ShardConfig, build_bench_dataset

    res = build_bench_dataset(
        BenchConfig("orientation", num=2, sources=["chart"], progress=False),
        tmp_path / "bench",
        shards=ShardConfig(split="test", records_per_shard=1),
    )
    assert len(res.files) == 2
    out = evaluate(
        EvalConfig(
            model="reference",
            suite="items",
            data=str(res.out),
            out=tmp_path / "run",
            progress=False,
            trajectories="none",
        )
    )
    assert out.new == 12 and out.summary["avg"] == 100.0
