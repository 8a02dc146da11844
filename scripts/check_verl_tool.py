"""Run cv-train's verl tool adapter (`cv_train.verl_tool`) inside verl's real tool machinery, from PyPI, and
record verl's tool interface and what the adapter produced there.

verl is not a dependency of this project (it pins transformers below this workspace's and pulls in ray), so
it is installed into a throwaway folder and put on PYTHONPATH beside the workspace environment (torch,
transformers and pillow come from there). No GPU and no model are needed: verl's tool modules, its tool
registry, its hermes tool-call parser and its agent loop's `_call_tool` are plain Python.

    uv pip install --python .venv/bin/python --target /tmp/verl_pkg --no-deps verl==0.9.1 omegaconf \
        antlr4-python3-runtime==4.9.3 hydra-core ray==2.49.2 tensordict==0.10.0 codetiming orjson cachetools \
        uvicorn fastapi starlette opentelemetry-api msgpack requests urllib3 jsonschema attrs referencing \
        rpds-py jsonschema-specifications charset-normalizer idna certifi pyvers cloudpickle
    PYTHONPATH=/tmp/verl_pkg uv run python scripts/check_verl_tool.py \
        --record packages/cv-train/tests/fixtures/verl_tool_interface.json

What it checks, with verl's own code:
1. `initialize_tools_from_config` loads both shipped tool configs (packages/cv-train/recipes/verl/*.yaml):
   the tool is a `verl.tools.base_tool.BaseTool`, and the schema verl hands the chat template
   (`tool_schema.model_dump(exclude_unset=True, exclude_none=True)`, as its agent loop does) is the preset's.
2. A trajectory through verl's `HermesToolParser.extract_tool_calls` and `ToolAgentLoop._call_tool` (the
   create / execute(agent_data=...) / release cycle, with a real `AgentData`): a rotation, a crop of the
   rotated image, an unreadable call, an index past the last image, code over the release's limit. The
   replies' texts and images, and the trace in `agent_data.extra_fields`, are recorded.
3. The reward: `compute_score` loaded the way verl loads a custom reward function (`load_extern_object` on
   `pkg://cv_train.verl_tool`), on `extra_info` merged with the trace as verl's reward loop merges
   `tool_extra_fields`.
It also records BaseTool's and ToolResponse's interface; cv-train's test_verl_tool.py checks the adapter
against that record (without verl) and reproduces the recorded run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import inspect
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "packages/cv-train/recipes/verl"
STEPS = [
    (
        "rotate",
        {"code": "result = image.rotate(90, expand=True)", "description": "upright", "image_index": 0},
    ),
    ("crop", {"code": "result = image.crop((10, 20, 50, 80))", "description": "zoom", "image_index": 1}),
    ("unreadable", {"description": "no code", "image_index": 0}),
    ("bad_index", {"code": "result = image", "description": "", "image_index": 9}),
    ("too_long", {"code": "result = image" + " " * 2100, "description": "", "image_index": 0}),
]


def interface() -> dict:
    """BaseTool's methods and ToolResponse's fields, as verl defines them."""
    from verl.tools.base_tool import BaseTool
    from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

    methods = {}
    for name in ("__init__", "get_openai_tool_schema", "create", "execute", "calc_reward", "release"):
        fn = inspect.unwrap(getattr(BaseTool, name))
        methods[name] = {
            "signature": str(inspect.signature(fn)).replace("'", ""),
            "async": inspect.iscoroutinefunction(fn),
        }
    return {
        "verl": importlib.metadata.version("verl"),
        "BaseTool": methods,
        "ToolResponse": sorted(ToolResponse.model_fields),
        "OpenAIFunctionToolSchema": sorted(OpenAIFunctionToolSchema.model_fields),
    }


def load_configs() -> dict:
    from cv_protocol import get_preset
    from verl.tools.base_tool import BaseTool
    from verl.tools.tool_registry import initialize_tools_from_config

    out = {}
    for path in sorted(CONFIGS.glob("*.yaml")):
        (tool,) = initialize_tools_from_config(str(path))
        rendered = tool.tool_schema.model_dump(exclude_unset=True, exclude_none=True)
        assert isinstance(tool, BaseTool), type(tool).__mro__
        assert rendered == get_preset(tool.core.preset.name).tool_schema(), (path.name, rendered)
        out[path.name] = {"preset": tool.core.preset.name, "name": tool.name, "schema_is_the_presets": True}
    return out


async def trajectory() -> dict:
    from cv_train.verl_tool import INPUT_SIZE_KEY, TRACE_KEY
    from PIL import Image
    from verl.experimental.agent_loop.tool_agent_loop import AgentData, ToolAgentLoop
    from verl.experimental.agent_loop.tool_parser import HermesToolParser
    from verl.tools.tool_registry import initialize_tools_from_config

    (tool,) = initialize_tools_from_config(str(CONFIGS / "code_image_tool_release.yaml"))
    loop = object.__new__(ToolAgentLoop)  # only _call_tool's attributes are needed
    loop.tools = {tool.name: tool}
    loop.max_tool_response_length = 10_000
    loop.tool_response_truncate_side = "middle"
    image = Image.new("RGB", (200, 100), (200, 30, 30))
    agent_data = AgentData(
        messages=[],
        image_data=[image],
        video_data=None,
        audio_data=None,
        mm_processor_kwargs=None,
        metrics={},
        request_id="r0",
        tools_kwargs={tool.name: {"create_kwargs": {"item_id": "x"}}},
    )

    class Tok:  # the parser decodes token ids; here the "ids" are the reply text itself
        def decode(self, ids):
            return ids

    parser = HermesToolParser(Tok())
    steps = []
    for turn, (label, args) in enumerate(STEPS, start=1):
        agent_data.assistant_turns = turn
        reply = (
            "<think>step</think>\n<tool_call>\n"
            + json.dumps({"name": tool.name, "arguments": args})
            + "\n</tool_call>"
        )
        _, calls = await parser.extract_tool_calls(reply, [tool.tool_schema])
        (call,) = calls
        response, reward, _ = await loop._call_tool(call, agent_data.tools_kwargs, agent_data)
        images = [im.size for im in (response.image or [])]
        for im in response.image or []:  # as verl does after each tool turn
            agent_data.image_data.append(im)
        steps.append({"step": label, "text": response.text, "image_sizes": images, "reward": reward})
    trace = agent_data.extra_fields[TRACE_KEY]
    return {
        "steps": steps,
        "trace": [
            {k: c[k] for k in ("turn", "ok", "error_kind", "image_index", "output_index")}
            | {"ops": [{k: op[k] for k in ("name", "box", "box_input")} for op in c["ops"]]}
            for c in trace
        ],
        "input_size": agent_data.extra_fields[INPUT_SIZE_KEY],
        "extra_fields": agent_data.extra_fields,
    }


def reward(extra_fields: dict) -> dict:
    from verl.utils.import_utils import load_extern_object

    compute_score = load_extern_object(module_path="pkg://cv_train.verl_tool", object_name="compute_score")
    extra_info = {
        "transform": ["rotate_270", "crop"],
        "bbox": [120, 10, 180, 50],
        "task_type": "ocr",
        "id": "x",
    }
    extra_info.update(
        extra_fields.items()
    )  # verl's reward loop: extra_info.update(tool_extra_fields.items())
    text = (
        "<think>turn</think>\n<tool_call>\n{}\n</tool_call>\nuser\n<tool_response>\nHere is the processed image."
        "\n</tool_response>\nassistant\n<think>read</think>\n<answer>STOP</answer>"
    )
    return compute_score(
        data_source="doc", solution_str=text, ground_truth="STOP", extra_info=extra_info, variant="reference"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", type=Path, help="write the interface and the run here (JSON)")
    args = ap.parse_args(argv)
    try:
        import verl  # noqa: F401
    except ImportError as e:
        print(f"verl is not importable ({e}); see this script's docstring for the install", file=sys.stderr)
        return 2
    record = {"interface": interface(), "configs": load_configs()}
    run = asyncio.run(trajectory())
    extra_fields = run.pop("extra_fields")
    record["run"] = run
    record["reward"] = reward(extra_fields)
    print(json.dumps(record, indent=2))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {args.record}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
