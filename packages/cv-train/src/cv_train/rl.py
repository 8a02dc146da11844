"""Multi-turn GRPO with the code tool on TRL's ``GRPOTrainer`` (``environment_factory`` = :class:`CodeVisionEnv`)."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from cv_protocol import Preset, get_preset

from ._run import ResumeWeightsMixin, train_and_save, training_args_kwargs, use_cpu
from .callbacks import tool_collapse_callback
from .config import RecipeError, RLRecipe
from .env import CodeVisionEnv, CodeVisionEnvConfig
from .invariants import check_image_tokens
from .warm_start import resolve_warm_start

logger = logging.getLogger(__name__)

#: TRL's response parser for hermes ``<tool_call>`` JSON (Qwen2.5 / Qwen3 / Qwen3-VL share it). TRL only
#: recognises its own template texts; our Qwen2.5-VL template renders the same format, so we set it ourselves.
_HERMES_PARSER_TEMPLATE = "qwen3_template"


def grpo_config_kwargs(recipe: RLRecipe) -> dict[str, Any]:
    """``GRPOConfig`` keyword arguments for a recipe (pure: no model, no GPU), including the vLLM fields.

    Example:
        >>> from cv_train.config import tiny_rl_recipe
        >>> kw = grpo_config_kwargs(tiny_rl_recipe(use_vllm=True, vllm_mode="server", vllm_server_port=8001))
        >>> kw["use_vllm"], kw["vllm_mode"], kw["vllm_server_port"], kw["max_tool_calling_iterations"]
        (True, 'server', 8001, 2)
    """
    kw: dict[str, Any] = dict(
        **training_args_kwargs(recipe),
        steps_per_generation=recipe.steps_per_generation,
        num_generations=recipe.num_generations,
        max_completion_length=recipe.max_completion_length,
        # One assistant turn comes before any tool call; each tool round adds one more.
        max_tool_calling_iterations=recipe.max_turns - 1,
        temperature=recipe.temperature,
        beta=recipe.beta,
        epsilon=recipe.epsilon,
        epsilon_high=recipe.epsilon_high,
        loss_type=recipe.loss_type,
        num_iterations=recipe.num_iterations,
        scale_rewards=recipe.scale_rewards,
        log_completions=recipe.log_completions,
        remove_unused_columns=False,
        use_vllm=recipe.use_vllm,
    )
    if recipe.use_vllm:
        kw["vllm_mode"] = recipe.vllm_mode
        kw["vllm_max_model_length"] = recipe.vllm_max_model_length
        if recipe.vllm_mode == "server":
            kw["vllm_server_base_url"] = recipe.vllm_server_base_url
            kw["vllm_server_host"] = recipe.vllm_server_host
            kw["vllm_server_port"] = recipe.vllm_server_port
        else:
            kw["vllm_gpu_memory_utilization"] = recipe.vllm_gpu_memory_utilization
            kw["vllm_tensor_parallel_size"] = recipe.vllm_tensor_parallel_size
    return kw


def collapse_image_runs(token_ids: list[int], image_pad_id: int) -> list[int]:
    """Shrink every run of image-pad tokens to one token: the prompt form vLLM expands itself.

    Workaround for trl#6294 (unfixed in TRL 1.16; PRs #6718/#6719 open): GRPOTrainer hands vLLM prompts the
    processor already expanded, and vLLM expands each placeholder again. Idempotent, so harmless once TRL
    sends unexpanded prompts itself.

    Example:
        >>> collapse_image_runs([1, 9, 9, 9, 2, 9, 9, 3], 9)
        [1, 9, 2, 9, 3]
    """
    out: list[int] = []
    for tid in token_ids:
        if tid == image_pad_id and out and out[-1] == image_pad_id:
            continue
        out.append(tid)
    return out


def _check_vllm(recipe: RLRecipe) -> None:
    if not recipe.use_vllm:
        return
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "use_vllm needs vLLM (GPU only): pip install cv-train[vllm], or set use_vllm: false"
        ) from e
    import torch

    if not torch.cuda.is_available():
        raise RecipeError("use_vllm needs a CUDA GPU; set use_vllm: false to generate with transformers")


def _make_trainer_class() -> type:
    from trl import GRPOTrainer

    class CodeVisionGRPOTrainer(ResumeWeightsMixin, GRPOTrainer):
        """``GRPOTrainer`` that checks the image-token invariant after every rollout and before every loss, and
        whose resume restores the checkpoint's weights (:class:`~cv_train._run.ResumeWeightsMixin`).

        TRL quietly drops every image of a batch when the counts disagree (its "safe fallback"); training on
        image tokens without their images is silent data loss, so we stop with a clear error instead.
        """

        cv_image_pad_id: int = -1
        cv_merge_size: int = 2

        def _cv_check(self, batch: dict[str, Any], where: str) -> None:
            import torch

            if self.cv_image_pad_id < 0 or "prompt_ids" not in batch:
                return
            ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1).tolist()
            num_images = batch.get("num_images")
            if num_images is None:
                num_images = [0] * len(ids)
            grid = batch.get("image_grid_thw")
            check_image_tokens(
                ids,
                list(num_images),
                self.cv_image_pad_id,
                image_grid_thw=grid.tolist() if grid is not None else None,
                merge_size=self.cv_merge_size,
                where=where,
            )

        def _generate_single_turn(
            self,
            prompt_ids: list[list[int]],
            images: Any,
            multimodal_fields: Any,
            num_generations: int,
            has_tool_images: bool = False,
        ) -> Any:
            # Colocated vLLM re-expands image placeholders (trl#6294): give it one placeholder per image. Server
            # mode places precomputed features on the expanded runs, so it keeps them. Only the generation input
            # changes; training still uses the processor-expanded ids.
            if self.use_vllm and self.vllm_mode == "colocate" and self._is_vlm and self.cv_image_pad_id >= 0:
                prompt_ids = [collapse_image_runs(list(p), self.cv_image_pad_id) for p in prompt_ids]
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images=has_tool_images
            )

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            output = super()._generate_and_score_completions(inputs)
            self._cv_check(output, "grpo rollout")
            return output

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            self._cv_check(inputs, "grpo training forward")
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

    return CodeVisionGRPOTrainer


def _jinja_literal(value: Any) -> str:
    """``value`` (JSON data) as a Jinja literal that evaluates back to it."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_jinja_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_jinja_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        # Jinja reads string literals with Python's unicode-escape rules, so JSON's ASCII escapes round-trip.
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} into a chat template")


