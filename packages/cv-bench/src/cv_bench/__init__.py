"""cv-bench: the resumable ``cv-bench eval`` harness and its reports for CodeVision, and ``cv-bench distill``
(SFT data from a teacher model, by running the same agent loop over items and keeping verified trajectories).

The suites themselves (registry, builders, loaders of external benchmarks) live in ``cv_data``;
``SUITES``, ``list_suites`` and ``load_suite`` are re-exported here for convenience.
"""

from cv_data import SUITES, list_suites, load_suite

from .distill import DistillConfig, DistillOutcome, distill, trajectory_to_sft
from .reference import ReferencePolicy, plan_calls
from .report import (
    compare_runs,
    format_table,
    format_tool_table,
    render_html_report,
    summarize_run,
    write_report,
)
from .results import SCHEMA_VERSION, ItemResult, ResultStore, ToolCallSummary, load_results
from .runner import MODEL_HELP, EvalConfig, EvalOutcome, aevaluate, evaluate, score_answer
from .stats import VARIANT_ORDER, accuracy_table, summarize, tool_stats

__all__ = [
    "MODEL_HELP",
    "SCHEMA_VERSION",
    "SUITES",
    "VARIANT_ORDER",
    "DistillConfig",
    "DistillOutcome",
    "EvalConfig",
    "EvalOutcome",
    "ItemResult",
    "ReferencePolicy",
    "ResultStore",
    "ToolCallSummary",
    "accuracy_table",
    "aevaluate",
    "compare_runs",
    "distill",
    "evaluate",
    "format_table",
    "format_tool_table",
    "list_suites",
    "load_results",
    "load_suite",
    "plan_calls",
    "render_html_report",
    "score_answer",
    "summarize",
    "summarize_run",
    "tool_stats",
    "trajectory_to_sft",
    "write_report",
]
__version__ = "0.1.0"
