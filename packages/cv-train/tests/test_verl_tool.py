"""The verl tool adapter, checked against verl's real interface as recorded from PyPI.

verl cannot be installed into this workspace (it pins transformers below ours), so
`scripts/check_verl_tool.py` runs the adapter inside real verl (its tool registry, hermes parser and agent
loop's `_call_tool`) and records verl's tool interface and the run in `fixtures/verl_tool_interface.json`.
Here a stand-in `verl` package whose signatures must equal the recorded ones hosts the adapter, the calls
are made as verl's `_call_tool` makes them, and the recorded run is reproduced.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from cv_protocol import RELEASE_PRESET, get_preset
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
RECORD = json.loads((Path(__file__).parent / "fixtures" / "verl_tool_interface.json").read_text())
CONFIGS = ROOT / "packages/cv-train/recipes/verl"

# A stand-in for verl's tool modules: the names, fields and signatures of verl.tools.base_tool /
# verl.tools.schemas (checked against the recording below), with trivial bodies.
_SCHEMAS = """
from typing import Any, Optional

from pydantic import BaseModel, Field


class OpenAIFunctionPropertySchema(BaseModel):
    type: str | list[str]
    description: str | None = None
    enum: list[Any] | None = None


class OpenAIFunctionParametersSchema(BaseModel):
    type: str
    properties: dict[str, OpenAIFunctionPropertySchema]
    required: list[str] = Field(default_factory=list)


class OpenAIFunctionSchema(BaseModel):
    name: str
    description: str
    parameters: OpenAIFunctionParametersSchema
    strict: bool = False


class OpenAIFunctionToolSchema(BaseModel):
    type: str
    function: OpenAIFunctionSchema


class ToolResponse(BaseModel):
    text: str | None = None
    image: list[Any] | None = None
    video: list[Any] | None = None
"""
_BASE_TOOL = """
from typing import Any, Optional
from uuid import uuid4

from .schemas import OpenAIFunctionToolSchema, ToolResponse


class BaseTool:
    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema):
        self.config = config
        self.tool_schema = tool_schema or self.get_openai_tool_schema()
        self.name = self.tool_schema.function.name

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return self.tool_schema

    async def create(self, instance_id: Optional[str] = None, **kwargs) -> tuple[str, ToolResponse]:
        return instance_id or str(uuid4()), ToolResponse()

    async def execute(self, instance_id: str, parameters: dict[str, Any], **kwargs) -> tuple[ToolResponse, float, dict]:
        return ToolResponse(text="Updated the tool state."), 0.0, {}

    async def calc_reward(self, instance_id: str, **kwargs) -> float:
        return 0.0

    async def release(self, instance_id: str, **kwargs) -> None:
        pass
