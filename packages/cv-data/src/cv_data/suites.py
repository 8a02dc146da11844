"""The one registry of benchmark suites and variant names.

A suite is either built in (generated offline from the synthetic sources, exact ground truth) or an
external benchmark read from the user's copy (OCRBench, ChartQAPro, MVToolBench, V*, HRBench, or a file
written by :func:`cv_data.write_items`). Every item of a suite records its table column (its *variant*) and
the id of the item it was derived from in ``item.meta`` (``variant``, ``base_id``); the variant names here
are the paper-table spelling (``source``, ``rot90``, ..., ``flip-h``, ``flip-v``) and item ids follow them
(``<base>/flip-h``). :func:`cv_data.build_bench` builds the built-in suites, :func:`cv_data.load_suite`
returns any suite's items; cv-bench evaluates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .tables import ColumnMap
from .transforms import CORRUPTIONS

#: The six variants of the paper's transformed benchmarks (OCRBench-T, ChartQAPro-T): name -> transforms.
ORIENTATION_VARIANTS: dict[str, tuple[str, ...]] = {
    "source": (),
    "rot90": ("rotate_90",),
    "rot180": ("rotate_180",),
    "rot270": ("rotate_270",),
    "flip-h": ("flip_horizontal",),
    "flip-v": ("flip_vertical",),
}

#: Severity (1-5) of the built-in corruption suite: one mid severity keeps its table at 6 columns.
CORRUPTION_SEVERITY = 3

# Transform name -> its short column name (inverse of ORIENTATION_VARIANTS, plus `crop`).
_SHORT = {ops[0]: name for name, ops in ORIENTATION_VARIANTS.items() if ops} | {"crop": "crop"}


def corruption_variant(kind: str, severity: int) -> str:
    """Column name of a corruption at a severity.

    Example:
        >>> corruption_variant("jpeg", 3)
        'jpeg-s3'
    """
    return f"{kind}-s{severity}"


@dataclass(frozen=True)
class SuiteInfo:
    """One suite of the registry.

    Attributes:
        name: Suite name (``--suite`` of ``cv-bench eval`` and ``cv-data build-bench``).
        description: One line for ``cv-bench list``.
        builtin: Generated offline from synthetic sources (else read from the user's copy: ``--data``).
        default_size: Base items of a built-in suite by default, before variant expansion.
        variants: The variants every base item expands into (the table's columns); empty when each base
            item yields one item whose variant is its own (multi-tool, crop-only, most external suites).
        sources: Synthetic sources of a built-in suite's base items (:data:`cv_data.SOURCES`).
        columns: Column map of an external benchmark's table; ``None`` for built-in suites and ``items``.
        data_source: Recorded on the items of an external benchmark.
        expand: Built-in suite that expands every loaded row (``orientation`` for OCRBench-T).
    """

    name: str
    description: str
    builtin: bool
    default_size: int | None = None
    variants: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    columns: ColumnMap | None = None
    data_source: str = ""
    expand: str | None = None

    def n_items(self, size: int | None = None) -> int | None:
        """Items the suite yields for ``size`` base items (``None`` when only the data file knows).

        Example:
            >>> SUITES["orientation"].n_items(), SUITES["multi-tool"].n_items(5), SUITES["vstar"].n_items()
            (120, 5, None)
        """
        n = size or self.default_size
        if n is None:
            return None
        return n * max(len(self.variants), 1)


_ORIENT = tuple(ORIENTATION_VARIANTS)
_CORRUPT = ("clean", *(corruption_variant(k, CORRUPTION_SEVERITY) for k in CORRUPTIONS))

#: Every suite by name, built-in first.
SUITES: dict[str, SuiteInfo] = {
    s.name: s
    for s in (
        SuiteInfo(
            "orientation",
            "synthetic documents and charts, each in 6 variants (source, rot90, rot180, rot270, "
            "flip-h, flip-v), like OCRBench-T / ChartQAPro-T",
            True,
            20,
            _ORIENT,
            sources=("document", "chart"),
        ),
        SuiteInfo(
            "corruption",
            "synthetic documents and charts clean and under natural corruptions (noise, blur, "
            f"JPEG, brightness, contrast; severity {CORRUPTION_SEVERITY}/5)",
            True,
            20,
            _CORRUPT,
            sources=("document", "chart"),
        ),
        SuiteInfo(
            "multi-tool",
            "MVToolBench-style scenes: small answer region (crop) plus a rotation or flip",
            True,
            20,
            sources=("scene",),
        ),
        SuiteInfo(
            "crop-only",
            "V*/HRBench-style scenes: a small answer region in a large image, needs a zoom",
            True,
            20,
            sources=("scene",),
        ),
        SuiteInfo(
            "toy",
            "the learning proof's toy task: a four-quadrant image upright and rotated 90/180/270, asking the "
            "colour of the top-right square of the upright image (held-out colour arrangements)",
            True,
            16,
            _ORIENT[:4],
            sources=("toy",),
        ),
        SuiteInfo(
            "ocrbench",
            "user copy of OCRBench, expanded into the 6 orientation variants (OCRBench-T)",
            False,
            variants=_ORIENT,
            columns=ColumnMap(default_task_type="ocr"),
            data_source="OCRBench",
            expand="orientation",
        ),
        SuiteInfo(
            "chartqapro",
            "user copy of ChartQAPro, expanded into the 6 orientation variants",
            False,
            variants=_ORIENT,
            columns=ColumnMap(default_task_type="chart"),
            data_source="ChartQAPro",
            expand="orientation",
        ),
        SuiteInfo(
            "mvtoolbench",
            "user copy of MVToolBench (transform and bbox per item)",
            False,
            columns=ColumnMap(),
            data_source="MVToolBench",
        ),
        SuiteInfo(
            "vstar",
            "user copy of V* Bench (multiple choice, high-resolution search)",
            False,
            columns=ColumnMap(),
            data_source="V*",
        ),
        SuiteInfo(
            "hrbench",
            "user copy of HR-Bench 4K/8K (multiple choice, high resolution)",
            False,
            columns=ColumnMap(option_columns=("A", "B", "C", "D")),
            data_source="HRBench",
        ),
        SuiteInfo("items", "any file written by cv_data.write_items (parquet or JSONL + images)", False),
    )
}

#: Names of the suites :func:`cv_data.build_bench` generates.
BUILTIN_SUITES: tuple[str, ...] = tuple(s.name for s in SUITES.values() if s.builtin)


def list_suites() -> list[SuiteInfo]:
    """All suites, built-in first.

    Example:
        >>> [s.name for s in list_suites()][:4]
        ['orientation', 'corruption', 'multi-tool', 'crop-only']
    """
    return list(SUITES.values())


def get_suite(name: str) -> SuiteInfo:
    """The suite called ``name``.

    Raises:
        ValueError: Unknown name; the message lists the known ones.

    Example:
        >>> get_suite("nope")
        Traceback (most recent call last):
        ...
        ValueError: unknown suite 'nope'; known suites (`cv-bench list`): orientation, corruption, multi-tool, crop-only, toy, ocrbench, chartqapro, mvtoolbench, vstar, hrbench, items
    """
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; known suites (`cv-bench list`): {', '.join(SUITES)}")
    return SUITES[name]


def variant_name(transform: Sequence[str]) -> str:
    """Table column for a transform list.

    Example:
        >>> variant_name([]), variant_name(["crop", "rotate_90"]), variant_name(["flip_horizontal"])
        ('source', 'crop+rot90', 'flip-h')
    """
    return "+".join(_SHORT.get(t, t) for t in transform) or "source"


def variant_of(item: Any) -> str:
    """The item's table column: ``meta["variant"]`` if set, else derived from ``transform``.

    Example:
        >>> from cv_data.testing import tiny_item
        >>> variant_of(tiny_item(0, transform=["rotate_90"]))
        'rot90'
    """
    meta = getattr(item, "meta", None) or {}
    return str(meta.get("variant") or variant_name(list(getattr(item, "transform", None) or [])))


def base_id_of(item: Any) -> str:
    """Id of the untransformed item: ``meta["base_id"]`` if set, else the id up to its last ``/``.

    Example:
        >>> from types import SimpleNamespace
        >>> base_id_of(SimpleNamespace(id="doc-3/rot90", meta={}))
        'doc-3'
    """
    meta = getattr(item, "meta", None) or {}
    return str(meta.get("base_id") or item.id.rsplit("/", 1)[0])
