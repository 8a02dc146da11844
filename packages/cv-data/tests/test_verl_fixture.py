"""The default `build-rl` output loads in verl: a recorded run of verl's real `RLHFDataset` (verl 0.9.1 from
PyPI, `scripts/check_verl_dataset.py`) and a check that today's output still has the shape verl read.

verl pulls in ray and pins transformers, so it cannot join this package's test environment; the script
installs it into a throwaway folder and records what verl's agent loop received from each row. Re-record
with the command in the script's docstring when the layout changes on purpose.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

from cv_data import RLBuildConfig, build_rl
from cv_protocol import DEFAULT_PRESET, TOOL_NAME

FIXTURE = Path(__file__).parent / "fixtures" / "verl_rlhf_dataset.json"
SCRIPT = Path(__file__).parents[3] / "scripts" / "check_verl_dataset.py"


def _script():
    spec = importlib.util.spec_from_file_location("check_verl_dataset", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_verl_kept_every_row_and_saw_our_prompt_and_tool_fields() -> None:
    obs = json.loads(FIXTURE.read_text())
    assert (
        obs["rows_in"] == obs["rows_after_filter"] == 5
    )  # verl's prompt filter dropped none (it used to: 0)
    system = hashlib.sha256(DEFAULT_PRESET.system_prompt.encode()).hexdigest()
    for i, row in enumerate(obs["rows"]):
        assert row["roles"] == ["system", "user"] and row["user_parts"] == ["image", "text"]
        assert row["system_sha256"] == system and row["index"] == i and row["agent_name"] == "tool_agent"
        assert (
            list(row["tools_kwargs"]) == [TOOL_NAME]
            and row["tools_kwargs"][TOOL_NAME]["create_kwargs"]["item_id"]
        )


def test_todays_output_has_the_shape_verl_read(tmp_path: Path) -> None:
    obs = json.loads(FIXTURE.read_text())
    b = obs["build"]
    cfg = RLBuildConfig(
        num=b["num"], seed=b["seed"], sources=dict.fromkeys(b["sources"], 1.0), progress=False
    )
    res = build_rl(cfg, tmp_path / "rl")
    assert _script().verl_columns_hash(res.files) == obs["columns_sha256"], (
        "the verl columns changed shape: rerun scripts/check_verl_dataset.py --record (see its docstring)"
    )
