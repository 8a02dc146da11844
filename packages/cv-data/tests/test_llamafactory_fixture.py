"""`build-sft` output loads in LLaMA-Factory: a recorded run of its real data pipeline (llamafactory 0.9.5 from
PyPI, `scripts/check_llamafactory_sft.py`: `dataset_info.json`, ShareGPT converter, qwen2_vl template) and a
check that today's output still has the shape it read.

LLaMA-Factory pins an older transformers and a training stack, so it cannot join this package's test
environment; re-record with the command in the script's docstring when the layout changes on purpose.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from cv_data import SFTBuildConfig, build_sft_dataset

FIXTURE = Path(__file__).parent / "fixtures" / "llamafactory_sft.json"
SCRIPT = Path(__file__).parents[3] / "scripts" / "check_llamafactory_sft.py"


def _script():
    spec = importlib.util.spec_from_file_location("check_llamafactory_sft", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llamafactory_read_every_trajectory_with_the_tools_block() -> None:
    obs = json.loads(FIXTURE.read_text())
    assert len(obs["examples"]) == obs["rows_in"] == 3
    for ex in obs["examples"]:
        assert ex["has_tools_block"] and ex["has_system_prompt"]  # the same # Tools block as inference
        assert ex["image_pad_runs"] == ex["images"] >= 1  # every image, tool outputs included, is rendered
        assert ex["tool_responses"] >= 1 and ex["tool_responses_trained"] == 0 and ex["answer_trained"]


def test_todays_output_has_the_shape_llamafactory_read(tmp_path: Path) -> None:
    obs = json.loads(FIXTURE.read_text())
    b = obs["build"]
    res = build_sft_dataset(
        SFTBuildConfig(num=b["num"], seed=b["seed"], kinds=b["kinds"], progress=False), tmp_path / "sft"
    )
    info = json.loads((res.out / "dataset_info.json").read_text())["codevision_sft"]
    assert info["file_name"] == "data" and info["columns"]["tools"] == "tools"
    assert _script().sharegpt_columns_hash(res.files) == obs["columns_sha256"], (
        "the ShareGPT columns changed shape: rerun scripts/check_llamafactory_sft.py --record (see its docstring)"
    )
