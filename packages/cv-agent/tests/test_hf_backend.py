"""transformers backend end to end with a tiny random Qwen-VL built locally."""

from __future__ import annotations

from pathlib import Path

import pytest
from cv_agent import (
    Agent,
    AgentConfig,
    BackendError,
    TransformersBackend,
    TransformersBackendConfig,
    make_backend,
)
from cv_protocol import render_tool_call
from cv_sandbox import Sandbox
from PIL import Image

# Without the `hf` extra (a bare `cv-agent` install) these tests cannot run; in the workspace they do.
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCRIPT = "<think>rotate</think>\n" + render_tool_call(
    "result = image.rotate(90, expand=True)", "rotate upright", 0
)


class ForceText:
    """A logits processor that forces the model to emit a given token sequence, then end of turn."""

    def __init__(self, tokenizer, texts: list[str]) -> None:
        self.seqs = [
            tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts
        ]
        self.prompt_len = 0
        self.last_len = -1
        self.calls = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] != self.last_len + 1:  # a new generate() call started
            self.prompt_len = input_ids.shape[1]
            self.calls += 1
        self.last_len = input_ids.shape[1]
        seq = self.seqs[min(self.calls - 1, len(self.seqs) - 1)]
        step = input_ids.shape[1] - self.prompt_len
        forced = torch.full_like(scores, float("-inf"))
        forced[:, seq[min(step, len(seq) - 1)]] = 0
        return forced


def _small_config(**kw) -> AgentConfig:
    return AgentConfig(**{"max_pixels": 64 * 28 * 28, "min_pixels": 4 * 28 * 28, "max_new_tokens": 12, **kw})


@pytest.mark.parametrize("fixture", ["tiny_qwen25", "tiny_qwen3"])
async def test_random_model_episode_runs_records_and_stops(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(fixture)
    backend = make_backend(f"hf:{path}", device="cpu", max_new_tokens=12)
    cfg = _small_config(max_turns=2, resize_factor=28 if fixture == "tiny_qwen25" else 32)
    with Sandbox() as sb:
        traj = await Agent(backend, cfg, sandbox=sb).arun(
            Image.new("RGB", (120, 90), "orange"), "What colour?", item_id="r"
        )
    await backend.aclose()
    assert traj.stop_reason in {"no_tool_call", "max_turns", "answer"}
    assert 1 <= traj.turns <= 2
    assert (
        traj.usage["prompt_tokens"] > 0
        and 1 <= traj.usage["completion_tokens"] <= 24
        and traj.usage["estimated"] == 0
    )
    assert traj.timings["model_s"] > 0
    assert traj.messages[2]["role"] == "assistant" and isinstance(traj.messages[2]["content"], str)


async def test_forced_tool_call_goes_through_the_tool_path(tiny_qwen25: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_qwen25)
    force = ForceText(tok, [SCRIPT, "<think>done</think>\n<answer>B</answer>"])
    backend = TransformersBackend(
        TransformersBackendConfig(
            str(tiny_qwen25), device="cpu", max_new_tokens=200, generate_kwargs={"logits_processor": [force]}
        )
    )
    with Sandbox() as sb:
        traj = await Agent(backend, _small_config(max_new_tokens=200), sandbox=sb).arun(
            Image.new("RGB", (140, 84), "red"), "Which way is up?"
        )
    await backend.aclose()
    assert traj.assistant_texts == [SCRIPT, "<think>done</think>\n<answer>B</answer>"]
    assert traj.stop_reason == "answer" and traj.answer == "B"
    assert traj.tool_calls[0].ok and traj.images[1].size == (84, 140)
    # the second prompt carried both images through the processor (2 placeholder runs, 2 images)
    text, ordered = backend.build_prompt(
        traj.messages[:4], [im.resize(s) for im, s in zip(traj.images, traj.model_image_sizes, strict=True)]
    )
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2 and len(ordered) == 2
    assert "<tool_response>" in text and '"name": "code_image_tool"' in text


async def test_bad_path_is_a_clear_error(tmp_path: Path) -> None:
    backend = TransformersBackend(TransformersBackendConfig(str(tmp_path / "missing"), device="cpu"))
    with pytest.raises(BackendError, match="could not load"):
        await backend.generate([{"role": "user", "content": "hi"}], [])
    await backend.aclose()
    with pytest.raises(ValueError, match="dtype"):
        TransformersBackendConfig("x", dtype="int8")


async def test_samples_of_one_prompt_differ_and_runs_repeat(tiny_qwen25: Path) -> None:
    """Avg@k needs k different samples: reseeding every call with one seed made them all the same."""
    messages = [{"role": "user", "content": "Say something."}]

    async def two_samples() -> list[str]:
        backend = TransformersBackend(
            TransformersBackendConfig(
                str(tiny_qwen25), device="cpu", temperature=1.0, max_new_tokens=12, seed=3
            )
        )
        try:
            return [(await backend.complete(messages, [])).text for _ in range(2)]
        finally:
            await backend.aclose()

    first = await two_samples()
    assert first[0] != first[1]
    assert await two_samples() == first
