"""cv-bench: benchmark suites, the resumable ``cv-bench eval`` harness and its reports for CodeVision."""

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
from .suites import (
    COLUMN_MAPS,
    ORIENTATION_VARIANTS,
    SUITES,
    ColumnMap,
    SuiteInfo,
    list_suites,
    load_external,
    load_suite,
    variant_name,
)

__all__ = [
    "COLUMN_MAPS",
    "MODEL_HELP",
    "ORIENTATION_VARIANTS",
    "SCHEMA_VERSION",
    "SUITES",
    "VARIANT_ORDER",
    "ColumnMap",
    "EvalConfig",
    "EvalOutcome",
    "ItemResult",
    "ReferencePolicy",
    "ResultStore",
    "SuiteInfo",
    "ToolCallSummary",
    "accuracy_table",
    "aevaluate",
    "compare_runs",
    "evaluate",
    "format_table",
    "format_tool_table",
    "list_suites",
    "load_external",
    "load_results",
    "load_suite",
    "plan_calls",
    "render_html_report",
    "score_answer",
    "summarize",
    "summarize_run",
    "tool_stats",
    "variant_name",
    "write_report",
]
__version__ = "0.1.0"
