"""`cv-data build-rl | build-sft | build-bench`: outputs, reports and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from cv_data import SOURCES, read_items
from cv_data.cli import main


def test_cli_teacher_points_to_cv_bench_distill(capsys) -> None:
    """Distillation runs the agent loop, which cv-data cannot import: the old flag says where it went."""
    assert (
        main(["build-sft", "--out", "/nonexistent/x", "--teacher", "openai:http://localhost:8000/v1#m"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cv-bench distill --model openai:URL#MODEL" in err


def test_cli_builds(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "build-rl",
                "--out",
                str(tmp_path / "rl.parquet"),
                "--num",
                "3",
                "--sources",
                "chart,document",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(read_items(tmp_path / "rl.parquet")) == 3
    assert (tmp_path / "rl.report.json").exists()
    assert (
        main(
            [
                "build-bench",
                "--out",
                str(tmp_path / "b"),
                "--num",
                "1",
                "--suite",
                "orientation",
                "--format",
                "verl",
                "--no-progress",
            ]
        )
        == 0
    )
    assert pq.read_table(tmp_path / "b" / "data.parquet").num_rows == 6
    assert (
        main(
            [
                "build-sft",
                "--out",
                str(tmp_path / "sft"),
                "--num",
                "2",
                "--kinds",
                "no_tool=1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (tmp_path / "sft" / "sft.parquet").exists() and (tmp_path / "sft" / "sharegpt.json").exists()
    assert "wrote 2 trajectories" in capsys.readouterr().out


def test_cli_input_with_bad_records(tmp_path: Path) -> None:
    rows = [{"image": "missing.png", "question": "q", "answer": "a"}]
    item = SOURCES["document"](0, 0, "test")
    item.images[0].save(tmp_path / "doc.png")
    rows.append({"image": "doc.png", "question": item.question, "answer": item.answer})
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "bench.parquet"
    assert (
        main(
            [
                "build-bench",
                "--out",
                str(out),
                "--input",
                str(tmp_path / "t.jsonl"),
                "--input-format",
                "table",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(read_items(out)) == 6
    rep = json.loads((tmp_path / "bench.report.json").read_text())
    assert len(rep["errors"]) == 1 and rep["errors"][0]["stage"] == "image"


def test_cli_errors_are_clear(tmp_path: Path, capsys) -> None:
    assert (
        main(
            [
                "build-bench",
                "--out",
                str(tmp_path / "x"),
                "--input",
                str(tmp_path / "nope.jsonl"),
                "--input-format",
                "table",
            ]
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
