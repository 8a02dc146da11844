"""Accuracy per variant (Avg@k) and tool-use statistics, computed from result lines only."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from statistics import mean
from typing import Any

from cv_data import ORIENTATION_VARIANTS

from .results import ItemResult

#: Column order of the paper's transformed-benchmark tables; other variants follow in first-seen order.
VARIANT_ORDER: tuple[str, ...] = tuple(ORIENTATION_VARIANTS)


def ordered_variants(variants: Sequence[str]) -> list[str]:
    """Paper order first, then the rest in first-seen order.

    Example:
        >>> ordered_variants(["flip-v", "crop", "source", "crop"])
        ['source', 'flip-v', 'crop']
    """
    seen = list(dict.fromkeys(variants))
    head = [v for v in VARIANT_ORDER if v in seen]
    return head + [v for v in seen if v not in VARIANT_ORDER]


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def accuracy_table(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Accuracy (percent) per variant and their average, as Avg@k over the samples present.

    Avg@k is the mean over samples of each sample's accuracy; with every sample complete this equals the
    mean over all ``(item, sample)`` pairs. ``avg`` is the mean of the variant accuracies (the paper's "Avg"
    column); ``overall`` is the micro average over all pairs.

    Example:
        >>> from cv_bench.results import ItemResult
        >>> r = [ItemResult("a", 0, "s", "source", "a", "x", "q", "1", "1", True, "numeric"),
        ...      ItemResult("b", 0, "s", "rot90", "a", "x", "q", "1", "2", False, "numeric")]
        >>> accuracy_table(r)["accuracy"]
        {'source': 100.0, 'rot90': 0.0}
    """
    by_variant: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in results:
        by_variant[r.variant][r.sample].append(r.correct)
    variants = ordered_variants([r.variant for r in results])
    acc: dict[str, float | None] = {}
    for v in variants:
        per_sample = [100.0 * sum(c) / len(c) for c in by_variant[v].values() if c]
        acc[v] = round(mean(per_sample), 2) if per_sample else None
    vals = [a for a in acc.values() if a is not None]
    samples = sorted({r.sample for r in results})
    per_sample_acc = {
        s: _pct(sum(r.correct for r in results if r.sample == s), sum(1 for r in results if r.sample == s))
        for s in samples
    }
    return {
        "variants": variants,
        "accuracy": acc,
        "avg": round(mean(vals), 2) if vals else None,
        "overall": _pct(sum(r.correct for r in results), len(results)),
        "k": len(samples),
        "per_sample": per_sample_acc,
    }


def tool_stats(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Tool-use statistics over episodes.

    Returns a dict with ``calls_per_item`` (mean tool calls per episode), ``tool_use_rate`` (share of
    episodes with at least one call, %), ``exec_error_rate`` (failed calls / calls, %), ``recovery_rate``
    (failed calls followed later in the episode by a successful call / failed calls, %; ``None`` without
    errors), ``turns_mean``, ``ops_used`` (op name -> count over all calls), ``error_kinds``,
    ``calls_hist`` and ``turns_hist`` (value -> episodes) and ``stop_reasons``.

    Example:
        >>> from cv_bench.results import ItemResult, ToolCallSummary as T
        >>> r = ItemResult("a", 0, "s", "rot90", "a", "x", "q", "1", "1", True, "numeric", turns=3,
        ...                tool_calls=[T(False, "exception"), T(True, None, ["rotate_270"])])
        >>> s = tool_stats([r]); (s["calls_per_item"], s["exec_error_rate"], s["recovery_rate"])
        (2.0, 50.0, 100.0)
    """
    n = len(results)
    calls = [c for r in results for c in r.tool_calls]
    errors = sum(r.n_errors for r in results)
    ops = Counter(op for c in calls for op in c.ops)
    return {
        "episodes": n,
        "calls_per_item": round(len(calls) / n, 3) if n else None,
        "tool_use_rate": _pct(sum(1 for r in results if r.tool_calls), n),
        "exec_error_rate": _pct(errors, len(calls)),
        "recovery_rate": _pct(sum(r.n_recovered for r in results), errors),
        "turns_mean": round(mean(r.turns for r in results), 3) if n else None,
        "ops_used": dict(ops.most_common()),
        "error_kinds": dict(Counter(c.error_kind or "unknown" for c in calls if not c.ok).most_common()),
        "calls_hist": dict(sorted(Counter(len(r.tool_calls) for r in results).items())),
        "turns_hist": dict(sorted(Counter(r.turns for r in results).items())),
        "stop_reasons": dict(Counter(r.stop_reason or "unknown" for r in results).most_common()),
    }


def summarize(results: Sequence[ItemResult], run_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the reports show, as one JSON-serialisable dict (written as ``summary.json``).

    Args:
        results: Result lines of one run.
        run_info: The run's ``run.json`` (model, suite, config), copied under ``run``.

    Example:
        >>> summarize([])["n_results"]
        0
    """
    info = dict(run_info or {})
    by_source: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_source[r.data_source or "unknown"].append(r.correct)
    models = list(dict.fromkeys(r.model for r in results if r.model))
    return {
        "label": info.get("label") or info.get("model") or (models[0] if models else "run"),
        "run": info,
        "n_items": len({r.item_id for r in results}),
        "n_results": len(results),
        **accuracy_table(results),
        "by_source": {k: _pct(sum(v), len(v)) for k, v in sorted(by_source.items())},
        "match_methods": dict(Counter(r.match_method or "none" for r in results).most_common()),
        "tool_stats": tool_stats(results),
    }
