from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cv_bench.cli import main


def test_eval_without_model_explains_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--suite", "orientation"]) == 2
    err = capsys.readouterr().err
    for form in ("reference", "openai:URL#MODEL", "hf:PATH", "vllm:PATH"):
        assert form in err


def test_eval_bad_model_spec_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["eval", "--model", "gpt4", "--out", str(tmp_path)]) == 2
    assert "bad model spec 'gpt4'" in capsys.readouterr().err


def test_specs_are_parsed_once_the_same_way(tmp_path: Path) -> None:
    from cv_bench import EvalConfig
    from cv_bench.cli import _default_out

    with pytest.raises(
        ValueError, match="bad model spec 'openai:http://h/v1': an openai spec needs '#MODEL'"
    ):
        EvalConfig(model="openai:http://h/v1", out=tmp_path)
    with pytest.raises(ValueError, match="unknown kind 'hf'; use 'openai:URL#MODEL'"):
        EvalConfig(model="reference", judge="hf:/judge", out=tmp_path)
    assert _default_out("orientation", "openai:http://h:8000/v1#Qwen/Qwen2.5-VL-7B") == (
        "runs/orientation-Qwen_Qwen2.5-VL-7B"
    )
    assert _default_out("crop-only", "hf:/ckpt/x") == "runs/crop-only-hf__ckpt_x"
    assert _default_out("orientation", "reference") == "runs/orientation-reference"


def test_list_shows_suites_and_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("orientation"))
    assert row.split()[1:4] == ["built-in", "20", "120"]
    for name in (
        "corruption",
        "multi-tool",
        "crop-only",
        "ocrbench",
        "chartqapro",
        "mvtoolbench",
        "vstar",
        "hrbench",
    ):
        assert name in out


def test_report_and_compare_commands(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("Model ") and "source" in line)
    assert [c.strip() for c in header.split("|")][1:3] == ["source", "rot90"] and "calls/item" in out
    assert out.startswith("accuracy 83.3 % (95 % CI 64.2-93.3), 24 items, all scored")
    assert (run_dir / "report.html").exists()
    assert main(["compare", str(run_dir), str(run_dir)]) == 0
    assert "delta (last - first)" in capsys.readouterr().out


def test_report_on_missing_run_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no results.jsonl" in capsys.readouterr().err


def test_python_dash_m_entry_point() -> None:
    p = subprocess.run([sys.executable, "-m", "cv_bench", "eval"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "needs a model" in p.stderr
