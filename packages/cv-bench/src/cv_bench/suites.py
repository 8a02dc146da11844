"""Benchmark suites: the built-in offline suites (synthetic, exact ground truth, from ``cv_data``) and
loaders for user copies of OCRBench, ChartQAPro, MVToolBench, V* and HRBench.

Every suite yields ``cv_data.Item`` objects; each item's table column (its *variant*) and the id of the item
it was derived from are read from ``item.meta`` (``variant``, ``base_id``) or derived from its transform.
"""

from __future__ import annotations

import ast
import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The six variants of the paper's transformed benchmarks, as (column name, transform list).
ORIENTATION_VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("source", ()),
    ("rot90", ("rotate_90",)),
    ("rot180", ("rotate_180",)),
    ("rot270", ("rotate_270",)),
    ("flip-h", ("flip_horizontal",)),
    ("flip-v", ("flip_vertical",)),
)

_SHORT = {
    "rotate_90": "rot90",
    "rotate_180": "rot180",
    "rotate_270": "rot270",
    "flip_horizontal": "flip-h",
    "flip_vertical": "flip-v",
    "crop": "crop",
}

#: cv_data's variant names -> the column names of our tables.
VARIANT_ALIASES = {"hflip": "flip-h", "vflip": "flip-v"}


def variant_name(transform: Sequence[str]) -> str:
    """Table column for a transform list.

    Example:
        >>> variant_name([]), variant_name(["crop", "rotate_90"])
        ('source', 'crop+rot90')
    """
    return "+".join(_SHORT.get(t, t) for t in transform) or "source"


def variant_of(item: Any) -> str:
    """The item's table column: ``meta["variant"]`` if set, else derived from ``transform``."""
    meta = getattr(item, "meta", None) or {}
    v = str(meta.get("variant") or variant_name(list(getattr(item, "transform", None) or [])))
    return VARIANT_ALIASES.get(v, v)


def base_id_of(item: Any) -> str:
    """Id of the untransformed item: ``meta["base_id"]`` if set, else the id up to its last ``/``."""
    meta = getattr(item, "meta", None) or {}
    return str(meta.get("base_id") or item.id.rsplit("/", 1)[0])


@dataclass(frozen=True)
class SuiteInfo:
    """A suite as ``cv-bench list`` shows it.

    Attributes:
        name: Suite name for ``--suite``.
        description: One line.
        builtin: Built offline from synthetic sources (else needs ``--data PATH``).
        default_size: Base items by default (built-in suites), before variant expansion.
        variants: Variants per base item (columns of the table); empty when per-item.
    """

    name: str
    description: str
    builtin: bool
    default_size: int | None = None
    variants: tuple[str, ...] = ()

    def n_items(self, size: int | None = None) -> int | None:
        """Items the suite yields for ``size`` base items (``None`` when only the data file knows)."""
        n = size or self.default_size
        if n is None:
            return None
        return n * max(len(self.variants), 1)


_ORIENT_NAMES = tuple(v for v, _ in ORIENTATION_VARIANTS)
#: Severity (1-5) of the built-in corruption suite: one mid severity keeps the table at 6 columns.
CORRUPTION_SEVERITY = 3
_CORRUPTIONS = (
    "clean",
    *(
        f"{k}-s{CORRUPTION_SEVERITY}"
        for k in ("gaussian_noise", "gaussian_blur", "jpeg", "brightness", "contrast")
    ),
)

SUITES: dict[str, SuiteInfo] = {
    s.name: s
    for s in (
        SuiteInfo(
            "orientation",
            "synthetic documents and charts, each in 6 variants (source, rot90, rot180, rot270, "
            "flip-h, flip-v), like OCRBench-T / ChartQAPro-T",
            True,
            20,
            _ORIENT_NAMES,
        ),
        SuiteInfo(
            "corruption",
            "synthetic documents and charts clean and under natural corruptions (noise, blur, "
            f"JPEG, brightness, contrast; severity {CORRUPTION_SEVERITY}/5)",
            True,
            20,
            _CORRUPTIONS,
        ),
        SuiteInfo(
            "multi-tool",
            "MVToolBench-style scenes: small answer region (crop) plus a rotation or flip",
            True,
            20,
        ),
        SuiteInfo(
            "crop-only",
            "V*/HRBench-style scenes: a small answer region in a large image, needs a zoom",
            True,
            20,
        ),
        SuiteInfo(
            "ocrbench",
            "user copy of OCRBench, expanded into the 6 orientation variants (OCRBench-T)",
            False,
            None,
            _ORIENT_NAMES,
        ),
        SuiteInfo(
            "chartqapro",
            "user copy of ChartQAPro, expanded into the 6 orientation variants",
            False,
            None,
            _ORIENT_NAMES,
        ),
        SuiteInfo("mvtoolbench", "user copy of MVToolBench (transform and bbox per item)", False),
        SuiteInfo("vstar", "user copy of V* Bench (multiple choice, high-resolution search)", False),
        SuiteInfo("hrbench", "user copy of HR-Bench 4K/8K (multiple choice, high resolution)", False),
        SuiteInfo("items", "any file written by cv_data.write_items (parquet or JSONL + images)", False),
    )
}


