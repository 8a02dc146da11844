"""build_tiny_vlm: loadable, generates, token ids consistent, templates render tools and tool images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cv_agent import chat_template_path, load_chat_template
from cv_agent.tiny import SPECIAL_TOKENS, build_tiny_vlm
from cv_protocol import SYSTEM_PROMPT, TOOL_SCHEMA
from PIL import Image

# Without the `hf` extra (a bare `cv-agent` install) these tests cannot run; in the workspace they do.
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
AutoModelForImageTextToText, AutoProcessor = (
    transformers.AutoModelForImageTextToText,
    transformers.AutoProcessor,
)


def _conversation() -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": Image.new("RGB", (64, 64), "red")},
                {"type": "text", "text": "What?"},
            ],
        },
        {
            "role": "assistant",
            "content": '<think>x</think>\n<tool_call>\n{"name": "code_image_tool", "arguments": {}}\n</tool_call>',
        },
        {
            "role": "tool",
            "content": [
                {"type": "image", "image": Image.new("RGB", (64, 64), "blue")},
                {"type": "text", "text": "Execution succeeded."},
            ],
        },
        {"role": "assistant", "content": "<answer>A</answer>"},
    ]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_tiny_model_loads_and_generates(family: str, request: pytest.FixtureRequest) -> None:
    path: Path = request.getfixturevalue("tiny_qwen25" if family == "qwen2_5_vl" else "tiny_qwen3")
    model = AutoModelForImageTextToText.from_pretrained(path)
    proc = AutoProcessor.from_pretrained(path)
    assert model.config.model_type == family
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    tok = proc.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t, _ in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS)
    assert model.config.image_token_id == ids["<|image_pad|>"]
    assert model.config.vision_start_token_id == ids["<|vision_start|>"]
    assert model.config.vision_end_token_id == ids["<|vision_end|>"]
    assert model.generation_config.eos_token_id == ids["<|im_end|>"] == tok.eos_token_id
    # Each tag is ONE token (not split by BPE), and the text tags survive skip_special_tokens.
    enc = tok("<tool_call><think>hi</think></tool_call><answer>A</answer>")["input_ids"]
    assert enc[0] == ids["<tool_call>"] and enc[1] == ids["<think>"]
    assert "<tool_call>" in tok.decode(enc, skip_special_tokens=True)

    text = proc.apply_chat_template(
        _conversation()[:4], tools=[TOOL_SCHEMA], add_generation_prompt=True, tokenize=False
    )
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert '"name": "code_image_tool"' in text and "<tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")
    inputs = proc(
        text=[text],
        images=[Image.new("RGB", (64, 64), "red"), Image.new("RGB", (96, 64), "blue")],
        return_tensors="pt",
    )
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_training_template_masks_only_assistant_output(family: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue("tiny_qwen25" if family == "qwen2_5_vl" else "tiny_qwen3")
    proc = AutoProcessor.from_pretrained(path)
    out = proc.apply_chat_template(
        _conversation(),
        tools=[TOOL_SCHEMA],
        chat_template=chat_template_path(family, training=True).read_text(),
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        return_tensors="pt",
    )
    mask = out["assistant_masks"][0].bool()
    trained = proc.tokenizer.decode(out["input_ids"][0][mask])
    assert trained.startswith("<think>x</think>\n<tool_call>")
    assert "<answer>A</answer><|im_end|>" in trained
    assert "Execution succeeded" not in trained and "What?" not in trained  # tool/user text never trained
    # Inference and training variants render the same text.
    plain = proc.apply_chat_template(_conversation(), tools=[TOOL_SCHEMA], tokenize=False)
    train = proc.apply_chat_template(
        _conversation(), tools=[TOOL_SCHEMA], tokenize=False, chat_template=load_chat_template(family, True)
    )
    assert plain == train


def test_qwen2_5_template_default_system_prompt_and_trl_identity() -> None:
    import trl

    trl_dir = Path(trl.__file__).parent / "chat_templates"
    assert chat_template_path("qwen3_vl").read_text() == (trl_dir / "qwen3_vl.jinja").read_text()
    assert (
        chat_template_path("qwen3_vl", True).read_text() == (trl_dir / "qwen3_vl_training.jinja").read_text()
    )
    with pytest.raises(ValueError, match="family"):
        chat_template_path("llama")


def test_build_is_cached_and_refuses_foreign_dirs(tiny_qwen25: Path, tmp_path: Path) -> None:
    before = (tiny_qwen25 / "model.safetensors").stat().st_mtime_ns
    again = build_tiny_vlm(tiny_qwen25, "qwen2_5_vl")
    assert again == tiny_qwen25
    assert (tiny_qwen25 / "model.safetensors").stat().st_mtime_ns == before
    assert json.loads((tiny_qwen25 / "cv_agent_tiny.json").read_text())["family"] == "qwen2_5_vl"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_tiny_vlm(foreign)
    with pytest.raises(ValueError, match="family"):
        build_tiny_vlm(tmp_path / "y", family="llava")


def test_seed_changes_weights(tiny_dir: Path) -> None:
    a = build_tiny_vlm(tiny_dir / "s1", "qwen2_5_vl", seed=1)
    b = build_tiny_vlm(tiny_dir / "s2", "qwen2_5_vl", seed=2)
    from safetensors.torch import load_file

    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    key = next(k for k in wa if "embed_tokens" in k)
    assert not torch.equal(wa[key], wb[key])
