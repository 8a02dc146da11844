"""Resuming restores the checkpoint's weights (full fine-tuning and LoRA, SFT and RL), or stops with an error.

Qwen-VL checkpoints are written in the legacy key layout (``save_pretrained`` reverses transformers' key mapping);
transformers' ``Trainer`` loaded them without the mapping, warned about every key and trained on from whatever
weights the model held (transformers#43701). These tests make the model hold something else before resuming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from cv_data.testing import tiny_item, tiny_sft_records
from cv_train.config import RecipeError, tiny_rl_recipe, tiny_sft_recipe
from cv_train.rl import build_rl_trainer
from cv_train.sft import build_sft_trainer

pytestmark = pytest.mark.slow


def _build(kind: str, out: Path, **overrides: Any) -> Any:
    if kind == "rl":
        recipe = tiny_rl_recipe(output_dir=str(out), max_steps=1, save_steps=1, **overrides)
        return build_rl_trainer(recipe, items=[tiny_item(i, seed=4) for i in range(2)])
    recipe = tiny_sft_recipe(output_dir=str(out), max_steps=1, save_steps=1, **overrides)
    return build_sft_trainer(recipe, records=tiny_sft_records(2, seed=3))


def _trainable(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _weights_at_train_begin(trainer: Any) -> dict[str, torch.Tensor]:
    """The trainable weights when training (re)starts, i.e. after the checkpoint was loaded."""
    from transformers import TrainerCallback

    seen: dict[str, torch.Tensor] = {}

    class Capture(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            seen.update(_trainable(model))

    trainer.add_callback(Capture())
    return seen


def _perturb(model: Any) -> None:
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.5)


@pytest.mark.parametrize(
    ("kind", "overrides"),
    [("sft", {}), ("rl", {}), ("sft", {"use_peft": True, "lora_r": 4, "lora_alpha": 8})],
    ids=["sft", "rl", "sft-lora"],
)
def test_resume_restores_the_checkpoint_weights(
    runs_root: Path, kind: str, overrides: dict[str, Any]
) -> None:
    out = runs_root / f"resume-weights-{kind}{'-lora' if overrides else ''}"
    first = _build(kind, out, **overrides)
    first.train()
    saved = _trainable(first.model)  # the weights checkpoint-1 holds (nothing trains after the save)
    assert (out / "checkpoint-1").is_dir()

    # The same run, resumed at its last step: no training step runs, the model must hold checkpoint-1's weights.
    resumed = _build(kind, out, **overrides)
    _perturb(resumed.model)
    seen = _weights_at_train_begin(resumed)
    resumed.train(resume_from_checkpoint=str(out / "checkpoint-1"))
    assert resumed.state.global_step == 1
    assert seen.keys() == saved.keys()
    wrong = [n for n in saved if not torch.equal(seen[n], saved[n])]
    assert not wrong, f"{len(wrong)} of {len(saved)} parameters not restored, e.g. {wrong[:3]}"


def test_resume_from_a_checkpoint_with_foreign_keys_raises(runs_root: Path) -> None:
    from safetensors.torch import load_file, save_file

    out = runs_root / "resume-foreign"
    first = _build("sft", out)
    first.train()
    weights = out / "checkpoint-1" / "model.safetensors"
    state = load_file(str(weights))
    state["not.a.parameter.weight"] = torch.zeros(1)
    save_file(state, str(weights), metadata={"format": "pt"})
    resumed = _build("sft", out)
    with pytest.raises(RecipeError, match=r"checkpoint-1: its weights do not match the model \(1 unexpected"):
        resumed.train(resume_from_checkpoint=str(out / "checkpoint-1"))