def list_suites() -> list[SuiteInfo]:
    """All suites, built-in first.

    Example:
        >>> [s.name for s in list_suites()][:2]
        ['orientation', 'corruption']
    """
    return list(SUITES.values())


def load_suite(
    name: str,
    *,
    size: int | None = None,
    seed: int = 0,
    data: str | Path | None = None,
    limit: int | None = None,
    progress: bool = False,
) -> list[Any]:
    """The items of a suite.

    Args:
        name: A name from :data:`SUITES`.
        size: Base items for built-in suites (default: the suite's ``default_size``).
        seed: Seed of the synthetic generators.
        data: Path of the user's copy for external suites (file or directory).
        limit: Stop after this many items (avoids decoding a whole external benchmark for a quick run).
        progress: Show a progress bar while building a built-in suite.

    Raises:
        ValueError: Unknown suite, or an external suite without ``data``.

    Example:
        >>> load_suite("nope")
        Traceback (most recent call last):
        ...
        ValueError: unknown suite 'nope'; `cv-bench list` shows: orientation, corruption, multi-tool, crop-only, ocrbench, chartqapro, mvtoolbench, vstar, hrbench, items
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; `cv-bench list` shows: {', '.join(SUITES)}")
    info = SUITES[name]
    if info.builtin:
        if data is not None:
            raise ValueError(f"suite {name!r} is built in: drop --data (or use --suite items --data {data})")
        n = size or info.default_size
        if limit is not None:
            n = min(n, max(1, math.ceil(limit / max(len(info.variants), 1))))
        items = _build_builtin(name, n, seed, progress)
    else:
        if data is None:
            raise ValueError(
                f"suite {name!r} needs your copy of the benchmark: --data PATH (see the cv-bench README "
                "for the expected columns)"
            )
        items = load_external(name, data, limit=limit)
    return items[:limit] if limit is not None else items


def _build_builtin(name: str, n: int, seed: int, progress: bool = False) -> list[Any]:
    from cv_data import SOURCES, BenchConfig, BuildReport, build_bench
    from tqdm.auto import tqdm

    if name == "crop-only":
        items = [
            SOURCES["scene"](i, seed, "test")
            for i in tqdm(range(n), desc="build-bench:crop-only", disable=not progress)
        ]
        for it in items:
            it.meta = {**it.meta, "variant": "crop", "base_id": it.id}
        return items
    if name == "corruption":
        cfg = BenchConfig(
            suite="corruption", num=n, seed=seed, severities=[CORRUPTION_SEVERITY], progress=progress
        )
    else:
        cfg = BenchConfig(suite=name.replace("-", "_"), num=n, seed=seed, progress=progress)
    report = BuildReport()
    items = build_bench(cfg, report=report)
    _raise_on_errors(report, f"built-in suite {name!r}")
    return items


def _raise_on_errors(report: Any, what: str) -> None:
    """Bad records must not vanish silently from a benchmark: fail with the first few reasons."""
    if report.errors:
        first = "; ".join(f"record {e.index} ({e.id}): {e.message}" for e in report.errors[:5])
        raise ValueError(f"{what}: {len(report.errors)} of {report.total} records failed to load: {first}")


# ------------------------------------------------------------------ external benchmarks (user copies)


@dataclass(frozen=True)
class ColumnMap:
    """Where a public benchmark keeps each field. Each entry lists alternative column names; the first one
    present in the file wins. Rows are normalised with it and handed to ``cv_data.rows_to_items``.

    Attributes:
        id: Item id columns (fallback: ``<suite>-<row>``).
        image: Image column(s): a path (relative to the data file's folder or an ``images/`` folder beside
            it), raw bytes, a base64 string (HRBench TSV), a ``{"bytes", "path"}`` dict (Hugging Face
            parquet) or a list of these.
        question: Question column(s); a list value (multi-turn ChartQAPro) uses its last entry.
        answer: Answer column(s); a list value gives several acceptable answers (any one matches), except
            when the question is a list of the same length (then the last answer belongs to it).
        choices: One column holding the option list.
        option_columns: Separate option columns (``A``, ``B``, ...), used when ``choices`` is absent.
        transform: Column with the applied transform list (MVToolBench).
        bbox: Column with the answer box ``[x1, y1, x2, y2]`` in pixels of the given image.
        category: Category column, kept in ``meta["category"]``.
        task_type: ``cv_data`` task type for the matcher.
        data_source: Recorded on items and results.
        orientation: Expand every row into the 6 orientation variants (OCRBench-T, ChartQAPro-T).
    """

    id: tuple[str, ...] = ("id", "question_id", "index", "qid")
    image: tuple[str, ...] = ("image", "images", "image_path", "img", "image_file")
    question: tuple[str, ...] = ("question", "Question", "text", "query")
    answer: tuple[str, ...] = ("answer", "answers", "Answer", "label", "gt")
    choices: tuple[str, ...] = ("choices", "options")
    option_columns: tuple[str, ...] = ()
    transform: tuple[str, ...] = ("transform",)
    bbox: tuple[str, ...] = ("bbox", "answer_bbox")
    category: tuple[str, ...] = ("category", "question_type", "Question Type", "type")
    task_type: str = "general"
    data_source: str = ""
    orientation: bool = False


COLUMN_MAPS: dict[str, ColumnMap] = {
    "ocrbench": ColumnMap(task_type="ocr", data_source="OCRBench", orientation=True),
    "chartqapro": ColumnMap(task_type="chart", data_source="ChartQAPro", orientation=True),
    "mvtoolbench": ColumnMap(data_source="MVToolBench"),
    "vstar": ColumnMap(data_source="V*"),
    "hrbench": ColumnMap(option_columns=("A", "B", "C", "D"), data_source="HRBench"),
}

_DATA_EXT = (".parquet", ".jsonl", ".json", ".tsv")


def _find_data_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        for ext in _DATA_EXT:
            found = sorted(path.glob(f"*{ext}"))
            if found:
                return found[0]
        raise FileNotFoundError(
            f"{path} has no {'/'.join(_DATA_EXT)} file: point --data at the benchmark's table"
        )
    raise FileNotFoundError(f"--data {path} does not exist")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.suffix == ".tsv":
        import csv

        csv.field_size_limit(1 << 30)
        with open(path, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        return data if isinstance(data, list) else list(data.values())
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e})") from e
    return rows


def _pick(row: dict[str, Any], cols: Sequence[str]) -> Any:
    for c in cols:
        v = row.get(c)
        if (
            v is not None
            and not (isinstance(v, str) and v == "")
            and not (isinstance(v, float) and math.isnan(v))
        ):
            return v
    return None


def _as_list(v: Any) -> list[Any] | None:
    if isinstance(v, list | tuple):
        return list(v)
    if isinstance(v, str) and v.strip().startswith("[") and v.strip().endswith("]"):
        try:
            parsed = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
            return None
        return list(parsed) if isinstance(parsed, list | tuple) else None
    return None


def _image_value(v: Any, root: Path) -> Any:
    """Resolve what cv_data's decoder cannot: paths under ``images/`` and base64 strings."""
    if isinstance(v, str):
        if len(v) < 1024:  # longer strings cannot be paths (OS limit), and stat() on them raises
            for cand in (root / v, root / "images" / v, Path(v).expanduser()):
                if cand.is_file():
                    return str(cand.resolve())
        if len(v) > 256:  # HRBench-style TSVs inline the image as base64
            try:
                return base64.b64decode(v, validate=True)
            except ValueError:
                pass
        raise ValueError(f"image {v[:80]!r} not found under {root} or {root / 'images'}")
    return v


