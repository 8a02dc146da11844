"""What a run's numbers mean, computed from result lines and the run's item set only.

Every item of the run counts: an episode that could not be scored (the harness failed: server error,
context too long, a crash) is wrong in every accuracy and listed with its reason. Accuracy comes with a 95 %
confidence interval (Wilson score for one sample per item; a bootstrap over items for ``k`` samples) and the
per-variant ``n``. Process metrics (tool use, op accuracy, crop faithfulness, recovery, cost per correct
answer) describe the scored episodes.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import mean
from typing import Any

from cv_data import ORIENTATION_VARIANTS
from cv_protocol import IDENTITY_ORIENTATION, ORIENTATION_OPS, corrective_ops, orientation_of

from .results import ExpectedItem, ItemResult

#: Column order of the paper's transformed-benchmark tables; other variants follow in first-seen order.
VARIANT_ORDER: tuple[str, ...] = tuple(ORIENTATION_VARIANTS)
#: Bootstrap resamples for confidence intervals with several samples per item.
BOOTSTRAP_RESAMPLES = 1000
#: Why an episode without a result and without a logged error is unscored.
NOT_RUN = "not run (the run was interrupted or is still going)"


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


def wilson_interval(correct: float, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion, in percent (``None`` for ``n == 0``).

    Example:
        >>> wilson_interval(6, 12)
        (25.38, 74.62)
        >>> wilson_interval(12, 12)
        (75.75, 100.0)
    """
    if n <= 0:
        return None
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(100 * max(0.0, centre - half), 2), round(100 * min(1.0, centre + half), 2)


