"""`cv-rewards score`: per-item components, summary table, JSONL output, clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cv_rewards import score_group
from cv_rewards.cli import main, read_rollouts
from cv_rewards.testing import FakeJudgeServer, make_record


@pytest.fixture
def rollouts(tmp_path: Path) -> Path:
    recs = [
        make_record("7", "7", [["contrast"]], prompt_id="a"),
        make_record("8", "7", prompt_id="a"),
        make_record("STOP", "stop", [["rotate_270"]], transform=["rotate_90"], prompt_id="b"),
        make_record("7", "7", [["contrast"]], prompt_id="a"),  # groups need not be consecutive in a file
    ]
    path = tmp_path / "rollouts.jsonl"
    path.write_text("\n".join(json.dumps(r.to_dict()) for r in recs) + "\n\n")
    return path


def test_score_prints_items_and_summary_and_writes_out(rollouts: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sub" / "scores.jsonl"
    assert main(["score", str(rollouts), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p_tool" in text and "rollouts" in text and "accuracy" in text and "0.7500" in text
    assert "match methods" in text and "numeric=3" in text and "text=1" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    recs = read_rollouts(rollouts)
    group_a = score_group([recs[0], recs[1], recs[3]])
    # necessity: tool rollouts 2/2 correct, plain 0/1 -> r_nec 1 -> 0.2
    assert rows[0]["components"]["emergent"] == pytest.approx(0.2) == group_a[0].components["emergent"]
    assert rows[3]["total"] == pytest.approx(group_a[2].total)
    assert rows[2]["components"]["must_use"] == 1.0 and rows[2]["prompt_id"] == "b"


def test_group_key_none_and_reference_variant_and_overrides(rollouts: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.jsonl"
    assert main(["score", str(rollouts), "--group-key", "none", "--out", str(out), "--no-items"]) == 0
    assert json.loads(out.read_text().splitlines()[0])["components"]["emergent"] == 0.0  # no group, paper
    assert "p_tool" not in capsys.readouterr().out  # --no-items: summary only
    assert (
        main(
            ["score", str(rollouts), "--variant", "reference", "--suggested-weight", "0.5", "--out", str(out)]
        )
        == 0
    )
    assert json.loads(out.read_text().splitlines()[0])["components"]["emergent"] == 0.5


def test_judge_options(rollouts: Path, tmp_path: Path, capsys) -> None:
    with FakeJudgeServer(reply="CORRECT") as server:
        assert (
            main(
                [
                    "score",
                    str(rollouts),
                    "--judge-url",
                    server.base_url,
                    "--judge-model",
                    "fake",
                    "--judge-cache",
                    str(tmp_path / "cache.jsonl"),
                    "--no-items",
                ]
            )
            == 0
        )
        assert len(server.requests) == 0  # every answer here is decided by rules
    assert main(["score", str(rollouts), "--judge-url", "http://127.0.0.1:1/v1"]) == 2
    assert "go together" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"completion": "x", "gt_answer": "1"}\nnot json\n', ":2:"),
        ('{"completion": "x"}\n', "lacks required keys"),
        ('{"completion": "x", "gt_answer": "1", "transform": ["crop"]}\n', "bbox"),
        ("\n\n", "holds no rollout records"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, capsys, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["score", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_file_and_bad_group_key(rollouts: Path, capsys) -> None:
    assert main(["score", "/nonexistent/x.jsonl"]) == 2
    assert main(["score", str(rollouts), "--group-key", "colour"]) == 2
    assert "not a RolloutRecord field" in capsys.readouterr().err
    assert main(["score", str(rollouts), "--penalty-weight", "-1"]) == 2


def test_python_dash_m(rollouts: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cv_rewards", "score", str(rollouts), "--no-items"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mean total" in proc.stdout


def test_release_rules_and_necessity_options(tmp_path: Path, capsys) -> None:
    rec = make_record(None, "42", prompt_id="q")
    rec.completion += "\nso it is 42"  # no <answer>: only the release's last-line fallback finds it
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec.to_dict()) + "\n")
    out = tmp_path / "s.jsonl"
    args = ["score", str(path), "--variant", "reference", "--out", str(out), "--no-items"]
    assert (
        main([*args, "--matcher", "release", "--format-check", "release", "--necessity-weight", "0.2"]) == 0
    )
    row = json.loads(out.read_text())
    assert (row["correct"], row["match_method"], row["details"]["format"]) == (True, "release", 0.0)
    assert main(args) == 0
    assert json.loads(out.read_text())["correct"] is False
    assert main(["score", str(path), "--necessity-weight", "0.2"]) == 2  # a reference-only weight
    assert "variant='reference'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", str(path), "--matcher", "fuzzy"])