def normalise_row(row: dict[str, Any], cmap: ColumnMap, root: Path, index: int, suite: str) -> dict[str, Any]:
    """One benchmark row in cv_data's standard columns (``id, images, question, answer, choices, bbox``)
    plus our extras (``answers``, ``transform``, ``category``).

    Raises:
        ValueError: The row lacks an image, a question or an answer (the message names the columns tried).
    """
    rid = _pick(row, cmap.id)
    rid = str(rid) if rid is not None else f"{suite}-{index:06d}"
    img, q, a = _pick(row, cmap.image), _pick(row, cmap.question), _pick(row, cmap.answer)
    missing = [n for n, v in (("image", img), ("question", q), ("answer", a)) if v is None]
    if missing:
        need = "; ".join(f"{n}: one of {list(getattr(cmap, n))}" for n in missing)
        raise ValueError(
            f"{suite} row {index} (id {rid}) lacks {', '.join(missing)}; columns present "
            f"{sorted(row)}; expected {need}"
        )
    imgs = _as_list(img) if not isinstance(img, str | bytes | bytearray | dict) else None
    images = [_image_value(v, root) for v in (imgs or [img])]
    ql, al = _as_list(q), _as_list(a)
    question = str(ql[-1] if ql else q)
    answers = [str(x) for x in al] if al else [str(a)]
    if ql and al and len(al) == len(ql):
        answers = [str(al[-1])]
    choices = _as_list(_pick(row, cmap.choices))
    if choices is None and cmap.option_columns:
        choices = [str(row[c]) for c in cmap.option_columns if _pick(row, [c]) is not None] or None
    bbox = _as_list(_pick(row, cmap.bbox))
    cat = _pick(row, cmap.category)
    return {
        "id": rid,
        "images": images,
        "question": question,
        "answer": answers[0],
        "answers": answers,
        "choices": [str(c) for c in choices] if choices else None,
        "bbox": [float(v) for v in bbox] if bbox else None,
        "transform": [str(t) for t in (_as_list(_pick(row, cmap.transform)) or [])],
        "category": None if cat is None else str(cat),
    }


