"""Reports of a run: the paper-style terminal table, ``summary.json`` and a self-contained HTML report.

The HTML report uses inline SVG plots (no JavaScript, no extra dependency) and links each item to its
trajectory page rendered by ``cv_agent``'s viewer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import ItemResult, load_results
from .stats import ordered_variants, summarize

RUN_INFO_FILE = "run.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def format_table(summaries: Sequence[dict[str, Any]]) -> str:
    """The paper's table: one row per run, one column per variant, then ``Avg`` (accuracy in %).

    Example:
        >>> print(format_table([{"label": "m", "variants": ["source"], "accuracy": {"source": 50.0}, "avg": 50.0, "k": 1}]))
        Model | source |  Avg
        ------+--------+-----
        m     |   50.0 | 50.0
    """
    variants = ordered_variants([v for s in summaries for v in s.get("variants", [])])
    k = max((s.get("k") or 1 for s in summaries), default=1)
    avg = "Avg" if k <= 1 else f"Avg@{k}"
    header = ["Model", *variants, avg]
    rows = [
        [
            str(s.get("label", "run")),
            *(_fmt(s.get("accuracy", {}).get(v)) for v in variants),
            _fmt(s.get("avg")),
        ]
        for s in summaries
    ]
    return _grid(header, rows)


def format_tool_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Tool statistics, one row per run.

    Example:
        >>> print(format_tool_table([{"label": "m", "tool_stats": {"calls_per_item": 1.0, "turns_mean": 2.0}}]).splitlines()[0])
        Model | calls/item | tool use % | exec err % | recovery % | turns | top ops
    """
    header = ["Model", "calls/item", "tool use %", "exec err %", "recovery %", "turns", "top ops"]
    rows = []
    for s in summaries:
        t = s.get("tool_stats", {})
        ops = ", ".join(f"{k}:{v}" for k, v in list((t.get("ops_used") or {}).items())[:4]) or "-"
        rows.append(
            [
                str(s.get("label", "run")),
                _fmt(t.get("calls_per_item"), 2),
                _fmt(t.get("tool_use_rate")),
                _fmt(t.get("exec_error_rate")),
                _fmt(t.get("recovery_rate")),
                _fmt(t.get("turns_mean"), 2),
                ops,
            ]
        )
    return _grid(header, rows)


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir) / RUN_INFO_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def summarize_run(run_dir: str | Path) -> dict[str, Any]:
    """Summary of a run directory (reads ``results.jsonl`` and ``run.json``)."""
    return summarize(load_results(run_dir), read_run_info(run_dir))


# ---------------------------------------------------------------- SVG plots (inline, dependency-free)

_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]


