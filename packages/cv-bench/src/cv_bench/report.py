"""Reports of a run: the paper-style terminal table, ``summary.json`` and a self-contained HTML report.

Every view counts every item of the run: unscored episodes are wrong in the accuracy and listed with their
reason under a visible warning. The HTML report uses inline SVG plots (no JavaScript, no extra dependency)
and links each item to its trajectory page rendered by ``cv_agent``'s viewer.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import ItemResult, load_errors, load_items, load_results
from .stats import Episode, episode_table, ordered_variants, summarize, tool_necessity

RUN_INFO_FILE = "run.json"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"

#: What each tool statistic means (the report shows these beside the values).
TOOL_STAT_DEFINITIONS: dict[str, str] = {
    "calls_per_item": "tool calls per episode (readable calls, run or refused)",
    "tool_use_rate": "% of episodes with at least one tool call",
    "exec_error_rate": "% of tool calls whose code failed or was refused",
    "malformed_per_item": "replies per episode whose tool call could not be read (not counted as calls)",
    "malformed_rate": "% of episodes with such a reply",
    "unreadable": "replies the server could not return (HTTP 500 on a malformed call), fed back as parse errors",
    "recovery_rate": "% of mistakes (failed or unreadable calls) followed later by a successful call",
    "turns_mean": "assistant turns per episode",
}
#: What each process metric means.
PROCESS_DEFINITIONS: dict[str, str] = {
    "op_accuracy": "% of episodes on rotated/flipped items whose final view is upright (corrective op applied)",
    "op_n": "episodes on rotated/flipped items",
    "crop_rate": "% of episodes on items that need a zoom (transform crop) in which the model cropped",
    "crop_episodes": "episodes on items with an answer box in which the model cropped (coverage and IoU are over these)",
    "crop_coverage": "mean share (%) of the answer box inside the model's best crop (input-image pixels)",
    "crop_iou": "mean IoU (%) of the model's best crop with the answer box",
    "latency_s_per_correct": "wall-clock seconds per correct answer (all episodes' time / correct answers)",
    "tokens_per_correct": "generated tokens per correct answer",
    "latency_s_per_episode": "wall-clock seconds per episode",
    "tokens_per_episode": "generated tokens per episode",
}


def _fmt(v: float | None, nd: int = 1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "-" if not ci else f"{ci[0]:.1f}-{ci[1]:.1f}"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def headline_label(k: int) -> str:
    """The headline column's name: ``All`` (one sample per item) or ``Avg@k``.

    Example:
        >>> headline_label(1), headline_label(4)
        ('All', 'Avg@4')
    """
    return "All" if k <= 1 else f"Avg@{k}"


def format_table(summaries: Sequence[dict[str, Any]], *, details: bool | None = None) -> str:
    """The paper's table: one row per run, one column per variant, then the headline (accuracy in %).

    With one run (or ``details=True``) rows follow with each column's 95 % CI and ``n`` (items), and
    pass@k when there are several samples.

    Example:
        >>> print(format_table([{"label": "m", "variants": ["source"], "accuracy": {"source": 50.0}, "avg": 50.0, "k": 1}]))
        Model | source |  All
        ------+--------+-----
        m     |   50.0 | 50.0
    """
    variants = ordered_variants([v for s in summaries for v in s.get("variants", [])])
    k = max((s.get("k") or 1 for s in summaries), default=1)
    header = ["Model", *variants, headline_label(k)]
    rows = [
        [
            str(s.get("label", "run")),
            *(_fmt(s.get("accuracy", {}).get(v)) for v in variants),
            _fmt(s.get("avg")),
        ]
        for s in summaries
    ]
    if details is None:
        details = len(summaries) == 1 and "n" in summaries[0]
    if details:
        s = summaries[0]
        ci = s.get("ci95", {})
        rows.append(["95% CI", *(_ci(ci.get(v)) for v in variants), _ci(s.get("headline", {}).get("ci95"))])
        n = s.get("n", {})
        rows.append(["n (items)", *(str(n.get(v, "-")) for v in variants), str(s.get("n_items", "-"))])
        pk = s.get("pass_at_k")
        if pk:
            by = pk["by_variant"]
            rows.append([f"pass@{pk['k']}", *(_fmt(by.get(v)) for v in variants), _fmt(pk["overall"])])
    return _grid(header, rows)


def format_headline(summary: dict[str, Any]) -> str:
    """One line: the run's headline number with its interval and what it counts.

    Example:
        >>> s = {"headline": {"metric": "accuracy", "value": 50.0, "ci95": [25.4, 74.6], "n_items": 12, "k": 1},
        ...      "n_unscored": 0, "n_episodes": 12}
        >>> format_headline(s)
        'accuracy 50.0 % (95 % CI 25.4-74.6), 12 items, all scored'
    """
    h = summary.get("headline") or {}
    scored = (
        "all scored"
        if not summary.get("n_unscored")
        else f"{summary['n_unscored']} of {summary.get('n_episodes')} episodes UNSCORED (counted as wrong)"
    )
    k = h.get("k") or 1
    items = f"{h.get('n_items')} items" + (f" x {k} samples" if k > 1 else "")
    metric = h.get("metric", "accuracy")
    return f"{metric} {_fmt(h.get('value'))} % (95 % CI {_ci(h.get('ci95'))}), {items}, {scored}"


def format_tool_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Tool statistics, one row per run (definitions: :data:`TOOL_STAT_DEFINITIONS`).

    Example:
        >>> print(format_tool_table([{"label": "m", "tool_stats": {"calls_per_item": 1.0}}]).splitlines()[0])
        Model | calls/item | tool use % | exec err % | malformed/item | recovery % | turns | top ops
    """
    header = [
        "Model",
        "calls/item",
        "tool use %",
        "exec err %",
        "malformed/item",
        "recovery %",
        "turns",
        "top ops",
    ]
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
                _fmt(t.get("malformed_per_item"), 2),
                _fmt(t.get("recovery_rate")),
                _fmt(t.get("turns_mean"), 2),
                ops,
            ]
        )
    return _grid(header, rows)