def rows_to_items(
    rows: Sequence[dict[str, Any]], cmap: ColumnMap, root: Path, *, suite: str = "", limit: int | None = None
) -> list[Any]:
    """Benchmark rows -> ``cv_data.Item`` objects (through ``cv_data.rows_to_items``), expanded into the
    orientation variants when ``cmap.orientation``.

    Raises:
        ValueError: Any row could not be loaded; the message lists the first failures (a benchmark must
            not silently shrink).
    """
    import cv_data

    n_per_row = len(ORIENTATION_VARIANTS) if cmap.orientation else 1
    if limit is not None:
        rows = rows[: math.ceil(limit / n_per_row)]
    norm = [normalise_row(r, cmap, root, i, suite) for i, r in enumerate(rows)]
    report = cv_data.BuildReport()
    std = cv_data.ColumnMap(
        image="images",
        question="question",
        answer="answer",
        id="id",
        bbox="bbox",
        choices="choices",
        default_task_type=cmap.task_type,
    )
    items = cv_data.rows_to_items(
        norm, std, data_source=cmap.data_source or suite, image_dir=root, report=report
    )
    _raise_on_errors(report, f"{suite} ({root})")
    for it, row in zip(items, norm, strict=True):
        extra: dict[str, Any] = {"base_id": it.id}
        if len(row["answers"]) > 1:
            extra["answers"] = row["answers"]
        if row["category"] is not None:
            extra["category"] = row["category"]
        it.meta = {**it.meta, **extra}
        if row["transform"]:
            bad = [t for t in row["transform"] if t not in cv_data.TRANSFORM_NAMES]
            if bad:
                raise ValueError(
                    f"{suite} item {it.id}: unknown transform(s) {bad}; allowed {list(cv_data.TRANSFORM_NAMES)}"
                )
            it.transform = row["transform"]
    if cmap.orientation:
        report = cv_data.BuildReport()
        items = cv_data.build_bench("orientation", items=items, progress=False, report=report)
        _raise_on_errors(report, f"{suite} orientation variants")
    return items


def load_external(name: str, data: str | Path, *, limit: int | None = None) -> list[Any]:
    """Load a user copy of an external benchmark (columns: :data:`COLUMN_MAPS` and the README).

    ``items`` reads files written by ``cv_data.write_items`` (``cv_data.read_items``); an MVToolBench copy
    in verl's parquet layout (``prompt``/``reward_model``/``extra_info`` columns) is read with
    ``cv_data.read_verl``.
    """
    import cv_data

    path = Path(data).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--data {path} does not exist")
    if name == "items":
        report = cv_data.BuildReport()
        items = cv_data.read_items(path, report=report)
        _raise_on_errors(report, f"items ({path})")
        return items
    if name not in COLUMN_MAPS:
        raise ValueError(f"no loader for {name!r}; external suites: {', '.join(COLUMN_MAPS)}, items")
    f = _find_data_file(path)
    rows = _read_rows(f)
    if name == "mvtoolbench" and rows and "reward_model" in rows[0] and "prompt" in rows[0]:
        report = cv_data.BuildReport()
        items = cv_data.read_verl(f, report=report)
        _raise_on_errors(report, f"mvtoolbench ({f})")
        return items
    return rows_to_items(rows, COLUMN_MAPS[name], f.parent, suite=name, limit=limit)
