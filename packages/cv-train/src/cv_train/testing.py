"""Test helpers: drive GRPO rollouts with a scripted policy, so tool-calling paths run without a trained model.

A tiny random model never emits a valid tool call, so the multi-turn path (sandbox calls, tool images fed
back into generation and into the training forward pass, tool masking, process reward) would go untested.
:func:`script_rollouts` keeps TRL's whole loop and replaces only the sampled tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cv_protocol import TOOL_RESPONSE_START, render_tool_call

#: ``policy(rollout_index, after_tool_response) -> text`` with chat markup (end the turn with ``<|im_end|>``).
Policy = Callable[[int, bool], str]


def tool_call_turn(
    code: str, description: str = "", image_index: int = 0, think: str = "Fix the image."
) -> str:
    """One assistant turn calling ``code_image_tool``, as the model writes it (hermes ``<tool_call>`` JSON).

    Example:
        >>> tool_call_turn("result = image").startswith("<think>Fix the image.</think>")
        True
    """

    return f"<think>{think}</think>\n{render_tool_call(code, description, image_index)}<|im_end|>"


def script_rollouts(
    trainer: Any,
    policy: Policy,
    *,
    real_tokens: int = 4,
    calls: list[tuple[int, bool]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> None:
    """Make a ``GRPOTrainer`` sample scripted text instead of model tokens (everything else stays TRL's).

    The real generation still runs for ``real_tokens`` tokens first, so the model's vision path sees the tool
    images during generation as it would in a real run.

    Args:
        trainer: A trainer from :func:`cv_train.rl.build_rl_trainer`.
        policy: ``policy(i, after_tool)``: the text of rollout ``i`` of this generation call; ``after_tool`` is
            whether its context already holds a tool response.
        real_tokens: Tokens of real generation to run per call (0 skips it).
        calls: If given, receives ``(num_prompts, has_tool_images)`` per generation call.
        outputs: If given, receives every ``_generate_and_score_completions`` output (ids, masks, images).

    Example:
        >>> script_rollouts(trainer, lambda i, after: "<answer>A</answer><|im_end|>")  # doctest: +SKIP
    """
    tok = trainer.processing_class.tokenizer
    tool_response_id = tok.convert_tokens_to_ids(TOOL_RESPONSE_START)
    real = trainer._generate_single_turn

    def scripted(
        prompt_ids: list[list[int]],
        images: Any,
        multimodal_fields: Any,
        num_generations: int,
        has_tool_images: bool = False,
    ) -> tuple[list[list[int]], None]:
        if real_tokens > 0:
            budget = trainer.generation_config.max_new_tokens
            trainer.generation_config.max_new_tokens = real_tokens
            try:
                real(prompt_ids, images, multimodal_fields, num_generations, has_tool_images)
            finally:
                trainer.generation_config.max_new_tokens = budget
        if calls is not None:
            calls.append((len(prompt_ids), has_tool_images))
        texts = [policy(i, tool_response_id in ids) for i, ids in enumerate(prompt_ids)]
        return [tok.encode(t, add_special_tokens=False) for t in texts], None

    trainer._generate_single_turn = scripted
    if outputs is not None:
        generate_and_score = trainer._generate_and_score_completions

        def capture(inputs: Any) -> Any:
            out = generate_and_score(inputs)
            outputs.append(out)
            return out

        trainer._generate_and_score_completions = capture