def bootstrap_interval(
    values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of a mean, in percent, resampling ``values`` (one per item).

    Deterministic (seeded), so a report rebuilt from the same results shows the same interval.

    Example:
        >>> bootstrap_interval([1.0, 1.0, 1.0])
        (100.0, 100.0)
    """
    n = len(values)
    if n == 0:
        return None
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    lo, hi = means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]
    return round(100 * lo, 2), round(100 * hi, 2)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one item with ``c`` correct among ``n`` samples (Chen et al., 2021).

    Example:
        >>> pass_at_k(4, 1, 1), pass_at_k(4, 1, 4), pass_at_k(4, 0, 2)
        (0.25, 1.0, 0.0)
    """
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


@dataclass
class Episode:
    """One ``(item, sample)`` the run owes: its result, or why it has none.

    Attributes:
        item: The item (from the run's item set).
        sample: Sample index.
        result: The scored result, or ``None`` when the episode is unscored.
        reason: Why it is unscored (the last harness error, or :data:`NOT_RUN`).
    """

    item: ExpectedItem
    sample: int
    result: ItemResult | None = None
    reason: str | None = None

    @property
    def correct(self) -> bool:
        """Scored and right; an unscored episode is wrong."""
        return self.result is not None and self.result.correct


def expected_from_results(results: Iterable[ItemResult]) -> list[ExpectedItem]:
    """The item set implied by result lines (for runs made before the item set was written)."""
    seen: dict[str, ExpectedItem] = {}
    for r in results:
        seen.setdefault(r.item_id, ExpectedItem(r.item_id, r.variant, r.base_id, r.data_source))
    return list(seen.values())


def episode_table(
    results: Sequence[ItemResult],
    expected: Sequence[ExpectedItem] | None = None,
    samples: int | None = None,
    errors: dict[tuple[str, int], str] | None = None,
) -> tuple[list[Episode], int]:
    """Every episode the run owes (items x samples), with its result or its reason; and how many result
    lines lie outside the item set (ignored: left by an earlier run of the directory with more items).

    Example:
        >>> from cv_bench.results import ItemResult
        >>> r = [ItemResult("a", 0, "s", "source", "a", "x", "q", "1", "1", True, "numeric")]
        >>> eps, extra = episode_table(r, [ExpectedItem("a", "source"), ExpectedItem("b", "rot90")], 1,
        ...                            {("b", 0): "HTTP 400: context too long"})
        >>> [(e.item.item_id, e.correct, e.reason) for e in eps], extra
        ([('a', True, None), ('b', False, 'HTTP 400: context too long')], 0)
    """
    errors = errors or {}
    if expected is None:
        expected = expected_from_results(results)
        # Episodes that only ever failed are items too.
        known = {e.item_id for e in expected}
        expected = [
            *expected,
            *(ExpectedItem(i) for i in dict.fromkeys(k[0] for k in errors) if i not in known),
        ]
    k = samples or max([r.sample + 1 for r in results] + [s + 1 for _, s in errors] + [1])
    by_key = {r.key: r for r in results}
    episodes = []
    for it in expected:
        for s in range(k):
            r = by_key.pop((it.item_id, s), None)
            reason = None if r is not None else errors.get((it.item_id, s), NOT_RUN)
            episodes.append(Episode(it, s, r, reason))
    return episodes, len(by_key)


def _by_variant(episodes: Sequence[Episode]) -> dict[str, list[Episode]]:
    groups: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        groups[e.item.variant or "all"].append(e)
    return {v: groups[v] for v in ordered_variants(list(groups))}


def _item_means(episodes: Sequence[Episode]) -> list[float]:
    per_item: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        per_item[e.item.item_id].append(e.correct)
    return [sum(v) / len(v) for v in per_item.values()]


def _interval(episodes: Sequence[Episode], k: int) -> tuple[float, float] | None:
    if k <= 1:
        return wilson_interval(sum(e.correct for e in episodes), len(episodes))
    return bootstrap_interval(_item_means(episodes))


def _pass_at_k(episodes: Sequence[Episode], k: int) -> float | None:
    per_item: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        per_item[e.item.item_id].append(e.correct)
    vals = [pass_at_k(len(v), sum(v), k) for v in per_item.values()]
    return round(100 * mean(vals), 2) if vals else None


def headline_definition(k: int, n_items: int) -> str:
    """What the headline number means, for the reports.

    Example:
        >>> headline_definition(1, 12).split(":")[0]
        'Accuracy'
    """
    counted = (
        f"over all {n_items} items of the run; an item that could not be scored counts as wrong"
        if k <= 1
        else f"over all {n_items} items x {k} samples; an episode that could not be scored counts as wrong"
    )
    if k <= 1:
        return f"Accuracy: correct answers / items, {counted}. 95 % CI: Wilson score interval."
    return (
        f"Avg@{k}: the mean over the {k} samples of each sample's accuracy, {counted}. "
        f"95 % CI: bootstrap over items ({BOOTSTRAP_RESAMPLES} resamples)."
    )


def accuracy_table(
    results: Sequence[ItemResult],
    *,
    expected: Sequence[ExpectedItem] | None = None,
    samples: int | None = None,
    errors: dict[tuple[str, int], str] | None = None,
) -> dict[str, Any]:
    """Accuracy (percent) per variant and over the run, every item counted (unscored = wrong).

    ``accuracy[v]`` is Avg@k over the items of variant ``v``; ``avg`` is the run's headline number (Avg@k
    over every item, see :func:`headline_definition`); ``macro_avg`` is the mean of the variant columns (the
    paper's "Avg", equal to ``avg`` when every variant has the same number of items).

    Example:
        >>> from cv_bench.results import ItemResult
        >>> r = [ItemResult("a", 0, "s", "source", "a", "x", "q", "1", "1", True, "numeric"),
        ...      ItemResult("b", 0, "s", "rot90", "a", "x", "q", "1", "2", False, "numeric")]
        >>> t = accuracy_table(r)
        >>> t["accuracy"], t["n"], t["avg"]
        ({'source': 100.0, 'rot90': 0.0}, {'source': 1, 'rot90': 1}, 50.0)
    """
    episodes, _ = episode_table(results, expected, samples, errors)
    return _accuracy(episodes)


def _accuracy(episodes: Sequence[Episode]) -> dict[str, Any]:
    k = max((e.sample + 1 for e in episodes), default=1)
    groups = _by_variant(episodes)
    acc = {v: _pct(sum(e.correct for e in eps), len(eps)) for v, eps in groups.items()}
    n_items = len({e.item.item_id for e in episodes})
    vals = [a for a in acc.values() if a is not None]
    headline = _pct(sum(e.correct for e in episodes), len(episodes))
    per_sample = {
        s: _pct(sum(e.correct for e in episodes if e.sample == s), sum(1 for e in episodes if e.sample == s))
        for s in range(k)
    }
    out: dict[str, Any] = {
        "variants": list(groups),
        "accuracy": acc,
        "n": {v: len({e.item.item_id for e in eps}) for v, eps in groups.items()},
        "ci95": {v: _interval(eps, k) for v, eps in groups.items()},
        "avg": headline,
        "macro_avg": round(mean(vals), 2) if vals else None,
        "k": k,
        "per_sample": per_sample,
        "headline": {
            "metric": "accuracy" if k <= 1 else f"Avg@{k}",
            "value": headline,
            "ci95": _interval(episodes, k),
            "n_items": n_items,
            "k": k,
            "definition": headline_definition(k, n_items),
        },
        "pass_at_k": None,
    }
    if k > 1:
        out["pass_at_k"] = {
            "k": k,
            "overall": _pass_at_k(episodes, k),
            "by_variant": {v: _pass_at_k(eps, k) for v, eps in groups.items()},
        }
    return out


def unscored_summary(episodes: Sequence[Episode], *, listed: int = 200) -> dict[str, Any]:
    """Unscored episodes: how many, why (reason -> count) and the first ``listed`` of them."""
    bad = [e for e in episodes if e.result is None]
    reasons = Counter(_short(e.reason or NOT_RUN) for e in bad)
    return {
        "count": len(bad),
        "reasons": dict(reasons.most_common()),
        "episodes": [
            {"item_id": e.item.item_id, "sample": e.sample, "reason": e.reason} for e in bad[:listed]
        ],
    }


def _short(reason: str, limit: int = 160) -> str:
    first = reason.strip().splitlines()[0] if reason.strip() else reason
    first = first.removeprefix("HarnessError: ")  # every unscored episode is one
    return first if len(first) <= limit else first[: limit - 3] + "..."


def tool_stats(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Tool-use statistics over scored episodes.

    A reply whose tool call could not be read (by the parser, or by the server) is not a tool call: it is
    counted under ``malformed`` (a random model's babble shows as malformed output, not as tool use).

    Returns a dict with ``calls_per_item`` (mean tool calls per episode), ``tool_use_rate`` (share of
    episodes with at least one call, %), ``exec_error_rate`` (failed calls / calls, %), ``malformed_per_item``
    (unreadable calls per episode), ``malformed_rate`` (share of episodes with one, %), ``unreadable``
    (replies the server could not return), ``recovery_rate`` (mistakes, failed or unreadable calls, followed
    later in the episode by a successful call / mistakes, %; ``None`` without mistakes), ``turns_mean``,
    ``ops_used`` (op name -> count over all calls), ``error_kinds``, ``calls_hist`` and ``turns_hist``
    (value -> episodes) and ``stop_reasons``.

    Example:
        >>> from cv_bench.results import ItemResult, ToolCallSummary as T
        >>> r = ItemResult("a", 0, "s", "rot90", "a", "x", "q", "1", "1", True, "numeric", turns=3,
        ...                tool_calls=[T(False, "parse"), T(False, "exception"), T(True, None, ["rotate_270"])])
        >>> s = tool_stats([r]); (s["calls_per_item"], s["exec_error_rate"], s["malformed_per_item"], s["recovery_rate"])
        (2.0, 50.0, 1.0, 100.0)
    """
    n = len(results)
    calls = [c for r in results for c in r.calls]
    errors = sum(r.n_errors for r in results)
    unread = sum(r.n_unread for r in results)
    mistakes = sum(1 for r in results for c in r.tool_calls if not c.ok)
    ops = Counter(op for c in calls for op in c.ops)
    return {
        "episodes": n,
        "calls_per_item": round(len(calls) / n, 3) if n else None,
        "tool_use_rate": _pct(sum(1 for r in results if r.calls), n),
        "exec_error_rate": _pct(errors, len(calls)),
        "malformed_per_item": round(unread / n, 3) if n else None,
        "malformed_rate": _pct(sum(1 for r in results if r.n_unread), n),
        "unreadable": sum(1 for r in results for c in r.tool_calls if c.error_kind == "unreadable"),
        "recovery_rate": _pct(sum(r.n_recovered for r in results), mistakes),
        "turns_mean": round(mean(r.turns for r in results), 3) if n else None,
        "ops_used": dict(ops.most_common()),
        "error_kinds": dict(
            Counter(
                c.error_kind or "unknown" for r in results for c in r.tool_calls if not c.ok
            ).most_common()
        ),
        "calls_hist": dict(sorted(Counter(len(r.calls) for r in results).items())),
        "turns_hist": dict(sorted(Counter(r.turns for r in results).items())),
        "stop_reasons": dict(Counter(r.stop_reason or "unknown" for r in results).most_common()),
    }


# ---------------------------------------------------------------------------------------- process metrics


def final_orientation(result: ItemResult) -> tuple[int, int, int, int]:
    """The orientation (relative to the input) of the last image the model produced, following each
    call's input image: what the model finally looked at. No successful call: the input as given.

    Example:
        >>> from cv_bench.results import ItemResult, ToolCallSummary as T
        >>> r = ItemResult("a", 0, "s", "rot90", "a", "x", "q", "1", "1", True, "numeric",
        ...                tool_calls=[T(True, None, ["rotate_270"], 0, 1), T(True, None, ["crop"], 1, 2)])
        >>> final_orientation(r) == orientation_of(["rotate_270"])
        True
    """
    orient: dict[int, tuple[int, int, int, int]] = {}
    last = IDENTITY_ORIENTATION
    for c in result.calls:
        if c.ok and c.output_index is not None:
            start = orient.get(c.image_index, IDENTITY_ORIENTATION)
            orient[c.output_index] = last = orientation_of(c.ops, start=start)
    return last


def _orientation_required(result: ItemResult) -> tuple[int, int, int, int] | None:
    try:
        fix = corrective_ops(result.transform)
    except ValueError:
        return None
    return orientation_of(fix)


def op_correct(result: ItemResult) -> bool | None:
    """Whether the model's final view is upright: the ops it ran undo the item's rotation/flip (none
    needed: it left the orientation alone). ``None`` for items outside the orientation family (no
    orientation transform and not a ``source`` variant).

    Example:
        >>> from cv_bench.results import ItemResult, ToolCallSummary as T
        >>> r = ItemResult("a", 0, "s", "rot90", "a", "x", "q", "1", "1", True, "numeric", transform=["rotate_90"],
        ...                tool_calls=[T(True, None, ["rotate_90", "rotate_180"], 0, 1)])
        >>> op_correct(r)
        True
    """
    transformed = any(t in ORIENTATION_OPS for t in result.transform)
    if not transformed and result.variant != "source":
        return None
    want = _orientation_required(result)
    return None if want is None else final_orientation(result) == want


def _box_stats(crop: Sequence[float], bbox: Sequence[float]) -> tuple[float, float]:
    """``(coverage, iou)`` of a crop box against the answer box."""
    ix = max(0.0, min(crop[2], bbox[2]) - max(crop[0], bbox[0]))
    iy = max(0.0, min(crop[3], bbox[3]) - max(crop[1], bbox[1]))
    inter = ix * iy
    area_b = max(0.0, bbox[2] - bbox[0]) * max(0.0, bbox[3] - bbox[1])
    area_c = max(0.0, crop[2] - crop[0]) * max(0.0, crop[3] - crop[1])
    union = area_b + area_c - inter
    return (inter / area_b if area_b else 0.0), (inter / union if union else 0.0)


def process_metrics(results: Sequence[ItemResult]) -> dict[str, Any]:
    """How the scored episodes got their answers.

    - ``op_accuracy``: share of episodes on rotated/flipped items whose final view is upright (the model
      applied the corrective op); ``op_accuracy_by_variant`` also has untransformed (``source``) items,
      where the right op is none. ``op_n``: episodes on transformed items.
    - ``crop``: ``crop_rate`` (on items that need a zoom, transform ``crop``: episodes with a traced crop,
      %); on items with an answer box where the model cropped (``episodes``), the mean ``coverage`` (share
      of the answer box inside the crop, %) and ``iou`` (%) of each episode's best crop, boxes in input-image
      pixels (``box_input``).
    - ``latency_s_per_episode`` / ``latency_s_per_correct``: wall-clock seconds per episode and per correct
      answer; ``tokens_per_episode`` / ``tokens_per_correct``: generated tokens (``None`` when unknown).

    Example:
        >>> process_metrics([])["op_accuracy"] is None
        True
    """
    ops = [(r, op_correct(r)) for r in results]
    transformed = [ok for r, ok in ops if ok is not None and any(t in ORIENTATION_OPS for t in r.transform)]
    by_variant: dict[str, list[bool]] = defaultdict(list)
    for r, ok in ops:
        if ok is not None:
            by_variant[r.variant].append(ok)
    with_box = [r for r in results if r.bbox and len(r.bbox) == 4]
    best: list[tuple[float, float]] = []
    for r in with_box:
        boxes = [c for call in r.calls if call.ok for c in call.crops if len(c) == 4]
        if boxes:
            stats = [_box_stats(b, r.bbox) for b in boxes]  # type: ignore[arg-type]
            best.append((max(s[0] for s in stats), max(s[1] for s in stats)))
    need_crop = [r for r in results if "crop" in r.transform]
    cropped = sum(1 for r in need_crop if any(c.ok and "crop" in c.ops for c in r.calls))
    n_correct = sum(r.correct for r in results)
    tokens = [r.completion_tokens for r in results]
    known_tokens = all(t is not None for t in tokens) and bool(tokens)
    total_s = sum(r.duration_s for r in results)
    return {
        "op_accuracy": _pct(sum(transformed), len(transformed)),
        "op_n": len(transformed),
        "op_accuracy_by_variant": {
            v: _pct(sum(by_variant[v]), len(by_variant[v])) for v in ordered_variants(list(by_variant))
        },
        "crop": {
            "episodes": len(best),
            "crop_rate": _pct(cropped, len(need_crop)),
            "coverage": round(100 * mean(b[0] for b in best), 2) if best else None,
            "iou": round(100 * mean(b[1] for b in best), 2) if best else None,
        },
        "latency_s_per_episode": round(total_s / len(results), 3) if results else None,
        "latency_s_per_correct": round(total_s / n_correct, 3) if n_correct else None,
        "tokens_per_episode": round(sum(tokens) / len(tokens), 1) if known_tokens else None,  # type: ignore[arg-type]
        "tokens_per_correct": round(sum(tokens) / n_correct, 1) if known_tokens and n_correct else None,  # type: ignore[arg-type]
    }


def tool_necessity(with_tools: Sequence[Episode], without: Sequence[Episode]) -> dict[str, Any]:
    """What the tool buys, per variant: accuracy with tools vs the same items without (a ``--no-tools``
    run), and per episode (paired by item and sample) how often the tool was needed (right only with it) or
    hurt (right only without it).

    Raises:
        ValueError: The two runs cover different items.
    """
    a_ids = {e.item.item_id for e in with_tools}
    b_ids = {e.item.item_id for e in without}
    if a_ids != b_ids:
        raise ValueError(
            f"the no-tool baseline covers other items ({len(a_ids - b_ids)} only with tools, "
            f"{len(b_ids - a_ids)} only without); run it with the same --suite/--size/--seed/--limit"
        )
    base = {(e.item.item_id, e.sample): e for e in without}
    groups = _by_variant(with_tools)
    out: dict[str, Any] = {"variants": list(groups), "by_variant": {}}
    for v, eps in [*groups.items(), ("all", list(with_tools))]:
        pairs = [(e, base.get((e.item.item_id, e.sample))) for e in eps]
        pairs = [(a, b) for a, b in pairs if b is not None]
        w = _pct(sum(a.correct for a, _ in pairs), len(pairs))
        wo = _pct(sum(b.correct for _, b in pairs), len(pairs))
        out["by_variant"][v] = {
            "n": len(pairs),
            "with_tools": w,
            "without": wo,
            "gain": None if w is None or wo is None else round(w - wo, 2),
            "needed": sum(a.correct and not b.correct for a, b in pairs),
            "hurt": sum(b.correct and not a.correct for a, b in pairs),
        }
    return out


def summarize(
    results: Sequence[ItemResult],
    run_info: dict[str, Any] | None = None,
    *,
    expected: Sequence[ExpectedItem] | None = None,
    errors: dict[tuple[str, int], str] | None = None,
    baseline: Sequence[Episode] | None = None,
) -> dict[str, Any]:
    """Everything the reports show, as one JSON-serialisable dict (written as ``summary.json``).

    Args:
        results: Result lines of one run.
        run_info: The run's ``run.json`` (model, suite, config), copied under ``run``.
        expected: The run's item set (``items.jsonl``); ``None``: the items of ``results`` and ``errors``.
        errors: The last harness error per unscored episode (``errors.jsonl``).
        baseline: The episodes of a no-tool run over the same items, for ``tool_necessity``.

    Example:
        >>> summarize([])["n_items"]
        0
    """
    info = dict(run_info or {})
    samples = info.get("samples") if expected is not None else None
    episodes, extra = episode_table(results, expected, samples, errors)
    scored = [e.result for e in episodes if e.result is not None]
    by_source: dict[str, list[bool]] = defaultdict(list)
    for e in episodes:
        by_source[e.item.data_source or "unknown"].append(e.correct)
    models = list(dict.fromkeys(r.model for r in results if r.model))
    unscored = unscored_summary(episodes)
    methods = Counter(r.match_method or "none" for r in scored)
    if unscored["count"]:
        methods["unscored"] = unscored["count"]
    summary = {
        "label": info.get("label") or info.get("model") or (models[0] if models else "run"),
        "run": info,
        "n_items": len({e.item.item_id for e in episodes}),
        "n_episodes": len(episodes),
        "n_results": len(scored),
        "n_scored": len(scored),
        "n_unscored": unscored["count"],
        "extra_results": extra,
        "unscored": unscored,
        "warning": _warning(unscored, len(episodes), extra),
        **_accuracy(episodes),
        "by_source": {k: _pct(sum(v), len(v)) for k, v in sorted(by_source.items())},
        "match_methods": dict(methods.most_common()),
        "tool_stats": tool_stats(scored),
        "process": process_metrics(scored),
        "tool_necessity": None,
    }
    if baseline is not None:
        try:
            summary["tool_necessity"] = tool_necessity(episodes, baseline)
        except ValueError as e:  # the results stand; the comparison does not
            note = f"tool necessity not computed: {e}"
            summary["warning"] = f"{summary['warning']}. {note}" if summary["warning"] else note
    return summary


def _warning(unscored: dict[str, Any], total: int, extra: int) -> str | None:
    parts = []
    if unscored["count"]:
        reasons = "; ".join(f"{n}x {r}" for r, n in list(unscored["reasons"].items())[:3])
        parts.append(
            f"{unscored['count']} of {total} episodes could not be scored and count as wrong ({reasons}); "
            "rerun the same cv-bench eval command to retry them"
        )
    if extra:
        parts.append(f"{extra} result lines are outside the run's item set and were ignored")
    return ". ".join(parts) or None
