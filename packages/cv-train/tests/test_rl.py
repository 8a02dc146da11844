"""Multi-turn GRPO on the tiny random Qwen-VL with scripted tool calls: tools run, images flow, weights move."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from cv_train._synthetic import synthetic_rl_items, tool_call_text
from cv_train.cli import main
from cv_train.config import tiny_rl_recipe
from cv_train.invariants import ImageTokenMismatchError
from cv_train.rl import build_rl_trainer

pytestmark = pytest.mark.slow

TOOL_TURN = ("<think>The image is rotated.</think>\n<tool_call>\n"
             + tool_call_text("result = image.rotate(270, expand=True)", "Rotate upright.", 0) + "\n</tool_call><|im_end|>")
DIRECT = "<think>Looks fine.</think>\n<answer>Q</answer><|im_end|>"
AFTER_TOOL = "<think>Upright now.</think>\n<answer>Q</answer><|im_end|>"


def script(trainer: Any, calls: list[tuple[int, bool]]) -> None:
    """Replace generation by a scripted policy after running the real one (so real generation with tool images
    is exercised too): even rollouts of a group call the tool, odd ones answer at once."""
    tok = trainer.processing_class.tokenizer
    tool_response_id = tok.convert_tokens_to_ids("<tool_response>")
    real = trainer._generate_single_turn

    def scripted(prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        # A few real tokens are enough to run the vision tower on the tool images; the CPU budget is small.
        budget = trainer.generation_config.max_new_tokens
        trainer.generation_config.max_new_tokens = 4
        try:
            real(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
        finally:
            trainer.generation_config.max_new_tokens = budget
        calls.append((len(prompt_ids), has_tool_images))
        out = []
        for i, ids in enumerate(prompt_ids):
            if tool_response_id in ids:
                text = AFTER_TOOL
            else:
                text = TOOL_TURN if i % 2 == 0 else DIRECT
            out.append(tok.encode(text, add_special_tokens=False))
        return out, None

    trainer._generate_single_turn = scripted


@pytest.fixture(scope="module")
def trained(runs_root: Path) -> tuple[Any, list[tuple[int, bool]], dict[str, torch.Tensor]]:
    recipe = tiny_rl_recipe(output_dir=str(runs_root / "rl-scripted"), max_steps=1, max_completion_length=128,
                            num_generations=2, per_device_train_batch_size=4, logging_steps=1)
    items = [it for it in synthetic_rl_items(8, seed=4) if it["transform"]][:2]
    trainer = build_rl_trainer(recipe, items=items)
    calls: list[tuple[int, bool]] = []
    script(trainer, calls)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return trainer, calls, before


def test_tool_loop_runs_and_images_flow_back(trained) -> None:
    trainer, calls, _ = trained
    # Turn 1 for all 4 rollouts, then a second turn only for the 2 that called the tool, with tool images.
    assert calls == [(4, False), (2, True)]
    envs = trainer.environments
    assert [len(e.trace) for e in envs] == [1, 0, 1, 0]
    assert all(e.trace[0].ok and len(e.images) == 2 for e in envs[::2])
    assert envs[0].images[1].size == envs[0].images[0].size[::-1]  # the rotation really ran


def test_parameters_change_and_vision_stays_frozen(trained) -> None:
    trainer, _, before = trained
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert any("language_model" in n for n in changed)
    assert not any("visual." in n for n in changed)


def test_reward_components_and_tool_statistics_are_logged(trained) -> None:
    trainer, _, _ = trained
    log = next(h for h in trainer.state.log_history if "reward" in h)
    assert math.isfinite(log["reward"]) and math.isfinite(log["loss"])
    assert log["tools/calls_per_rollout"] == pytest.approx(0.5)
    assert log["tools/tool_call_rate"] == pytest.approx(0.5)
    assert log["tools/error_rate"] == 0.0
    assert math.isfinite(log["reward/process_total"]) and "reward/accuracy" in log
    components = [k for k in log if k.startswith("reward/") and k not in ("reward/process_total", "reward/accuracy")]
    assert components and all(math.isfinite(log[k]) for k in components)
    # TRL's own tool counters agree with the environment traces.
    assert log["tools/call_frequency"] == pytest.approx(0.5)


def test_invariant_check_rejects_a_corrupted_batch(trained) -> None:
    trainer, _, _ = trained
    pad = trainer.cv_image_pad_id
    batch = {"prompt_ids": torch.tensor([[1, pad, pad, 2]]), "completion_ids": torch.tensor([[3, pad, 4]]),
             "num_images": [1]}
    with pytest.raises(ImageTokenMismatchError, match="grpo rollout: sample 0 has 2"):
        trainer._cv_check(batch, "grpo rollout")
    batch["num_images"] = None  # TRL's "drop all images" fallback: tokens stay, images go
    with pytest.raises(ImageTokenMismatchError):
        trainer._cv_check(batch, "grpo training forward")


def test_cli_default_rl_run_writes_a_checkpoint_and_resumes(runs_root: Path) -> None:
    import json

    out = runs_root / "rl-cli"
    args = ["rl", "--output_dir", str(out), "--num_synthetic", "4", "--max_completion_length", "16"]
    assert main([*args, "--max_steps", "1"]) == 0
    assert (out / "checkpoint-1").is_dir() and (out / "final" / "model.safetensors").is_file()
    first = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    assert main([*args, "--max_steps", "2", "--resume_from_checkpoint", "latest"]) == 0
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    # Step 1 was restored from the checkpoint (identical log entry, timings included), not re-run.
    assert state["log_history"][0] == first["log_history"][0] and state["log_history"][1]["step"] == 2
