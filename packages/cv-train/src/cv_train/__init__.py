"""cv-train: SFT and multi-turn GRPO for CodeVision on TRL, with PEFT and vLLM.

Heavy libraries (torch, transformers, trl, peft, datasets) load only when training starts.
"""

from .callbacks import ToolUseWatch, tool_collapse_callback
from .config import (
    FAMILIES,
    ModelRecipe,
    RecipeError,
    RLRecipe,
    SFTRecipe,
    load_recipe,
    recipe_from_dict,
    tiny_rl_recipe,
    tiny_sft_recipe,
    toy_rl_recipe,
    toy_sft_recipe,
)
from .data import (
    DatasetError,
    load_rl_items,
    load_sft_records,
    rl_dataset,
    rl_rows,
    sft_dataset,
    validate_sft_record,
)
from .env import CodeVisionEnv, CodeVisionEnvConfig
from .invariants import ImageTokenMismatchError, check_image_tokens, count_image_runs
from .models import freeze_vision, load_model_and_processor, peft_config
from .rewards import completion_text, make_process_reward, rollout_record, tool_statistics
from .rl import build_rl_trainer, collapse_image_runs, grpo_config_kwargs, train_rl
from .sft import build_sft_trainer, fill_image_placeholders, make_sft_collator, train_sft
from .warm_start import build_warm_start, resolve_warm_start

__all__ = [
    "FAMILIES",
    "CodeVisionEnv",
    "CodeVisionEnvConfig",
    "DatasetError",
    "ImageTokenMismatchError",
    "ModelRecipe",
    "RLRecipe",
    "RecipeError",
    "SFTRecipe",
    "ToolUseWatch",
    "build_rl_trainer",
    "build_sft_trainer",
    "build_warm_start",
    "check_image_tokens",
    "collapse_image_runs",
    "completion_text",
    "count_image_runs",
    "fill_image_placeholders",
    "freeze_vision",
    "grpo_config_kwargs",
    "load_model_and_processor",
    "load_recipe",
    "load_rl_items",
    "load_sft_records",
    "make_process_reward",
    "make_sft_collator",
    "peft_config",
    "recipe_from_dict",
    "resolve_warm_start",
    "rl_dataset",
    "rl_rows",
    "rollout_record",
    "sft_dataset",
    "tiny_rl_recipe",
    "tiny_sft_recipe",
    "tool_collapse_callback",
    "toy_rl_recipe",
    "toy_sft_recipe",
    "tool_statistics",
    "train_rl",
    "train_sft",
    "validate_sft_record",
]
__version__ = "0.1.0"
