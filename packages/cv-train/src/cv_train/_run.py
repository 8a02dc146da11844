"""What SFT and RL runs share: the common trainer arguments, checkpoint resumption, train-and-save."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import ModelRecipe, recipe_to_yaml

logger = logging.getLogger(__name__)


def training_args_kwargs(recipe: ModelRecipe) -> dict[str, Any]:
    """transformers ``TrainingArguments`` fields every recipe sets (``SFTConfig`` and ``GRPOConfig`` add theirs).

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> training_args_kwargs(tiny_sft_recipe(max_steps=3))["max_steps"]
        3
    """
    return dict(
        output_dir=recipe.output_dir,
        seed=recipe.seed,
        learning_rate=recipe.learning_rate,
        lr_scheduler_type=recipe.lr_scheduler_type,
        warmup_steps=float(recipe.warmup_ratio),  # a float in [0, 1) is a ratio of the total steps
        num_train_epochs=recipe.num_train_epochs,
        max_steps=recipe.max_steps,
        per_device_train_batch_size=recipe.per_device_train_batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation_steps,
        bf16=recipe.bf16,
        gradient_checkpointing=recipe.gradient_checkpointing,
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=recipe.save_total_limit,
        report_to=recipe.report_to,
        deepspeed=recipe.deepspeed,
        dataloader_num_workers=recipe.dataloader_num_workers,
    )


def use_cpu() -> bool:
    """Train on the CPU when no CUDA device is available."""
    import torch

    return not torch.cuda.is_available()


def resolve_resume(recipe: Any) -> str | None:
    """Checkpoint to resume from: ``None``, the newest in ``output_dir`` for ``"latest"``, or the given path."""
    if recipe.resume_from_checkpoint is None:
        return None
    if recipe.resume_from_checkpoint != "latest":
        return recipe.resume_from_checkpoint
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(recipe.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if last is None:
        logger.warning("resume_from_checkpoint=latest but %s has no checkpoint-*; starting fresh", out)
    return last


def train_and_save(recipe: ModelRecipe, build_trainer: Callable[[], Any]) -> Path:
    """Write ``recipe.yaml``, build the trainer, train (resuming if asked) and save ``<output_dir>/final``."""
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(recipe_to_yaml(recipe), encoding="utf-8")
    trainer = build_trainer()
    trainer.train(resume_from_checkpoint=resolve_resume(recipe))
    final = out / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(str(final))
    return final
