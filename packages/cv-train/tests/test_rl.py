"""Multi-turn GRPO on the tiny random Qwen-VL with scripted tool calls: tools run, images flow, weights move."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from cv_data.testing import tiny_item
from cv_train.cli import main
from cv_train.config import tiny_rl_recipe
from cv_train.invariants import ImageTokenMismatchError
from cv_train.rl import build_rl_trainer
from cv_train.testing import script_rollouts, tool_call_turn

pytestmark = pytest.mark.slow

TOOL_TURN = tool_call_turn(
    "result = image.rotate(270, expand=True)", "Rotate upright.", 0, think="The image is rotated."
)
DIRECT = "<think>Looks fine.</think>\n<answer>Q</answer><|im_end|>"
AFTER_TOOL = "<think>Upright now.</think>\n<answer>Q</answer><|im_end|>"


@pytest.fixture(scope="module", params=["qwen2_5_vl", "qwen3_vl"])
def trained(
    request: pytest.FixtureRequest, runs_root: Path
) -> tuple[Any, list[tuple[int, bool]], dict[str, torch.Tensor], list[dict[str, Any]]]:
    family = request.param
    recipe = tiny_rl_recipe(
        model=f"tiny:{family}",
        output_dir=str(runs_root / f"rl-scripted-{family}"),
        max_steps=1,
        max_completion_length=128,
        num_generations=2,
        per_device_train_batch_size=4,
        logging_steps=1,
        report_to=["tensorboard"],
    )
    items = [tiny_item(i, seed=4, transform=["rotate_90"]) for i in range(2)]
    trainer = build_rl_trainer(recipe, items=items)
    calls: list[tuple[int, bool]] = []
    outputs: list[dict[str, Any]] = []
    # Even rollouts of a group call the tool then answer; odd ones answer at once.
    script_rollouts(
        trainer,
        lambda i, after_tool: AFTER_TOOL if after_tool else (TOOL_TURN if i % 2 == 0 else DIRECT),
        calls=calls,
        outputs=outputs,
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return trainer, calls, before, outputs


def test_tool_loop_runs_and_images_flow_back(trained) -> None:
    trainer, calls, _, _ = trained
    # Turn 1 for all 4 rollouts, then a second turn only for the 2 that called the tool, with tool images.
    assert calls == [(4, False), (2, True)]
    envs = trainer.environments
    assert [len(e.trace) for e in envs] == [1, 0, 1, 0]
    assert all(e.trace[0].ok and len(e.images) == 2 for e in envs[::2])
    assert envs[0].images[1].size == envs[0].images[0].size[::-1]  # the rotation really ran


def test_tool_response_tokens_are_masked_from_the_loss(trained) -> None:
    trainer, _, _, outputs = trained
    out = outputs[0]
    tok = trainer.processing_class.tokenizer
    ids, live, tool = out["completion_ids"][0], out["completion_mask"][0].bool(), out["tool_mask"][0].bool()
    trained_text = tok.decode(ids[live & tool])
    masked_text = tok.decode(ids[live & ~tool])
    assert trained_text == TOOL_TURN + AFTER_TOOL  # exactly the two assistant turns
    assert (
        "<tool_response>" in masked_text
        and "Execution succeeded" in masked_text
        and "<|image_pad|>" in masked_text
    )
    assert out["num_images"][0] == 2  # input image + tool output image travel into the training forward pass
    assert (out["tool_mask"][1] == 1).all()  # the rollout that answered directly has nothing to mask


def test_the_update_raises_rewarded_rollouts_and_lowers_the_others(trained) -> None:
    """The sign check a flipped advantage, a wrong mask or a reward read from the wrong rollout fails.

    Both kinds of rollout share most tokens (``<think>``, ``<answer>Q</answer>``), and raising those in the
    rewarded rollouts lifts them in the others too; so the checks are (1) the token where the two kinds part
    (the first word of the thought) rises where the advantage is positive and falls where it is negative, and
    (2) the rewarded rollouts gain log-probability relative to the others.
    """
    import copy

    trainer, _, before, outputs = trained
    batch = outputs[0]
    old = copy.deepcopy(trainer.model)
    old.load_state_dict(before, strict=False)

    def token_logps(model) -> torch.Tensor:
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        with torch.no_grad():
            lp, _, _ = trainer._get_per_token_logps_and_entropies(
                model,
                ids,
                mask,
                batch["completion_ids"].size(1),
                pixel_values=batch.get("pixel_values"),
                image_grid_thw=batch.get("image_grid_thw"),
                num_images=list(batch["num_images"]),
                mm_token_type_ids=batch.get("mm_token_type_ids"),
            )
        return lp * batch["completion_mask"] * batch["tool_mask"]

    change = token_logps(trainer.model) - token_logps(old)
    adv = batch["advantages"]
    # The tool-calling rollouts fix the rotation (must-use reward) and the direct ones do not.
    assert (adv[::2] > 0).all() and (adv[1::2] < 0).all()
    ids = batch["completion_ids"]
    fork = int(
        (ids[0] != ids[1]).nonzero()[0]
    )  # the first token where a tool rollout and a direct one differ
    assert (ids[::2, :fork] == ids[0, :fork]).all() and (ids[1::2, fork] == ids[1, fork]).all()
    assert (change[adv > 0, fork] > 0).all() and (change[adv < 0, fork] < 0).all()
    seq = change.sum(dim=1)
    assert seq[adv > 0].min() > seq[adv < 0].max()


def test_parameters_change_and_vision_stays_frozen(trained) -> None:
    trainer, _, before, _ = trained
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert any("language_model" in n for n in changed)
    assert not any("visual." in n for n in changed)


def test_reward_components_and_tool_statistics_are_logged(trained) -> None:
    trainer, _, _, _ = trained
    log = next(h for h in trainer.state.log_history if "reward" in h)
    assert math.isfinite(log["reward"]) and math.isfinite(log["loss"])
    assert log["tools/calls_per_rollout"] == pytest.approx(0.5)
    assert log["tools/tool_call_rate"] == pytest.approx(0.5)
    assert log["tools/error_rate"] == 0.0
    assert math.isfinite(log["reward/process_total"]) and "reward/accuracy" in log
    components = [
        k for k in log if k.startswith("reward/") and k not in ("reward/process_total", "reward/accuracy")
    ]
    assert components and all(math.isfinite(log[k]) for k in components)
    # TRL's own tool counters agree with the environment traces.
    assert log["tools/call_frequency"] == pytest.approx(0.5)


def test_rl_prompt_matches_the_sft_and_agent_prompt(trained) -> None:
    from cv_protocol import TOOL_SCHEMA

    trainer, _, _, _ = trained
    prompt = [
        {"role": "system", "content": [{"type": "text", "text": "SYS"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]},
    ]
    render = trainer.processing_class.apply_chat_template
    assert render(prompt, tools=trainer.tools, add_generation_prompt=True, tokenize=False) == render(
        prompt, tools=[TOOL_SCHEMA], add_generation_prompt=True, tokenize=False
    )


def test_metrics_reach_tensorboard_through_report_to(trained) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer, _, _, _ = trained
    events = sorted(Path(trainer.args.output_dir).rglob("events.out.tfevents.*"))
    assert events
    tags: set[str] = set()
    for ev in events:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    for tag in (
        "train/reward/process_total",
        "train/reward/accuracy",
        "train/tools/calls_per_rollout",
        "train/tools/error_rate",
        "train/tools/tool_call_rate",
        "train/tools/op/rotate_270",
    ):
        assert tag in tags, sorted(tags)


def test_invariant_check_rejects_a_corrupted_batch(trained) -> None:
    trainer, _, _, _ = trained
    pad = trainer.cv_image_pad_id
    batch = {
        "prompt_ids": torch.tensor([[1, pad, pad, 2]]),
        "completion_ids": torch.tensor([[3, pad, 4]]),
        "num_images": [1],
    }
    with pytest.raises(ImageTokenMismatchError, match="grpo rollout: sample 0 has 2"):
        trainer._cv_check(batch, "grpo rollout")
    batch["num_images"] = None  # TRL's "drop all images" fallback: tokens stay, images go
    with pytest.raises(ImageTokenMismatchError):
        trainer._cv_check(batch, "grpo training forward")


def test_cli_default_rl_run_learns_from_a_warm_start_writes_a_checkpoint_and_resumes(runs_root: Path) -> None:
    """The default run is a smoke run that can fail: the warm start calls the tool and rewards differ."""
    import json

    out = runs_root / "rl-cli"
    assert main(["rl", "--output_dir", str(out), "--max_steps", "1"]) == 0
    assert (out / "checkpoint-1").is_dir() and (out / "final" / "model.safetensors").is_file()
    first = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    assert (
        main(["rl", "--output_dir", str(out), "--max_steps", "2", "--resume_from_checkpoint", "latest"]) == 0
    )
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    # Step 1 was restored from the checkpoint (identical log entry, timings included), not re-run.
    assert state["log_history"][0] == first["log_history"][0] and state["log_history"][1]["step"] == 2
    logs = [h for h in state["log_history"] if "reward" in h]
    # A learning signal at every step: the policy calls the tool, the rollouts of some group get different
    # rewards (GRPO learns only from those), the update is not zero.
    assert all(h["tools/tool_call_rate"] > 0 for h in logs)
    assert all(h["frac_reward_zero_std"] < 1 and h["grad_norm"] > 0 for h in logs)
    assert any(h["reward/must_use"] > 0 for h in logs)
