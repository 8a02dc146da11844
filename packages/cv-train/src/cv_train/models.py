"""Load the policy and its processor for training: tiny local builds, freezing, LoRA / QLoRA."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .config import FAMILIES, TINY_PREFIX, ModelRecipe, RecipeError

logger = logging.getLogger(__name__)

#: Parameter-name fragments of the vision tower and the vision-language projector (``merger``) in
#: transformers' Qwen2.5-VL / Qwen3-VL (both live under ``model.visual``).
VISION_PARAM_MARKERS: tuple[str, ...] = ("visual.",)


def _require(module: str, extra: str = "") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - the training deps are hard requirements of cv-train
        hint = f"pip install cv-train[{extra}]" if extra else "pip install cv-train"
        raise ImportError(f"{module} is required for training: {hint}") from e


def tiny_model_dir(recipe: ModelRecipe) -> Path:
    """Where the tiny random model of ``recipe`` is built (cached next to the run folders)."""
    family = recipe.model[len(TINY_PREFIX) :]
    return (
        Path(recipe.output_dir).parent / "tiny-models" / f"{family}-seed{recipe.seed}-px{recipe.max_pixels}"
    )


def resolve_model_path(recipe: ModelRecipe) -> str:
    """The model path to load: builds the tiny model first when ``recipe.model`` is ``tiny:<family>``.

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> resolve_model_path(tiny_sft_recipe(output_dir="/tmp/cvt-doc/sft")).endswith("px4096")  # doctest: +SKIP
        True
    """
    if not recipe.is_tiny:
        return recipe.model
    from cv_agent.tiny import build_tiny_vlm

    family = recipe.model[len(TINY_PREFIX) :]
    out = tiny_model_dir(recipe)
    return str(
        build_tiny_vlm(
            out, family=family, seed=recipe.seed, min_pixels=recipe.min_pixels, max_pixels=recipe.max_pixels
        )
    )


def infer_family(model_config: Any, requested: str | None = None) -> str:
    """Chat-template family of a loaded model config (``qwen2_5_vl`` or ``qwen3_vl``).

    Example:
        >>> from types import SimpleNamespace
        >>> infer_family(SimpleNamespace(model_type="qwen3_vl_moe"))
        'qwen3_vl'
    """
    model_type = getattr(model_config, "model_type", "")
    inferred = (
        "qwen2_5_vl"
        if model_type.startswith("qwen2_5_vl")
        else "qwen3_vl"
        if model_type.startswith("qwen3_vl")
        else None
    )
    if requested is not None:
        if inferred is not None and inferred != requested:
            raise RecipeError(
                f"family={requested!r} but the model is {model_type!r}: set family: {inferred} (or null)"
            )
        return requested
    if inferred is None:
        raise RecipeError(
            f"cannot infer the chat-template family of model_type {model_type!r}: set family to one of {FAMILIES}"
        )
    return inferred


def quantization_config(recipe: ModelRecipe) -> Any | None:
    """``BitsAndBytesConfig`` for QLoRA, or ``None``. Fails early and clearly where QLoRA cannot run.

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> quantization_config(tiny_sft_recipe()) is None
        True
    """
    if not recipe.load_in_4bit:
        return None
    import torch

    if not torch.cuda.is_available():
        raise RecipeError(
            "load_in_4bit (QLoRA) needs a CUDA GPU: bitsandbytes 4-bit kernels do not run on CPU. "
            "Set load_in_4bit: false (plain LoRA with use_peft: true works on CPU)."
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "load_in_4bit (QLoRA) needs bitsandbytes: pip install bitsandbytes (Linux + CUDA)"
        ) from e
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        # The vision tower stays in full precision: it is frozen and small, and 4-bit hurts OCR.
        llm_int8_skip_modules=["visual", "lm_head"],
    )


def peft_config(recipe: ModelRecipe) -> Any | None:
    """``peft.LoraConfig`` adapting only the language model, or ``None`` without ``use_peft``.

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> peft_config(tiny_sft_recipe(use_peft=True, lora_r=4)).r
        4
    """
    if not recipe.use_peft:
        return None
    peft = _require("peft")
    targets: str | list[str] = recipe.lora_target_modules
    if "," in targets and not any(c in targets for c in "*()|\\"):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return peft.LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _dtype(recipe: ModelRecipe) -> Any:
    import torch

    if recipe.bf16:
        if not torch.cuda.is_available() and not recipe.is_tiny:
            logger.warning("bf16 requested without CUDA; training on CPU in bf16 is slow")
        return torch.bfloat16
    return torch.float32


def load_model_and_processor(recipe: ModelRecipe) -> tuple[Any, Any, str]:
    """Load (or build) the policy model and processor of a recipe.

    The image processor gets the recipe's pixel budget; the vision tower and projector are frozen when
    ``freeze_vision`` is set (only for full fine-tuning: PEFT freezes the whole base model anyway).

    Returns:
        ``(model, processor, family)``.

    Example:
        >>> from cv_train.config import tiny_sft_recipe
        >>> model, processor, family = load_model_and_processor(tiny_sft_recipe())  # doctest: +SKIP
    """
    transformers = _require("transformers")
    path = resolve_model_path(recipe)
    qconfig = quantization_config(recipe)
    kwargs: dict[str, Any] = {"dtype": _dtype(recipe)}
    if recipe.attn_implementation:
        kwargs["attn_implementation"] = recipe.attn_implementation
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    try:
        model = transformers.AutoModelForImageTextToText.from_pretrained(path, **kwargs)
    except OSError as e:
        raise RecipeError(
            f"cannot load model {path!r}: {e}. Set model to a local folder, a hub id or 'tiny:qwen2_5_vl'"
        ) from e
    processor = transformers.AutoProcessor.from_pretrained(path)
    family = infer_family(model.config, recipe.family)
    set_pixel_budget(processor, recipe.min_pixels, recipe.max_pixels)
    if recipe.freeze_vision and not recipe.use_peft:
        freeze_vision(model)
    return model, processor, family


def set_pixel_budget(processor: Any, min_pixels: int, max_pixels: int) -> None:
    """Make the image processor resize every image into ``[min_pixels, max_pixels]``."""
    ip = processor.image_processor
    for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if hasattr(ip, name):
            setattr(ip, name, value)
    size = getattr(ip, "size", None)
    if isinstance(size, dict):
        ip.size = {**size, "shortest_edge": min_pixels, "longest_edge": max_pixels}


def freeze_vision(model: Any) -> int:
    """Freeze the vision tower and projector; returns how many parameter tensors were frozen.

    Example:
        >>> import torch
        >>> m = torch.nn.Module(); m.visual = torch.nn.Linear(2, 2); m.lm = torch.nn.Linear(2, 2)
        >>> freeze_vision(m), m.lm.weight.requires_grad
        (2, True)
    """
    frozen = 0
    for name, param in model.named_parameters():
        if any(marker in name or name.startswith(marker) for marker in VISION_PARAM_MARKERS):
            param.requires_grad_(False)
            frozen += 1
    if frozen == 0:
        raise RuntimeError(
            "freeze_vision found no vision parameters (no 'visual.' in parameter names); set freeze_vision: false"
        )
    return frozen


def image_pad_token_id(processor: Any) -> int:
    """Token id of the image placeholder (``<|image_pad|>``) of a Qwen-VL processor."""
    tok = processor.tokenizer
    tid = tok.convert_tokens_to_ids("<|image_pad|>")
    if tid is None or tid == tok.unk_token_id:
        raise ValueError(
            "the tokenizer has no <|image_pad|> token: is this a Qwen2.5-VL / Qwen3-VL processor?"
        )
    return int(tid)
