"""vLLM offline backend with a fake LLM object (vLLM itself cannot run here: no GPU, not installed).

Covers prompt construction (chat template with tools, one unexpanded image pad per image, images in
placeholder order), sampling parameters, micro-batching of concurrent episodes and failure propagation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cv_agent import Agent, AgentConfig, BackendError, VLLMBackend, VLLMBackendConfig, run_episodes
from cv_protocol import render_tool_call
from PIL import Image

from ._fakes import FakeSandbox

# Without the `hf` extra (a bare `cv-agent` install) these tests cannot run; in the workspace they do.
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CALL = render_tool_call("rotate90", "rotate", 0)
ANSWER = "<answer>C</answer>"


@dataclass
class FakeSamplingParams:
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None = None


@dataclass
class _Completion:
    text: str
    token_ids: list[int]
    finish_reason: str = "stop"


@dataclass
class _RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[_Completion]


@dataclass
class FakeLLM:
    """Records ``generate`` batches; replies by the number of assistant turns in the prompt."""

    batches: list[list[dict]] = field(default_factory=list)
    params: list[list[FakeSamplingParams]] = field(default_factory=list)
    fail: bool = False

    def generate(self, prompts, sampling_params, use_tqdm=False):
        self.batches.append(prompts)
        self.params.append(sampling_params)
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        outs = []
        for p in prompts:
            turn = p["prompt"].count("<|im_start|>assistant\n") - 1
            text = CALL if turn == 0 else ANSWER
            outs.append(
                _RequestOutput(
                    list(range(len(p["prompt"]) // 4)), [_Completion(text, list(range(len(text) // 4)))]
                )
            )
        return outs


def make(tiny: Path, llm: FakeLLM, **kw) -> VLLMBackend:
    from transformers import AutoTokenizer

    cfg = VLLMBackendConfig(str(tiny), batch_wait_s=0.02, **kw)
    return VLLMBackend(
        cfg, llm=llm, tokenizer=AutoTokenizer.from_pretrained(tiny), sampling_params_cls=FakeSamplingParams
    )


async def test_prompt_construction_and_episode(tiny_qwen25: Path) -> None:
    llm = FakeLLM()
    backend = make(tiny_qwen25, llm, temperature=0.7, seed=3, max_new_tokens=99)
    agent = Agent(backend, AgentConfig(max_pixels=32 * 28 * 28, max_new_tokens=50), sandbox=FakeSandbox())  # type: ignore[arg-type]
    traj = await agent.arun(Image.new("RGB", (100, 60), "green"), "Which?")
    await backend.aclose()
    assert traj.stop_reason == "answer" and traj.answer == "C" and traj.usage["completion_tokens"] > 0
    second = llm.batches[1][0]
    text = second["prompt"]
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2  # unexpanded: vLLM expands
    assert "# Tools" in text and '"name": "code_image_tool"' in text and "<tool_response>" in text
    assert text.endswith("<|im_start|>assistant\n")
    imgs = second["multi_modal_data"]["image"]
    assert [im.size for im in imgs] == traj.model_image_sizes and imgs[1].size[1] > imgs[1].size[0]  # rotated
    assert llm.params[0][0] == FakeSamplingParams(max_tokens=50, temperature=0.7, top_p=1.0, seed=3)


async def test_concurrent_episodes_are_batched(tiny_qwen25: Path) -> None:
    llm = FakeLLM()
    backend = make(tiny_qwen25, llm)
    agent = Agent(backend, AgentConfig(max_pixels=16 * 28 * 28), sandbox=FakeSandbox())  # type: ignore[arg-type]
    trajs = await run_episodes(
        agent, [(Image.new("RGB", (50, 50)), f"q{i}") for i in range(12)], progress=False
    )
    await backend.aclose()
    assert all(t.stop_reason == "answer" for t in trajs)
    assert sum(backend.batch_sizes) == 24 and max(backend.batch_sizes) > 1 and len(backend.batch_sizes) < 24


async def test_engine_failure_fails_requests_not_the_batcher(tiny_qwen25: Path) -> None:
    llm = FakeLLM(fail=True)
    backend = make(tiny_qwen25, llm)
    with pytest.raises(BackendError, match="out of memory"):
        await backend.generate([{"role": "user", "content": "hi"}], [])
    llm.fail = False
    assert await backend.generate([{"role": "user", "content": "hi"}], []) == CALL
    await backend.aclose()


def test_placeholder_mismatch_is_caught(tiny_qwen25: Path) -> None:
    backend = make(tiny_qwen25, FakeLLM())
    with pytest.raises(ValueError, match="image"):
        backend.build_prompt(
            [{"role": "user", "content": [{"type": "image", "image_index": 3}]}], [Image.new("RGB", (28, 28))]
        )
    asyncio.run(backend.aclose())


def test_missing_vllm_names_the_extra() -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")  # the import error path only exists without vllm
    backend = VLLMBackend(VLLMBackendConfig("/models/x"))
    with pytest.raises(ImportError, match=r"cv-agent\[vllm\]"):
        backend.build_prompt([], [])