"""


@pytest.fixture
def verl_stub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    pkg = tmp_path / "verl" / "tools"
    pkg.mkdir(parents=True)
    (tmp_path / "verl" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "schemas.py").write_text(textwrap.dedent(_SCHEMAS))
    (pkg / "base_tool.py").write_text(textwrap.dedent(_BASE_TOOL))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "verl" or m.startswith("verl.")]:
        monkeypatch.delitem(sys.modules, name)
    import cv_train.verl_tool as vt

    monkeypatch.delitem(vt.__dict__, "CodeImageTool", raising=False)
    yield importlib.import_module("verl.tools.base_tool")
    vt.__dict__.pop("CodeImageTool", None)
    for name in [m for m in sys.modules if m == "verl" or m.startswith("verl.")]:
        sys.modules.pop(name)


def test_the_stand_in_has_verls_recorded_interface(verl_stub: Any) -> None:
    from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

    assert RECORD["interface"]["verl"] == "0.9.1"
    for name, want in RECORD["interface"]["BaseTool"].items():
        fn = getattr(verl_stub.BaseTool, name)
        assert str(inspect.signature(fn)).replace("'", "") == want["signature"], name
        assert inspect.iscoroutinefunction(fn) == want["async"], name
    assert sorted(ToolResponse.model_fields) == RECORD["interface"]["ToolResponse"]
    assert sorted(OpenAIFunctionToolSchema.model_fields) == RECORD["interface"]["OpenAIFunctionToolSchema"]


def test_the_adapter_is_a_base_tool_with_compatible_methods(verl_stub: Any) -> None:
    import cv_train.verl_tool as vt

    cls = vt.CodeImageTool  # what verl's get_tool_class does: getattr(module, class_name)
    assert issubclass(cls, verl_stub.BaseTool) and cls.__module__ == "cv_train.verl_tool"
    for name in ("create", "execute", "release"):
        ours, base = (
            inspect.signature(getattr(cls, name)),
            inspect.signature(getattr(verl_stub.BaseTool, name)),
        )
        assert inspect.iscoroutinefunction(getattr(cls, name))
        # the same parameters, so every call verl makes binds
        assert [(p.name, p.kind) for p in ours.parameters.values()] == [
            (p.name, p.kind) for p in base.parameters.values()
        ], name


def _load_tool_config(path: Path) -> Any:
    """What verl's initialize_tools_from_config does with one entry of a tool YAML."""
    from verl.tools.schemas import OpenAIFunctionToolSchema

    (entry,) = yaml.safe_load(path.read_text())["tools"]
    module, name = entry["class_name"].rsplit(".", 1)
    schema = entry.get("tool_schema")
    schema = OpenAIFunctionToolSchema.model_validate(schema) if schema is not None else None
    return getattr(importlib.import_module(module), name)(config=entry["config"], tool_schema=schema)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_tool_configs_render_the_presets_schema(verl_stub: Any, path: Path) -> None:
    tool = _load_tool_config(path)
    assert RECORD["configs"][path.name] == {
        "name": tool.name,
        "preset": tool.core.preset.name,
        "schema_is_the_presets": True,
    }
    rendered = tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True)  # as verl's agent loop
    assert rendered == get_preset(tool.core.preset.name).tool_schema()


