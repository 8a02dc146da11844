"""The per-item result record and the crash-safe, append-only JSONL store that makes runs resumable.

One line of ``results.jsonl`` is one finished ``(item_id, sample)`` pair. Each line is written with a single
``write`` followed by ``flush`` and ``fsync``, so a killed run loses at most the line being written; on
reopen a truncated last line is cut off (it was never finished, so the pair is simply run again) and a rerun
skips every pair already present, so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: Version of the JSONL line schema (2: call lineage, crop boxes, the item's bbox, tokens). Older lines load
#: with the new fields unset.
SCHEMA_VERSION = 2

RESULTS_FILE = "results.jsonl"
#: The run's item set, written when a run starts: every item counts, scored or not.
ITEMS_FILE = "items.jsonl"
#: Harness failures (one line per failed attempt); the last one per episode is why it is unscored.
ERRORS_FILE = "errors.jsonl"
#: ``error_kind`` of a reply whose tool call could not be read (by the parser, or by the server).
UNREAD_KINDS = frozenset({"parse", "unreadable"})


@dataclass
class ToolCallSummary:
    """What the report needs from one tool call (the full call lives in the trajectory).

    Attributes:
        ok: The sandbox produced an image.
        error_kind: One of ``cv_sandbox.ERROR_KINDS`` on failure, ``parse`` for a reply whose call could not
            be read, ``unreadable`` when the server could not return the reply; else ``None``.
        ops: Canonical names of the image ops that executed (``rotate_90``, ``crop``, ...).
        image_index: The image the code operated on.
        output_index: The index of the image it produced (``None`` on failure).
        crops: The call's crop boxes in input image 0's pixels (``box_input``; untrackable ones left out).
    """

    ok: bool
    error_kind: str | None = None
    ops: list[str] = field(default_factory=list)
    image_index: int = 0
    output_index: int | None = None
    crops: list[list[float]] = field(default_factory=list)

    @property
    def executed(self) -> bool:
        """The reply held a readable call that was run (or refused by the executor): a real tool call."""
        return self.error_kind not in UNREAD_KINDS

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCallSummary:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class ItemResult:
    """The scored outcome of one ``(item, sample)`` episode: one line of ``results.jsonl``.

    Attributes:
        item_id: Id of the benchmark item (unique within the suite).
        sample: Sample index ``0..k-1`` (Avg@k repeats each item ``k`` times).
        suite: Suite name (``orientation``, ``ocrbench``, ...).
        variant: Column of the paper-style table (``source``, ``rot90``, ``flip-h``, ``crop+rot90``, ...).
        base_id: Id of the untransformed item the variant was made from.
        data_source: Where the item comes from (``synthetic-document``, ``OCRBench``, ...).
        question: The question shown to the model.
        gt: Ground-truth answer.
        pred: Answer extracted from the model's final ``<answer>`` (``None`` when it gave none).
        correct: Whether ``pred`` matches ``gt``.
        match_method: Who decided: ``choice``, ``numeric``, ``text``, ``math``, ``judge:<model>`` or ``none``.
        match_detail: Matcher's explanation, for auditing.
        transform: Perturbations applied to the item (``["crop", "rotate_90"]``).
        task_type: Task type passed to the matcher.
        stop_reason: Why the agent loop stopped (``answer``, ``max_turns``, ...).
        turns: Assistant turns taken.
        tool_calls: One :class:`ToolCallSummary` per tool call, in order.
        duration_s: Wall-clock seconds for the episode including scoring.
        model: Model spec the run was made with.
        trajectory: Path of the saved trajectory directory, relative to the run directory.
        bbox: The item's answer box in input image 0's pixels (``None`` when it has none).
        completion_tokens: Tokens the model generated in the episode (``None``: the backend did not say).
        model_s: Seconds spent waiting for the model.
        schema: :data:`SCHEMA_VERSION` of this line.
    """

    item_id: str
    sample: int
    suite: str
    variant: str
    base_id: str
    data_source: str
    question: str
    gt: str
    pred: str | None
    correct: bool
    match_method: str
    match_detail: str = ""
    transform: list[str] = field(default_factory=list)
    task_type: str = "general"
    stop_reason: str = ""
    turns: int = 0
    tool_calls: list[ToolCallSummary] = field(default_factory=list)
    duration_s: float = 0.0
    model: str = ""
    trajectory: str | None = None
    bbox: list[float] | None = None
    completion_tokens: int | None = None
    model_s: float | None = None
    schema: int = SCHEMA_VERSION

    @property
    def key(self) -> tuple[str, int]:
        """The resume key: ``(item_id, sample)``."""
        return (self.item_id, self.sample)

    @property
    def calls(self) -> list[ToolCallSummary]:
        """The real tool calls (readable, run or refused); unreadable replies are not calls."""
        return [c for c in self.tool_calls if c.executed]

    @property
    def n_errors(self) -> int:
        """Failed tool calls (readable calls whose execution failed)."""
        return sum(1 for c in self.calls if not c.ok)

    @property
    def n_unread(self) -> int:
        """Replies whose tool call could not be read (by the parser or the server)."""
        return sum(1 for c in self.tool_calls if not c.executed)

    @property
    def n_recovered(self) -> int:
        """Mistakes (failed calls and unreadable calls) followed, later in the episode, by a successful call."""
        n = 0
        for i, call in enumerate(self.tool_calls):
            if not call.ok and any(c.ok for c in self.tool_calls[i + 1 :]):
                n += 1
        return n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ItemResult:
        known = {f.name for f in fields(cls)}
        missing = {"item_id", "sample", "correct"} - d.keys()
        if missing:
            raise ValueError(f"result line lacks required keys {sorted(missing)}")
        kw = {k: v for k, v in d.items() if k in known}
        kw["tool_calls"] = [ToolCallSummary.from_dict(c) for c in d.get("tool_calls") or []]
        for name in ("suite", "variant", "base_id", "data_source", "question", "gt", "match_method"):
            kw.setdefault(name, "")
        kw.setdefault("pred", None)
        return cls(**kw)


class ResultStore:
    """Append-only, fsynced JSONL store of :class:`ItemResult` lines; the basis of resume.

    Opening the store repairs a truncated last line left by a killed process (the unfinished pair is
    dropped so it runs again). Appends are thread-safe and durable once :meth:`append` returns.

    Example:
        >>> import tempfile
        >>> store = ResultStore(Path(tempfile.mkdtemp()) / "results.jsonl")
        >>> store.append(ItemResult("a", 0, "s", "source", "a", "src", "q?", "1", "1", True, "numeric"))
        >>> sorted(store.done_keys())
        [('a', 0)]
    """

    def __init__(self, path: str | Path, *, repair: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Readers of a run that may still be going (``cv-bench report``) pass repair=False: the last line
        # may be mid-write, so it is skipped rather than cut.
        self.repaired_bytes = self._repair() if repair else 0

    def _repair(self) -> int:
        """Cut a trailing partial line (no final newline); returns how many bytes were dropped."""
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return 0
        keep = data.rfind(b"\n") + 1
        with open(self.path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return len(data) - keep

    def load(self) -> list[ItemResult]:
        """All finished results in file order; a duplicated key (never written by us) keeps the first line.

        Raises:
            ValueError: A complete line in the middle of the file is not a valid result (the file was
                edited or corrupted by something else): the message names the line.
        """
        if not self.path.exists():
            return []
        out: list[ItemResult] = []
        seen: set[tuple[str, int]] = set()
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.endswith("\n") or not line.strip():
                    # An unterminated last line is an unfinished write: that pair is not done yet.
                    continue
                try:
                    res = ItemResult.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, ValueError) as e:
                    raise ValueError(
                        f"{self.path}:{lineno}: not a valid result line ({e}); fix or delete that line to resume"
                    ) from e
                if res.key in seen:
                    continue
                seen.add(res.key)
                out.append(res)
        return out

    def done_keys(self) -> set[tuple[str, int]]:
        """``(item_id, sample)`` pairs already finished."""
        return {r.key for r in self.load()}

    def append(self, result: ItemResult) -> None:
        """Write one result durably (single write, flush, fsync)."""
        line = json.dumps(result.to_dict(), ensure_ascii=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def extend(self, results: Iterable[ItemResult]) -> None:
        for r in results:
            self.append(r)


def load_results(run_dir: str | Path) -> list[ItemResult]:
    """Results of a run directory (or of a ``results.jsonl`` path).

    Example:
        >>> load_results("/nonexistent-run")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no results.jsonl in /nonexistent-run: run `cv-bench eval --out /nonexistent-run` first
    """
    p = Path(run_dir)
    path = p if p.suffix == ".jsonl" else p / RESULTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {p}: run `cv-bench eval --out {p}` first")
    return ResultStore(path, repair=False).load()


@dataclass(frozen=True)
class ExpectedItem:
    """One item of a run's item set (a line of ``items.jsonl``): what the summary counts, scored or not.

    Attributes:
        item_id: The item's id.
        variant: Its table column.
        base_id: The untransformed item it was made from.
        data_source: Where it comes from.
    """

    item_id: str
    variant: str = ""
    base_id: str = ""
    data_source: str = ""


def write_items(run_dir: str | Path, items: Iterable[ExpectedItem]) -> Path:
    """Write the run's item set (replacing an older one: the latest ``cv-bench eval`` defines the run)."""
    path = Path(run_dir) / ITEMS_FILE
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(asdict(it), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def load_items(run_dir: str | Path) -> list[ExpectedItem] | None:
    """The run's item set, or ``None`` for a run made before cv-bench wrote one.

    Example:
        >>> load_items("/nonexistent-run") is None
        True
    """
    path = Path(run_dir) / ITEMS_FILE
    if not path.exists():
        return None
    known = {f.name for f in fields(ExpectedItem)}
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append(ExpectedItem(**{k: v for k, v in d.items() if k in known}))
    return out


def load_errors(run_dir: str | Path) -> dict[tuple[str, int], str]:
    """The last harness error of each ``(item_id, sample)`` in ``errors.jsonl`` (without the episode prefix).

    Example:
        >>> load_errors("/nonexistent-run")
        {}
    """
    path = Path(run_dir) / ERRORS_FILE
    out: dict[tuple[str, int], str] = {}
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                d = json.loads(line)
                key = (str(d["item_id"]), int(d["sample"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a killed run
            msg = str(d.get("error", ""))
            prefix = f"{key[0]}#s{key[1]}: "
            out[key] = msg.removeprefix(prefix)
    return out
