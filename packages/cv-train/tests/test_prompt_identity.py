"""One prompt everywhere: every inference backend shows the model the tokens it was trained on.

One executed multi-turn SFT trajectory (two tool calls, both returning images) is rendered through
- the ``hf:`` backend's prompt (``TransformersBackend.build_prompt``),
- the ``vllm:`` backend's prompt (``VLLMBackend.build_prompt``, with a stand-in engine),
- the ``openai:`` backend's request body, rendered as an OpenAI-compatible server renders it: the server's
  chat template applied to the request's messages and ``tools`` (Qwen's stock template, as TRL ships it,
  and ours, for a server started with ``--chat-template``),
- cv-train's SFT collator (the training template, tokenized, image pads collapsed back to one per image),
- cv-train's RL prompt (the first turn),
and all must agree character for character, for every registered preset (``default`` and ``release``: the
system prompt, the tool schema and the tool texts are the preset's, :meth:`cv_protocol.Preset.tools` passed
by the agent). Before the fix the ``openai:`` request carried no tool schema at all: the same checkpoint
scored 33.3 % through a server and 0 % through ``hf:``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cv_protocol import PRESETS, TOOL_SCHEMA, content_text, get_preset

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
PRESET_NAMES = ("default", "release", "minimal")


def test_every_registered_preset_is_covered() -> None:
    # A new registry entry must be added here, so that its prompt is checked on every path too.
    assert set(PRESET_NAMES) == set(PRESETS)


def _trl_template(family: str) -> str:
    return (Path(trl.__file__).parent / "chat_templates" / f"{family}.jinja").read_text()


@pytest.fixture(scope="module", params=PRESET_NAMES)
def preset(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def record(preset: str) -> dict[str, Any]:
    from cv_data.sft import make_trajectory

    rec = make_trajectory(0, "multi_tool", seed=1, preset=preset)
    roles = [m["role"] for m in rec["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert len(rec["images"]) == 3  # the input and two tool outputs
    assert content_text(rec["messages"][0]["content"]) == get_preset(preset).system_prompt
    return rec


def agent_messages(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """The record's conversation as the agent keeps it (string system/assistant turns, indexed images)."""
    out, k = [], 0
    for m in rec["messages"]:
        if m["role"] in ("system", "assistant"):
            out.append({"role": m["role"], "content": content_text(m["content"])})
            continue
        parts = []
        for p in m["content"]:
            if p["type"] == "image":
                parts.append({"type": "image", "image_index": k})
                k += 1
            else:
                parts.append({"type": "text", "text": p["text"]})
        out.append({"role": m["role"], "content": parts})
    return out


def server_render(body: dict[str, Any], processor: Any, template: str) -> str:
    """What an OpenAI-compatible server (vLLM) renders for a request: image parts become image
    placeholders, then the chat template runs with the request's ``tools``."""
    messages = []
    for m in body["messages"]:
        c = m["content"]
        if isinstance(c, list):
            c = [{"type": "image"} if p.get("type") == "image_url" else p for p in c]
        messages.append({"role": m["role"], "content": c})
    return processor.apply_chat_template(
        messages, chat_template=template, tools=body.get("tools"), add_generation_prompt=True, tokenize=False
    )


class _Engine:
    """Stands in for ``vllm.LLM`` (not installed here): only its tokenizer is used to build prompts."""

    def __init__(self, path: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)

    def get_tokenizer(self) -> Any:
        return self.tokenizer


def prompts(
    tiny: Path, messages: list[dict[str, Any]], images: list[Any], family: str, preset: str
) -> dict[str, str]:
    """The prompt each backend path produces for ``messages`` (the model is about to reply), given the tools
    the agent passes for ``preset`` (:meth:`cv_agent.AgentConfig.tool_schemas`)."""
    from cv_agent import AgentConfig
    from cv_agent.backends import (
        OpenAIBackend,
        OpenAIBackendConfig,
        TransformersBackend,
        TransformersBackendConfig,
        VLLMBackend,
        VLLMBackendConfig,
    )
    from cv_agent.templates import load_chat_template
    from transformers import AutoProcessor

    tools = AgentConfig(preset=preset).tool_schemas()
    assert tools == get_preset(preset).tools() and (bool(tools) == get_preset(preset).tools_in_prompt)
    hf, _ = TransformersBackend(TransformersBackendConfig(str(tiny))).build_prompt(messages, images, tools)
    engine = VLLMBackend(VLLMBackendConfig(str(tiny)), llm=_Engine(tiny), sampling_params_cls=dict)
    vllm = engine.build_prompt(messages, images, tools)["prompt"]
    body = OpenAIBackend(OpenAIBackendConfig("http://server/v1", "m")).build_request(
        messages, images, tools=tools
    )
    proc = AutoProcessor.from_pretrained(tiny)
    return {
        "hf": hf,
        "vllm": vllm,
        "openai+stock template": server_render(body, proc, _trl_template(family)),
        "openai+our template": server_render(body, proc, load_chat_template(family)),
    }


