"""`cv-data build-rl | build-sft | build-bench`: outputs, reports and one-line errors."""

from __future__ import annotations

from pathlib import Path

from cv_data.cli import main


def test_cli_teacher_points_to_cv_bench_distill(capsys) -> None:
    """Distillation runs the agent loop, which cv-data cannot import: the old flag says where it went."""
    assert (
        main(["build-sft", "--out", "/nonexistent/x", "--teacher", "openai:http://localhost:8000/v1#m"]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cv-bench distill --model openai:URL#MODEL" in err


def test_cli_builds_sft(tmp_path: Path, capsys) -> None:
    """build-rl and build-bench: test_build.py."""
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
    out = tmp_path / "sft"
    assert [p.name for p in (out / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    assert (out / "dataset_info.json").is_file() and not (out / "sharegpt.json").exists()
    assert "build-sft: 2 rows from 2/2 records" in capsys.readouterr().out
    assert main(["build-sft", "--out", str(tmp_path / "x"), "--formats", "parquet,sharegpt"]) == 2
    assert "no longer needed" in capsys.readouterr().err


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