def format_process_table(summaries: Sequence[dict[str, Any]]) -> str:
    """Process metrics, one row per run (definitions: :data:`PROCESS_DEFINITIONS`).

    Example:
        >>> print(format_process_table([{"label": "m", "process": {}}]).splitlines()[0])
        Model | op acc % | crop % | crop cov % | crop IoU % | s/correct | tokens/correct
    """
    header = ["Model", "op acc %", "crop %", "crop cov %", "crop IoU %", "s/correct", "tokens/correct"]
    rows = []
    for s in summaries:
        p = s.get("process") or {}
        c = p.get("crop") or {}
        rows.append(
            [
                str(s.get("label", "run")),
                _fmt(p.get("op_accuracy")),
                _fmt(c.get("crop_rate")),
                _fmt(c.get("coverage")),
                _fmt(c.get("iou")),
                _fmt(p.get("latency_s_per_correct"), 2),
                _fmt(p.get("tokens_per_correct"), 0),
            ]
        )
    return _grid(header, rows)


def format_necessity(summary: dict[str, Any]) -> str:
    """The tool-necessity table (accuracy with vs without tools per variant), or ``""`` without a baseline."""
    tn = summary.get("tool_necessity")
    if not tn:
        return ""
    cols = [*tn["variants"], "all"]
    by = tn["by_variant"]
    rows = [
        ["with tools", *(_fmt(by[v]["with_tools"]) for v in cols)],
        ["without", *(_fmt(by[v]["without"]) for v in cols)],
        ["gain", *(_fmt(by[v]["gain"]) for v in cols)],
        ["needed / hurt", *(f"{by[v]['needed']}/{by[v]['hurt']}" for v in cols)],
    ]
    return _grid(["Tool necessity", *cols], rows)


def format_summary(summary: dict[str, Any]) -> str:
    """What ``cv-bench eval`` and ``cv-bench report`` print: headline, tables, warnings."""
    parts = [format_headline(summary), "", format_table([summary]), "", format_tool_table([summary]), ""]
    parts.append(format_process_table([summary]))
    nec = format_necessity(summary)
    if nec:
        parts += ["", nec]
    if summary.get("warning"):
        parts += ["", f"WARNING: {summary['warning']}"]
    return "\n".join(parts)


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    p = Path(run_dir) / RUN_INFO_FILE
    return json.loads(p.read_text()) if p.exists() else {}


def run_episodes(run_dir: str | Path) -> list[Episode]:
    """Every episode a run owes (its item set x samples), scored or not."""
    info = read_run_info(run_dir)
    items = load_items(run_dir)
    samples = info.get("samples") if items is not None else None
    episodes, _ = episode_table(load_results(run_dir), items, samples, load_errors(run_dir))
    return episodes


