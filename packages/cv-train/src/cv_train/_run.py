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


def load_checkpoint_weights(model: Any, checkpoint: str | Path) -> None:
    """Load a checkpoint's full weights (``model.safetensors``, single or sharded) into ``model``, in place.

    ``save_pretrained`` writes Qwen-VL checkpoints in the legacy key layout (``visual.*``, ``model.layers.*``)
    and ``from_pretrained`` maps them back; transformers' ``Trainer`` resumes with a plain ``load_state_dict``,
    only warns that no key matched and trains on from whatever the model held (transformers#43701). We rename
    the keys with the model's own mapping, as ``from_pretrained`` does, and refuse any mismatch.

    Raises:
        RecipeError: the checkpoint holds no safetensors weights, needs a conversion beyond renaming, or its
            keys still do not match the model's (another model or size was resumed).

    Example:
        >>> load_checkpoint_weights(trainer.model, "runs/sft-tiny/checkpoint-8")  # doctest: +SKIP
    """
    import json

    from safetensors.torch import load_file
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

    from .config import RecipeError

    ckpt = Path(checkpoint)
    single, index = ckpt / "model.safetensors", ckpt / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        files = [ckpt / f for f in shards]
    else:
        raise RecipeError(f"cannot resume from {ckpt}: it holds no model.safetensors(.index.json)")
    # The mapping the model was loaded with (from_pretrained attaches it), else its class's registered one.
    transforms = getattr(model, "_weight_conversions", None) or get_model_conversion_mapping(model)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    expected = model.state_dict()
    state: dict[str, Any] = {}
    for file in files:
        for key, tensor in load_file(str(file), device="cpu").items():
            name, converter = rename_source_key(key, renamings, converters, model.base_model_prefix, expected)
            if converter is not None:
                raise RecipeError(
                    f"cannot resume from {ckpt}: key {key!r} needs a weight conversion ({converter}), "
                    "not a renaming; cv-train only resumes checkpoints whose keys rename onto the model's"
                )
            state[name] = tensor
    result = model.load_state_dict(state, strict=False)
    # A tied parameter (lm_head tied to the embeddings) is not saved: loading its source restores it.
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = [k for k in result.missing_keys if k not in tied]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        raise RecipeError(
            f"cannot resume from {ckpt}: its weights do not match the model ({len(unexpected)} unexpected "
            f"key(s), e.g. {unexpected[:2]}; {len(missing)} missing, e.g. {missing[:2]}); resume it with the "
            "model and recipe that wrote it"
        )


class ResumeWeightsMixin:
    """Trainer mixin (before the TRL trainer in the bases): resuming restores the checkpoint's full weights
    through :func:`load_checkpoint_weights`. Adapter (PEFT), FSDP and SageMaker checkpoints keep transformers'
    own loading; DeepSpeed resumes through its own checkpoint files and never calls this."""

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        from transformers import PreTrainedModel
        from transformers.utils import is_sagemaker_mp_enabled

        target = self.model if model is None else model  # type: ignore[attr-defined]
        if (
            isinstance(target, PreTrainedModel)
            and not getattr(self, "is_fsdp_enabled", False)
            and not is_sagemaker_mp_enabled()
            and not getattr(target, "_hf_peft_config_loaded", False)
        ):
            logger.info("loading the weights of %s", resume_from_checkpoint)
            load_checkpoint_weights(target, resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)  # type: ignore[misc]


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
