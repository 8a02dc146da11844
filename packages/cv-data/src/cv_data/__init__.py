"""cv-data: transforms, corruptions, synthetic sources, RL items, executed SFT trajectories, benchmark suites."""

from cv_protocol import TRANSFORM_NAMES  # re-exported: cv_data.TRANSFORM_NAMES is what Item accepts

from ._expert import STYLES as CODE_STYLES
from ._expert import orientation_code
from .bench import (
    ORIENTATION_VARIANTS,
    SUITES,
    BenchConfig,
    build_bench,
    corruption_variants,
    orientation_variants,
)
from .item import TASK_TYPES, Item, check_bbox
from .records import (
    ColumnMap,
    load_hf,
    load_table,
    read_items,
    read_verl,
    rows_to_items,
    write_items,
    write_parquet,
    write_verl,
)
from .report import BuildReport, RecordError
from .rl import ORIENTATION_TRANSFORMS, RLBuildConfig, build_rl_items, sample_transform
from .sft import (
    SFT_KINDS,
    SFTBuildConfig,
    TrajectoryError,
    build_sft,
    load_sft,
    make_trajectory,
    read_sft,
    replay_trajectory,
    save_sft,
)
from .sources import (
    SOURCES,
    make_chart_item,
    make_chart_items,
    make_document_item,
    make_document_items,
    make_scene_item,
    make_scene_items,
)
from .teacher import TeacherConfig, build_teacher_sft
from .transforms import (
    CORRUPTIONS,
    SEVERITIES,
    TRANSFORMS,
    apply_transform,
    apply_transforms,
    corrupt,
    map_bbox,
    transform_item,
)

__all__ = [
    "CODE_STYLES",
    "CORRUPTIONS",
    "ORIENTATION_TRANSFORMS",
    "ORIENTATION_VARIANTS",
    "SEVERITIES",
    "SFT_KINDS",
    "SOURCES",
    "SUITES",
    "TASK_TYPES",
    "TRANSFORMS",
    "TRANSFORM_NAMES",
    "BenchConfig",
    "BuildReport",
    "ColumnMap",
    "Item",
    "RLBuildConfig",
    "RecordError",
    "SFTBuildConfig",
    "TeacherConfig",
    "TrajectoryError",
    "apply_transform",
    "apply_transforms",
    "build_bench",
    "build_rl_items",
    "build_sft",
    "build_teacher_sft",
    "check_bbox",
    "corrupt",
    "corruption_variants",
    "load_hf",
    "load_sft",
    "load_table",
    "make_chart_item",
    "make_chart_items",
    "make_document_item",
    "make_document_items",
    "make_scene_item",
    "make_scene_items",
    "make_trajectory",
    "map_bbox",
    "orientation_code",
    "orientation_variants",
    "read_items",
    "read_sft",
    "read_verl",
    "replay_trajectory",
    "rows_to_items",
    "sample_transform",
    "save_sft",
    "transform_item",
    "write_items",
    "write_parquet",
    "write_verl",
]
__version__ = "0.1.0"