def with_preset_tools(template: str, preset: Preset | str) -> str:
    """``template`` rendering ``preset``'s tool schemas whatever ``tools`` it is called with.

    TRL hands the chat template the environment's tool *methods*, which transformers turns into schemas from
    their docstrings (joining a multi-line argument description onto one line); fixing ``tools`` at the top of
    the template makes RL prompts show the preset's schema byte for byte, as inference and SFT do (and none
    when the preset does not show it, ``Preset.tools_in_prompt``). Tool calls still run through TRL's methods.

    Example:
        >>> with_preset_tools("{{ tools | length }}", "default").startswith("{%- set tools = [")
        True
    """
    tools = get_preset(preset).tools()
    return "{%- set tools = " + (_jinja_literal(tools) if tools else "none") + " -%}\n" + template


def prepare_rl_processor(processor: Any, family: str, preset: Preset | str = "default") -> Any:
    """Put our tool-aware chat template (showing ``preset``'s tool schema, :func:`with_preset_tools`) and
    TRL's hermes tool-call parser on a processor."""
    from cv_agent.templates import load_chat_template
    from trl import chat_template_utils

    template = with_preset_tools(load_chat_template(family, training=False), preset)
    processor.chat_template = template
    processor.tokenizer.chat_template = template
    if getattr(processor.tokenizer, "response_template", None) is None:
        processor.tokenizer.response_template = getattr(chat_template_utils, _HERMES_PARSER_TEMPLATE)
    return processor


def build_rl_trainer(recipe: RLRecipe, items: list[Any] | None = None) -> Any:
    """Build a ready-to-train multi-turn ``GRPOTrainer`` from a recipe (and optional in-memory items).

    Example:
        >>> from cv_train.config import tiny_rl_recipe
        >>> trainer = build_rl_trainer(tiny_rl_recipe(max_steps=1))  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
    """
    import os

    from trl import GRPOConfig

    from .data import load_rl_items, rl_dataset
    from .models import image_pad_token_id, load_model_and_processor, peft_config, quantization_config
    from .rewards import make_process_reward

    _check_vllm(recipe)
    quantization_config(recipe)  # fail fast (QLoRA without CUDA) before building any data
    recipe = resolve_warm_start(recipe)  # "tiny-sft:<family>": the cached toy-SFT model (built on first use)
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    if items is None:
        items = load_rl_items(recipe.dataset, recipe.num_synthetic, recipe.seed)
    dataset = rl_dataset(items, recipe.preset)
    model, processor, family = load_model_and_processor(recipe)
    prepare_rl_processor(processor, family, recipe.preset)
    args = GRPOConfig(**grpo_config_kwargs(recipe), use_cpu=use_cpu())
    reward = make_process_reward(
        processor.tokenizer, variant=recipe.reward_variant, num_generations=recipe.num_generations
    )
    env_config = CodeVisionEnvConfig(
        timeout_s=recipe.sandbox_timeout_s, max_images=recipe.max_turns + 1, preset=recipe.preset
    )
    trainer_cls = _make_trainer_class()
    trainer = trainer_cls(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config(recipe),
        environment_factory=functools.partial(CodeVisionEnv, env_config),
    )
    if recipe.tool_collapse_patience > 0:
        trainer.add_callback(
            tool_collapse_callback(
                recipe.tool_collapse_threshold, recipe.tool_collapse_patience, recipe.tool_collapse_stop
            )
        )
    trainer.cv_image_pad_id = image_pad_token_id(processor)
    trainer.cv_merge_size = int(getattr(processor.image_processor, "merge_size", 2))
    trainer.cv_family = family
    return trainer


def train_rl(recipe: RLRecipe, items: list[Any] | None = None) -> Path:
    """Run GRPO and save the final model + processor to ``<output_dir>/final``; returns that path.

    Example:
        >>> from cv_train.config import tiny_rl_recipe
        >>> train_rl(tiny_rl_recipe(output_dir="runs/rl-tiny"))  # doctest: +SKIP
        PosixPath('runs/rl-tiny/final')
    """
    return train_and_save(recipe, lambda: build_rl_trainer(recipe, items))