def summarize_run(run_dir: str | Path, baseline: str | Path | None = None) -> dict[str, Any]:
    """Summary of a run directory (``results.jsonl``, ``items.jsonl``, ``errors.jsonl``, ``run.json``).

    Args:
        run_dir: The run.
        baseline: A no-tool run over the same items (default: the ``baseline`` recorded in ``run.json``),
            for the tool-necessity table.
    """
    info = read_run_info(run_dir)
    baseline = baseline if baseline is not None else info.get("baseline")
    return summarize(
        load_results(run_dir),
        info,
        expected=load_items(run_dir),
        errors=load_errors(run_dir),
        baseline=run_episodes(baseline) if baseline else None,
    )


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
body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px} table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px} th{background:#f3f3f3;text-align:left}
td.num{text-align:right} tr.ok td.c{background:#e3f6e3} tr.bad td.c{background:#fbe3e3}
tr.unscored td{background:#fff4e0} td.def{color:#555;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start} .plot{border:1px solid #ddd}
.warning{background:#fff4e0;border:2px solid #e8a33d;color:#7a4a00;padding:10px 14px;border-radius:6px;font-weight:600}
.headline{font-size:28px;font-weight:700;margin:12px 0 4px} .definition{color:#444;font-size:13px;max-width:900px}
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


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else str(v)
    return str(v) if isinstance(v, int) else _fmt(v, 2)


def _stat_rows(values: dict[str, Any], definitions: dict[str, str]) -> list[list[str]]:
    return [
        [_td(k), _td(_value(values[k]), "num"), _td(d, "def")] for k, d in definitions.items() if k in values
    ]


def _counts_table(title: str, counts: dict[Any, Any]) -> str:
    if not counts:
        return ""
    return _html_table([title, "count"], [[_td(k), _td(v, "num")] for k, v in counts.items()])


def _accuracy_html(summary: dict[str, Any], variants: list[str]) -> str:
    k = summary.get("k") or 1
    acc, ci, n = summary["accuracy"], summary.get("ci95", {}), summary.get("n", {})
    rows = [
        [
            _td(summary.get("label")),
            *(_td(_fmt(acc.get(v)), "num") for v in variants),
            _td(_fmt(summary.get("avg")), "num"),
        ],
        [
            _td("95% CI"),
            *(_td(_ci(ci.get(v)), "num") for v in variants),
            _td(_ci(summary.get("headline", {}).get("ci95")), "num"),
        ],
        [_td("n (items)"), *(_td(n.get(v), "num") for v in variants), _td(summary.get("n_items"), "num")],
    ]
    pk = summary.get("pass_at_k")
    if pk:
        by = pk["by_variant"]
        rows.append(
            [
                _td(f"pass@{pk['k']}"),
                *(_td(_fmt(by.get(v)), "num") for v in variants),
                _td(_fmt(pk["overall"]), "num"),
            ]
        )
    return _html_table(["Model", *variants, headline_label(k)], rows)


def _necessity_html(summary: dict[str, Any]) -> str:
    tn = summary.get("tool_necessity")
    if not tn:
        return ""
    cols = [*tn["variants"], "all"]
    by = tn["by_variant"]
    rows = [
        [_td("accuracy with tools (%)"), *(_td(_fmt(by[v]["with_tools"]), "num") for v in cols)],
        [_td("accuracy without tools (%)"), *(_td(_fmt(by[v]["without"]), "num") for v in cols)],
        [_td("gain (points)"), *(_td(_fmt(by[v]["gain"]), "num") for v in cols)],
        [_td("needed: right only with tools"), *(_td(by[v]["needed"], "num") for v in cols)],
        [_td("hurt: right only without"), *(_td(by[v]["hurt"], "num") for v in cols)],
        [_td("n (episodes)"), *(_td(by[v]["n"], "num") for v in cols)],
    ]
    return '<h2 id="necessity">Tool necessity (vs the no-tool baseline)</h2>' + _html_table(["", *cols], rows)


def _process_html(summary: dict[str, Any]) -> str:
    p = dict(summary.get("process") or {})
    crop = p.pop("crop", None) or {}
    flat = {
        **p,
        "crop_rate": crop.get("crop_rate"),
        "crop_coverage": crop.get("coverage"),
        "crop_iou": crop.get("iou"),
    }
    table = _html_table(["metric", "value", "definition"], _stat_rows(flat, PROCESS_DEFINITIONS))
    by_v = p.get("op_accuracy_by_variant") or {}
    if by_v:
        table += "<p>Op accuracy (%) per variant (source: the right op is none)</p>" + _html_table(
            list(by_v), [[_td(_fmt(v), "num") for v in by_v.values()]]
        )
    return '<h2 id="process">Process metrics (scored episodes)</h2>' + table


def _items_html(summary: dict[str, Any], results: Sequence[ItemResult]) -> str:
    rows, classes = [], []
    for r in sorted(results, key=lambda r: (r.item_id, r.sample)):
        link = (
            f'<td><a href="{html.escape(r.trajectory)}">trajectory</a></td>' if r.trajectory else "<td>-</td>"
        )
        rows.append(
            [
                _td(r.item_id),
                _td(r.sample, "num"),
                _td(r.variant),
                _td(r.gt),
                _td(r.pred),
                _td("yes" if r.correct else "no", "c"),
                _td(r.match_method),
                _td(len(r.calls), "num"),
                _td(r.n_errors, "num"),
                _td(r.turns, "num"),
                _td(r.stop_reason),
                link,
            ]
        )
        classes.append("ok" if r.correct else "bad")
    for e in (summary.get("unscored") or {}).get("episodes", []):
        blank = [_td("")] * 3
        rows.append(
            [
                _td(e["item_id"]),
                _td(e["sample"], "num"),
                *blank,
                _td("unscored", "c"),
                *blank,
                _td(""),
                _td(e["reason"]),
                "<td>-</td>",
            ]
        )
        classes.append("unscored")
    header = [
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
    ]
    return _html_table(header, rows, classes)


def _plots(summary: dict[str, Any]) -> list[str]:
    ts = summary.get("tool_stats", {})
    variants = summary.get("variants", [])
    calls, turns, ops = ts.get("calls_hist", {}), ts.get("turns_hist", {}), ts.get("ops_used", {})
    return [
        svg_bar_chart(
            variants,
            [summary["accuracy"].get(v) for v in variants],
            title="Accuracy per variant (%)",
            ymax=100.0,
        ),
        svg_bar_chart(
            [str(k) for k in calls], list(calls.values()), title="Tool calls per episode (episodes)"
        ),
        svg_bar_chart(
            [str(k) for k in turns], list(turns.values()), title="Assistant turns per episode (episodes)"
        ),
        svg_bar_chart(list(ops)[:12], list(ops.values())[:12], title="Ops used (executed calls)"),
    ]


def render_html_report(summary: dict[str, Any], results: Sequence[ItemResult]) -> str:
    """The HTML report of one run as a string (see :func:`write_report`)."""
    ts = summary.get("tool_stats", {})
    run = summary.get("run", {})
    h = summary.get("headline") or {}
    label = html.escape(str(summary.get("label")))
    warning = ""
    if summary.get("warning"):
        warning = f'<p class="warning" id="warning">WARNING: {html.escape(summary["warning"])}</p>'
    macro = ""
    if summary.get("macro_avg") is not None and summary.get("macro_avg") != summary.get("avg"):
        macro = (
            f" The mean of the variant columns (the paper's Avg) is {_fmt(summary['macro_avg'])} %; it differs "
            "because the variants have different numbers of items."
        )
    unscored = summary.get("unscored") or {}
    unscored_html = ""
    if unscored.get("count"):
        unscored_html = '<h2 id="unscored">Unscored episodes (counted as wrong)</h2>' + _counts_table(
            "reason", unscored.get("reasons", {})
        )
    return "".join(
        [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>cv-bench: {label}</title><style>{_CSS}</style></head><body>",
            f"<h1>cv-bench report: {label}</h1>",
            f"<p>suite <b>{html.escape(str(run.get('suite', '?')))}</b>, model "
            f"<code>{html.escape(str(run.get('model', '?')))}</code>{' (no tools)' if run.get('no_tools') else ''}, "
            f"{summary.get('n_items')} items, {summary.get('n_episodes')} episodes ({summary.get('n_scored')} scored).</p>",
            warning,
            f'<p class="headline" id="headline">{html.escape(str(h.get("metric", "accuracy")))} {_fmt(h.get("value"))} % '
            f'<span style="font-size:16px;font-weight:400">(95 % CI {_ci(h.get("ci95"))})</span></p>',
            f'<p class="definition">{html.escape(str(h.get("definition", "")))}{html.escape(macro)}</p>',
            "<h2>Accuracy (%)</h2>",
            _accuracy_html(summary, summary.get("variants", [])),
            unscored_html,
            _necessity_html(summary),
            _process_html(summary),
            '<h2 id="tools">Tool statistics (scored episodes)</h2>',
            _html_table(["statistic", "value", "definition"], _stat_rows(ts, TOOL_STAT_DEFINITIONS)),
            '<div class="plots">',
            _counts_table("op used", ts.get("ops_used", {})),
            _counts_table("error kind", ts.get("error_kinds", {})),
            _counts_table("stop reason", ts.get("stop_reasons", {})),
            "</div>",
            "<h2>Plots</h2><div class='plots'>",
            *_plots(summary),
            "</div>",
            "<h2>Who decided correctness</h2>",
            _counts_table("decided by", summary.get("match_methods", {})),
            "<h2>Items</h2>",
            _items_html(summary, results),
            "</body></html>",
        ]
    )


def write_report(run_dir: str | Path, baseline: str | Path | None = None) -> dict[str, Any]:
    """Rebuild ``summary.json`` and ``report.html`` of a run directory; returns the summary.

    Args:
        run_dir: The run.
        baseline: A no-tool run over the same items for the tool-necessity table (default: the one recorded
            in ``run.json`` by ``cv-bench eval --baseline``).

    Example:
        >>> write_report("/nonexistent-run")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no results.jsonl in /nonexistent-run: run `cv-bench eval --out /nonexistent-run` first
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    summary = summarize_run(run_dir, baseline)
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (run_dir / REPORT_FILE).write_text(render_html_report(summary, results), encoding="utf-8")
    return summary


def _item_keys(run_dir: str | Path) -> set[str]:
    items = load_items(run_dir)
    if items is not None:
        return {it.item_id for it in items}
    return {r.item_id for r in load_results(run_dir)}


def compare_runs(run_dirs: Sequence[str | Path], *, allow_different_items: bool = False) -> str:
    """Side-by-side tables (accuracy, tool and process metrics) of several runs, the delta of the last vs
    the first, and the tool necessity of each tool run against a ``--no-tools`` run among them.

    Rows are labelled by model spec, or by directory name when two runs share a model.

    Raises:
        ValueError: Fewer than two runs, or runs over different items (unless ``allow_different_items``: the
            rows are then flagged with ``*`` and a note says what differs).
    """
    if len(run_dirs) < 2:
        raise ValueError("compare needs at least two run directories")
    keys = [_item_keys(d) for d in run_dirs]
    first_keys = keys[0]
    differs = [k != first_keys for k in keys]
    notes: list[str] = []
    if any(differs):
        detail = "; ".join(
            f"{d}: {len(k)} items ({len(k - first_keys)} not in {run_dirs[0]}, {len(first_keys - k)} missing)"
            for d, k, diff in zip(run_dirs, keys, differs, strict=True)
            if diff
        )
        if not allow_different_items:
            raise ValueError(
                f"the runs cover different items ({detail}); their numbers are not comparable. Evaluate the "
                "same --suite/--size/--seed/--limit, or pass --allow-different-items to compare anyway"
            )
        notes.append(f"* these runs cover different items, so their numbers are NOT comparable: {detail}")
    summaries = [summarize_run(d) for d in run_dirs]
    labels = [s["label"] for s in summaries]
    if len(set(labels)) < len(labels):
        for s, d in zip(summaries, run_dirs, strict=True):
            s["label"] = f"{Path(d).name} ({s['label']})"
    for s, diff in zip(summaries, differs, strict=True):
        if s.get("run", {}).get("no_tools"):
            s["label"] = f"{s['label']} [no tools]"
        if diff:
            s["label"] = f"{s['label']} *"
        if s.get("warning"):
            notes.append(f"WARNING: {s['label']}: {s['warning']}")
    if len({s.get("k") for s in summaries}) > 1:
        notes.append("note: the runs have different numbers of samples per item (k)")
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
    delta = {"label": "delta (last - first)", "variants": variants, "accuracy": delta_acc, "avg": delta_avg}
    rows = [*summaries, {**delta, "k": last.get("k")}]
    parts = [
        format_table(rows, details=False),
        "",
        format_tool_table(summaries),
        "",
        format_process_table(summaries),
    ]
    if not any(differs):
        parts += _necessity_in_compare(run_dirs, summaries)
    if notes:
        parts += ["", *notes]
    return "\n".join(parts)


def _necessity_in_compare(run_dirs: Sequence[str | Path], summaries: Sequence[dict[str, Any]]) -> list[str]:
    """Tool-necessity tables of each tool run against the first no-tool run among them."""
    base = [d for d, s in zip(run_dirs, summaries, strict=True) if s.get("run", {}).get("no_tools")]
    if not base:
        return []
    base_eps = run_episodes(base[0])
    out = []
    for d, s in zip(run_dirs, summaries, strict=True):
        if not s.get("run", {}).get("no_tools"):
            tn = tool_necessity(run_episodes(d), base_eps)
            out += [
                "",
                f"{s['label']} vs the no-tool run {Path(base[0]).name}:",
                format_necessity({"tool_necessity": tn}),
            ]
    return out
