"""Per-record error collection: bad records are reported, never fatal, never silently dropped."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RecordError:
    """One record that could not be used.

    Attributes:
        index: Position of the record in its input (row number), or -1 if unknown.
        id: The record's id if it had one.
        stage: Where it failed: ``"load"``, ``"image"``, ``"columns"``, ``"bbox"``, ``"transform"``,
            ``"generate"``, ``"execute"``, ``"teacher"``, ...
        message: What was wrong, in words a user can act on.
    """

    index: int
    id: str | None
    stage: str
    message: str


@dataclass
class BuildReport:
    """Counts and per-record errors of one load or build.

    Attributes:
        total: Records seen.
        ok: Records that produced output.
        errors: One entry per failed record.
        stats: Extra counters (per kind, per source, ...).
    """

    total: int = 0
    ok: int = 0
    errors: list[RecordError] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def add_error(self, index: int, id: str | None, stage: str, message: str) -> None:
        self.errors.append(RecordError(index, id, stage, message))

    def merge(self, other: BuildReport) -> None:
        self.total += other.total
        self.ok += other.ok
        self.errors.extend(other.errors)
        for k, v in other.stats.items():
            if isinstance(v, int | float) and isinstance(self.stats.get(k, 0), int | float):
                self.stats[k] = self.stats.get(k, 0) + v
            else:
                self.stats[k] = v

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": len(self.errors),
            "stats": self.stats,
            "errors": [asdict(e) for e in self.errors],
        }

    def write(self, path: str | Path) -> Path:
        """Write the report as JSON (``path`` may be a directory: ``<dir>/report.json``)."""
        p = Path(path)
        if p.is_dir():
            p = p / "report.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        return p

    def raise_if_failed(self, what: str) -> None:
        """Raise when any record failed: a benchmark must not silently shrink.

        Raises:
            ValueError: Names ``what``, the failed count and the first five reasons.

        Example:
            >>> r = BuildReport(total=2, ok=1)
            >>> r.add_error(1, "x", "image", "image file not found: 'x.png'")
            >>> r.raise_if_failed("demo")
            Traceback (most recent call last):
            ...
            ValueError: demo: 1 of 2 records failed to load: record 1 (x): image file not found: 'x.png'
        """
        if self.errors:
            first = "; ".join(f"record {e.index} ({e.id}): {e.message}" for e in self.errors[:5])
            raise ValueError(f"{what}: {len(self.errors)} of {self.total} records failed to load: {first}")

    def summary(self) -> str:
        return f"{self.ok}/{self.total} records ok, {len(self.errors)} errors"