def svg_bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    ymax: float | None = None,
    unit: str = "",
    width: int = 560,
    height: int = 260,
) -> str:
    """A titled vertical bar chart as an inline ``<svg>`` string.

    Example:
        >>> svg_bar_chart(["a", "b"], [1, 2], title="t").startswith("<svg")
        True
    """
    vals = [0.0 if v is None else float(v) for v in values]
    top = ymax if ymax is not None else (max(vals, default=0.0) or 1.0)
    pad_l, pad_b, pad_t = 40, 48, 40
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    n = max(len(vals), 1)
    bw = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{html.escape(title)}" class="plot">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" font-family="sans-serif">{html.escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 10}" y2="{pad_t + plot_h}" stroke="#333"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#333"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" text-anchor="end" font-size="10" font-family="sans-serif">{top:g}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" text-anchor="end" font-size="10" font-family="sans-serif">0</text>',
    ]
    for i, (lab, v, raw) in enumerate(zip(labels, vals, values, strict=True)):
        h = 0.0 if top <= 0 else plot_h * min(v, top) / top
        x = pad_l + i * bw + bw * 0.15
        y = pad_t + plot_h - h
        color = _COLORS[i % len(_COLORS)]
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{html.escape(str(lab))}: {_fmt(raw, 2)}{unit}</title></rect>"
        )
        parts.append(
            f'<text x="{x + bw * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10" '
            f'font-family="sans-serif">{raw if isinstance(raw, int) else _fmt(raw, 1)}</text>'
        )
        parts.append(
            f'<text x="{x + bw * 0.35:.1f}" y="{pad_t + plot_h + 14}" text-anchor="middle" font-size="10" '
            f'font-family="sans-serif">{html.escape(str(lab)[:18])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:sans-serif;margin:24px;color:#222} table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px} th{background:#f3f3f3}
td.num{text-align:right} tr.ok td.c{background:#e3f6e3} tr.bad td.c{background:#fbe3e3}
.plots{display:flex;flex-wrap:wrap;gap:16px} .plot{border:1px solid #ddd}
code{font-size:12px}
"""


def _html_table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes else ""
        body.append(f"<tr{cls}>" + "".join(r) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _td(v: Any, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}>{html.escape('' if v is None else str(v))}</td>"


def render_html_report(summary: dict[str, Any], results: Sequence[ItemResult]) -> str:
    """The HTML report of one run as a string (see :func:`write_report`)."""
    ts = summary.get("tool_stats", {})
    variants = summary.get("variants", [])
    plots = [
        svg_bar_chart(
            variants,
            [summary["accuracy"].get(v) for v in variants],
            title="Accuracy per variant (%)",
            ymax=100.0,
        ),
        svg_bar_chart(
            [str(k) for k in ts.get("calls_hist", {})],
            list(ts.get("calls_hist", {}).values()),
            title="Tool calls per episode (episodes)",
        ),
        svg_bar_chart(
            [str(k) for k in ts.get("turns_hist", {})],
            list(ts.get("turns_hist", {}).values()),
            title="Assistant turns per episode (episodes)",
        ),
        svg_bar_chart(
            list(ts.get("ops_used", {}))[:12],
            list(ts.get("ops_used", {}).values())[:12],
            title="Ops used (executed calls)",
        ),
    ]
    acc_rows = [
        [
            _td(summary.get("label")),
            *(_td(_fmt(summary["accuracy"].get(v)), "num") for v in variants),
            _td(_fmt(summary.get("avg")), "num"),
        ]
    ]
    tool_rows = [
        [_td(k), _td(v if not isinstance(v, dict) else json.dumps(v), "num")]
        for k, v in ts.items()
        if k not in ("calls_hist", "turns_hist")
    ]
    item_rows, classes = [], []
    for r in sorted(results, key=lambda r: (r.item_id, r.sample)):
        link = (
            f'<td><a href="{html.escape(r.trajectory)}">trajectory</a></td>' if r.trajectory else "<td>-</td>"
        )
        item_rows.append(
            [
                _td(r.item_id),
                _td(r.sample, "num"),
                _td(r.variant),
                _td(r.gt),
                _td(r.pred),
                _td("yes" if r.correct else "no", "c"),
                _td(r.match_method),
                _td(len(r.tool_calls), "num"),
                _td(r.n_errors, "num"),
                _td(r.turns, "num"),
                _td(r.stop_reason),
                link,
            ]
        )
        classes.append("ok" if r.correct else "bad")
    run = summary.get("run", {})
    k = summary.get("k") or 1
    return "".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>cv-bench: {html.escape(str(summary.get('label')))}</title><style>{_CSS}</style></head><body>",
            f"<h1>cv-bench report: {html.escape(str(summary.get('label')))}</h1>",
            f"<p>suite <b>{html.escape(str(run.get('suite', '?')))}</b>, model <code>{html.escape(str(run.get('model', '?')))}</code>, "
            f"{summary.get('n_items')} items, {summary.get('n_results')} episodes, Avg@{k}, "
            f"overall {_fmt(summary.get('overall'))} %.</p>",
            "<h2>Accuracy (%)</h2>",
            _html_table(["Model", *variants, "Avg" if k <= 1 else f"Avg@{k}"], acc_rows),
            "<h2>Plots</h2><div class='plots'>",
            *plots,
            "</div>",
            "<h2>Tool statistics</h2>",
            _html_table(["stat", "value"], tool_rows),
            "<h2>Who decided correctness</h2>",
            _html_table(
                ["method", "episodes"],
                [[_td(m), _td(n, "num")] for m, n in summary.get("match_methods", {}).items()],
            ),
            "<h2>Items</h2>",
            _html_table(
                [
                    "item",
                    "sample",
                    "variant",
                    "gt",
                    "pred",
                    "correct",
                    "decided by",
                    "calls",
                    "errors",
                    "turns",
                    "stop",
                    "page",
                ],
                item_rows,
                classes,
            ),
            "</body></html>",
        ]
    )


def write_report(run_dir: str | Path) -> dict[str, Any]:
    """Rebuild ``summary.json`` and ``report.html`` of a run directory; returns the summary.

    Example:
        >>> write_report("/nonexistent-run")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no results.jsonl in /nonexistent-run: run `cv-bench eval --out /nonexistent-run` first
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    summary = summarize(results, read_run_info(run_dir))
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (run_dir / REPORT_FILE).write_text(render_html_report(summary, results), encoding="utf-8")
    return summary


def compare_runs(run_dirs: Sequence[str | Path]) -> str:
    """Side-by-side tables (accuracy and tool stats) of several runs, plus the delta of the last vs the first.

    Rows are labelled by model spec, or by directory name when two runs share a model.
    """
    if len(run_dirs) < 2:
        raise ValueError("compare needs at least two run directories")
    summaries = [summarize_run(d) for d in run_dirs]
    labels = [s["label"] for s in summaries]
    if len(set(labels)) < len(labels):
        for s, d in zip(summaries, run_dirs, strict=True):
            s["label"] = f"{Path(d).name} ({s['label']})"
    rows = list(summaries)
    first, last = summaries[0], summaries[-1]
    variants = ordered_variants([v for s in summaries for v in s["variants"]])
    delta_acc = {
        v: (
            round(last["accuracy"][v] - first["accuracy"][v], 2)
            if last["accuracy"].get(v) is not None and first["accuracy"].get(v) is not None
            else None
        )
        for v in variants
    }
    delta_avg = None if last["avg"] is None or first["avg"] is None else round(last["avg"] - first["avg"], 2)
    rows.append(
        {
            "label": "delta (last - first)",
            "variants": variants,
            "accuracy": delta_acc,
            "avg": delta_avg,
            "k": last.get("k"),
        }
    )
    return format_table(rows) + "\n\n" + format_tool_table(summaries)
