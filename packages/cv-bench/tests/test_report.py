from __future__ import annotations

import json
from pathlib import Path

from cv_bench.report import compare_runs, format_table, svg_bar_chart, write_report
from cv_bench.results import ResultStore
from cv_bench.stats import accuracy_table, summarize, tool_stats


def test_accuracy_per_variant_and_avg(make_results) -> None:
    t = accuracy_table(make_results(wrong_variant="rot90"))
    assert t["variants"] == ["source", "rot90", "rot180", "rot270", "flip-h", "flip-v"]
    assert t["accuracy"]["rot90"] == 0.0 and t["accuracy"]["source"] == 100.0
    assert t["avg"] == round(500 / 6, 2)


def test_avg_at_k_is_mean_over_samples(make_results) -> None:
    rs = make_results(n_base=2, wrong_variant=None, samples=2)
    for r in rs:
        if r.sample == 1 and r.variant == "source":
            r.correct = False
    t = accuracy_table(rs)
    assert t["k"] == 2
    assert t["accuracy"]["source"] == 50.0
    assert t["per_sample"] == {0: 100.0, 1: round(100 * 10 / 12, 2)}


def test_tool_stats(make_results) -> None:
    s = tool_stats(make_results(n_base=1))
    # 6 episodes: source 0 calls, rot180 2 calls (1 error, recovered), others 1 call
    assert s["calls_per_item"] == round(6 / 6, 3)
    assert s["exec_error_rate"] == round(100 / 6, 2)
    assert s["recovery_rate"] == 100.0
    assert s["ops_used"] == {"rotate_270": 4, "rotate_180": 1}
    assert s["calls_hist"] == {0: 1, 1: 4, 2: 1}
    assert s["error_kinds"] == {"exception": 1}


def test_table_has_paper_columns(make_results) -> None:
    table = format_table([summarize(make_results(), {"label": "qwen"})])
    header, _, row, ci, n = table.splitlines()
    assert [c.strip() for c in header.split("|")] == [
        "Model",
        "source",
        "rot90",
        "rot180",
        "rot270",
        "flip-h",
        "flip-v",
        "All",
    ]
    assert [c.strip() for c in n.split("|")] == ["n (items)", "4", "4", "4", "4", "4", "4", "24"]
    assert [c.strip() for c in ci.split("|")][2] == "0.0-49.0"  # rot90: 0 of 4, Wilson
    assert [c.strip() for c in row.split("|")] == [
        "qwen",
        "100.0",
        "0.0",
        "100.0",
        "100.0",
        "100.0",
        "100.0",
        "83.3",
    ]


def test_write_report_outputs(run_dir: Path) -> None:
    summary = write_report(run_dir)
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["avg"] == summary["avg"] == round(500 / 6, 2)
    html = (run_dir / "report.html").read_text()
    assert html.count("<svg") == 4
    assert "b0/rot90" in html and "Accuracy per variant" in html


def test_compare_two_runs(run_dir: Path, tmp_path: Path, make_results) -> None:
    other = tmp_path / "other"
    ResultStore(other / "results.jsonl").extend(make_results(model="m2", wrong_variant=None))
    text = compare_runs([run_dir, other])
    lines = text.splitlines()
    assert lines[2].startswith("m ") and lines[3].startswith("m2")
    delta = [c.strip() for c in lines[4].split("|")]
    assert delta[0] == "delta (last - first)" and delta[2] == "100.0" and delta[1] == "0.0"


def test_svg_bar_chart_scales_bars() -> None:
    svg = svg_bar_chart(["a", "b"], [50.0, 100.0], title="t", ymax=100.0, height=240)
    # plot height 240 - 48 - 40 = 152 px: 50 % -> 76 px, 100 % -> 152 px
    assert 'height="76.0"' in svg and 'height="152.0"' in svg
