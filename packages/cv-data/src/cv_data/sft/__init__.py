"""SFT trajectories whose every tool output was produced by really executing the code in cv-sandbox.

Five kinds (paper): ``single_tool``, ``multi_tool``, ``multi_crop``, ``error_recovery`` and ``no_tool``.
A scripted expert (:mod:`cv_data.expert`) writes the thinking and the code; each call runs through
:class:`cv_sandbox.ImageWorkspace` and the real output image (or the real error text) becomes the tool
message. One module per job:

- :mod:`.record`: the record layout and :func:`sft_record`, its one builder (also used by ``cv-bench distill``);
- :mod:`.conversation`: :class:`Conversation`, which writes the messages while executing each call;
- :mod:`.planning`: the expert's steps (orientation fix, crop and zoom) and box helpers;
- :mod:`.kinds`: the five kinds, each a scripted plan;
- :mod:`.build`: :class:`SFTBuildConfig`, :func:`make_trajectory`, :func:`build_sft` (in memory) and
  :func:`build_sft_dataset` (streamed, sharded, resumable: ``cv-data build-sft``);
- :mod:`.replay`: :func:`replay_trajectory`, which re-executes a record and compares;
- :mod:`.io`: the parquet layout :data:`SFT_LAYOUT` (images once; the ShareGPT columns LLaMA-Factory
  reads), :func:`save_sft` / :func:`load_sft`.
"""

from .build import SFTBuildConfig, build_sft, build_sft_dataset, make_trajectory
from .conversation import Conversation, TrajectoryError
from .io import SFT_LAYOUT, iter_sft, llamafactory_dataset_info, load_sft, read_sft, save_sft, sft_row
from .kinds import SFT_KINDS
from .record import RECORD_FIELDS, sft_record
from .replay import replay_trajectory

__all__ = [
    "RECORD_FIELDS",
    "SFT_KINDS",
    "SFT_LAYOUT",
    "Conversation",
    "SFTBuildConfig",
    "TrajectoryError",
    "build_sft",
    "build_sft_dataset",
    "iter_sft",
    "llamafactory_dataset_info",
    "load_sft",
    "make_trajectory",
    "read_sft",
    "replay_trajectory",
    "save_sft",
    "sft_record",
    "sft_row",
]