@pytest.mark.parametrize("family", FAMILIES)
def test_every_backend_renders_the_trained_tokens(
    family: str, preset: str, record: dict[str, Any], runs_root: Path
) -> None:
    from cv_agent.templates import load_chat_template
    from cv_agent.tiny import build_tiny_vlm
    from cv_train.rl import collapse_image_runs
    from cv_train.sft import make_sft_collator
    from transformers import AutoProcessor

    tiny = build_tiny_vlm(runs_root / "tiny-models" / f"identity-{family}", family)
    messages = agent_messages(record)
    final = messages[-1]["content"]
    rendered = prompts(tiny, messages[:-1], record["images"], family, preset)
    reference = rendered["hf"]
    for path, text in rendered.items():
        assert text == reference, f"{family}/{preset}: {path} differs from hf"
    assert reference.count("<|vision_start|><|image_pad|><|vision_end|>") == 3
    p = get_preset(preset)
    if p.tools_in_prompt:
        assert "# Tools" in reference and '"name": "code_image_tool"' in reference
        assert reference.startswith("<|im_start|>system\n" + p.system_prompt + "\n\n# Tools\n")
        assert json.dumps(p.tool_schema(), ensure_ascii=False) in reference  # this preset's descriptions
    else:  # e.g. minimal: the system prompt describes the call; no schema, the system turn is the prompt alone
        assert "# Tools" not in reference and '"parameters"' not in reference
        assert reference.startswith("<|im_start|>system\n" + p.system_prompt + "<|im_end|>\n")

    # cv-train SFT: the collator's tokens (what the model is trained on) are the prompt and the reply.
    proc = AutoProcessor.from_pretrained(tiny)
    collate = make_sft_collator(
        proc,
        chat_template=load_chat_template(family, training=True),
        max_length=100_000,
        tools=get_preset(preset).tools(),
    )
    ids = collate([{"messages": record["messages"], "images": record["images"]}])["input_ids"][0].tolist()
    pad = proc.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    trained = proc.tokenizer.decode(collapse_image_runs(ids, pad), skip_special_tokens=False)
    assert trained == reference + final + "<|im_end|>\n"


@pytest.mark.parametrize("family", FAMILIES)
def test_rl_first_turn_prompt_is_the_backends_first_prompt(
    family: str, preset: str, record: dict[str, Any], runs_root: Path
) -> None:
    """cv-train's RL rows, rendered with the RL processor's template (the preset's tool schema fixed in it,
    whatever ``tools`` TRL passes), are the first-turn prompt."""
    from cv_agent.tiny import build_tiny_vlm
    from cv_data import Item
    from cv_train.data import rl_rows
    from cv_train.rl import prepare_rl_processor
    from transformers import AutoProcessor

    tiny = build_tiny_vlm(runs_root / "tiny-models" / f"identity-{family}", family)
    messages = agent_messages(record)[:2]
    item = Item(
        id="x", images=record["images"][:1], question=messages[1]["content"][-1]["text"], answer="a",
        transform=[], bbox=None, data_source="t",
    )  # fmt: skip
    (row,) = rl_rows([item], preset=preset)
    proc = prepare_rl_processor(AutoProcessor.from_pretrained(tiny), family, preset)
    rl = proc.apply_chat_template(row["prompt"], tools=None, add_generation_prompt=True, tokenize=False)
    for path, text in prompts(tiny, messages, record["images"][:1], family, preset).items():
        assert text == rl, f"{family}/{preset}: {path} differs from the RL prompt"


def test_without_the_inline_block_the_stock_template_shows_no_tools(
    record: dict[str, Any], runs_root: Path
) -> None:
    """Why the block goes into the system message: a server with Qwen2.5-VL's stock template ignores a
    ``tools`` field, so ``tool_prompt="request"`` would show the model no tool schema (the old bug)."""
    from cv_agent.backends import OpenAIBackend, OpenAIBackendConfig
    from cv_agent.tiny import build_tiny_vlm
    from transformers import AutoProcessor

    tiny = build_tiny_vlm(runs_root / "tiny-models" / "identity-qwen2_5_vl", "qwen2_5_vl")
    proc = AutoProcessor.from_pretrained(tiny)
    messages = agent_messages(record)[:-1]
    body = OpenAIBackend(OpenAIBackendConfig("http://s/v1", "m", tool_prompt="request")).build_request(
        messages, record["images"], tools=[TOOL_SCHEMA]
    )
    assert "# Tools" not in server_render(body, proc, _trl_template("qwen2_5_vl"))