def test_a_trajectory_through_verls_call_cycle_reproduces_the_recorded_run(verl_stub: Any) -> None:
    from cv_train.verl_tool import INPUT_SIZE_KEY, TRACE_KEY, compute_score

    spec = importlib.util.spec_from_file_location("check_verl_tool", ROOT / "scripts" / "check_verl_tool.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    tool = _load_tool_config(CONFIGS / "code_image_tool_release.yaml")
    agent_data = SimpleNamespace(
        image_data=[Image.new("RGB", (200, 100), (200, 30, 30))],
        extra_fields={},
        assistant_turns=0,
        tools_kwargs={tool.name: {"create_kwargs": {"item_id": "x"}}},
    )

    async def call_tool(args: dict) -> Any:  # verl's ToolAgentLoop._call_tool, for a BaseTool
        kwargs = agent_data.tools_kwargs.get(tool.name, {})
        instance_id, _ = await tool.create(create_kwargs=kwargs.get("create_kwargs", {}))
        try:
            return await tool.execute(instance_id, args, agent_data=agent_data)
        finally:
            await tool.release(instance_id)

    steps = []
    for turn, (label, args) in enumerate(script.STEPS, start=1):
        agent_data.assistant_turns = turn
        response, reward, _ = asyncio.run(call_tool(json.loads(json.dumps(args))))
        agent_data.image_data.extend(response.image or [])
        sizes = [list(im.size) for im in response.image or []]
        steps.append({"step": label, "text": response.text, "image_sizes": sizes, "reward": reward})
    assert steps == RECORD["run"]["steps"]
    assert steps[0]["text"].startswith(RELEASE_PRESET.success_template[:40])
    trace = [
        {k: c[k] for k in ("turn", "ok", "error_kind", "image_index", "output_index")}
        | {"ops": [{k: op[k] for k in ("name", "box", "box_input")} for op in c["ops"]]}
        for c in agent_data.extra_fields[TRACE_KEY]
    ]
    assert json.loads(json.dumps(trace)) == RECORD["run"]["trace"]
    assert agent_data.extra_fields[INPUT_SIZE_KEY] == RECORD["run"]["input_size"] == [200, 100]
    # the crop of the rotated image, in input image 0's frame: our lineage, not the release's regex
    assert trace[1]["ops"][0]["box_input"] == [120.0, 10.0, 180.0, 50.0]
    # the reward, on extra_info merged with the trace as verl's reward loop merges tool_extra_fields
    extra_info = {
        "transform": ["rotate_270", "crop"],
        "bbox": [120, 10, 180, 50],
        "task_type": "ocr",
        "id": "x",
    }
    extra_info.update(json.loads(json.dumps(agent_data.extra_fields)).items())
    text = (
        "<think>turn</think>\n<tool_call>\n{}\n</tool_call>\nuser\n<tool_response>\nHere is the processed image."
        "\n</tool_response>\nassistant\n<think>read</think>\n<answer>STOP</answer>"
    )
    got = compute_score("doc", text, "STOP", extra_info, variant="reference")
    assert got == pytest.approx(RECORD["reward"])


def test_without_agent_data_the_inputs_come_from_create_kwargs(verl_stub: Any) -> None:
    """A loop that passes no AgentData (the release's fork) gives the images in create_kwargs."""
    tool = _load_tool_config(CONFIGS / "code_image_tool.yaml")

    async def go() -> Any:
        iid, _ = await tool.create(create_kwargs={"image": [Image.new("RGB", (30, 20))]})
        out = await tool.execute(iid, {"code": "result = image.rotate(90, expand=True)"})
        await tool.release(iid)
        return out

    response, _, metrics = asyncio.run(go())
    assert response.image[0].size == (20, 30) and metrics["ok"] and metrics["ops"] == ["rotate_90"]
    # the default preset's texts, its note on the missing index included (the same words as the agent's)
    assert response.text == (
        "Execution succeeded. The result is image 1 (20x30 pixels).\n"
        "Note: no valid image_index was given; image 0 was used."
    )


def test_config_errors_are_clear() -> None:
    from cv_train.verl_tool import VerlToolConfig

    with pytest.raises(ValueError, match=r"unknown config keys \['timeout'\]"):
        VerlToolConfig.from_dict({"type": "native", "timeout": 1})
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        VerlToolConfig.from_dict({"preset": "nope"})
    with pytest.raises(ValueError, match="native verl tool"):
        VerlToolConfig.from_dict({"type": "mcp"})


def test_importing_the_module_never_imports_verl_and_explains_a_missing_verl() -> None:
    code = (
        "import sys, cv_train.verl_tool as vt\n"
        "assert 'verl' not in sys.modules\n"
        "try:\n    vt.CodeImageTool\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "is a verl tool: install verl in this environment" in out


def test_compute_score_keys_are_fixed_and_release_boxes_are_read() -> None:
    from cv_train.verl_tool import INPUT_SIZE_KEY, TRACE_KEY, compute_score, model_text

    crop = {"ok": True, "ops": [{"name": "crop", "box_input": [10, 10, 50, 50]}]}
    plain = compute_score("d", "<think>x</think><answer>A</answer>", "A", {"transform": []})
    cropped = compute_score(
        "d",
        "<think>x</think><answer>A</answer>",
        {"ground_truth": "A"},
        {
            "transform": ["crop"],
            "bbox_2d": [20, 20, 100, 100],
            TRACE_KEY: [crop],
            INPUT_SIZE_KEY: [100, 100],
            "image_size": [200, 200],
        },
    )
    assert set(plain) == set(cropped) and plain["acc"] == cropped["acc"] == 1.0
    # bbox_2d (the release's column) scaled from the 200x200 stored image into the 100x100 frame the tool saw
    assert cropped["must_use"] == 1.0 and cropped["score"] > plain["score"]
    assert model_text("a\nuser\n<tool_response>\nx\n</tool_response>\nassistant\nb") == "ab"
