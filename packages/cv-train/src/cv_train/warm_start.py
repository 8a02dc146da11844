"""The warm start of the default RL run: a tiny model SFT'd on cv-data's toy task, trained once and cached.

A random tiny model never writes a tool call, so GRPO from it sees no tool use and equal rewards: a smoke run
that cannot fail. ``model: tiny-sft:<family>`` names the tiny model after :func:`~cv_train.config.toy_sft_recipe`
followed by a short fine-tune on a noisy teacher instead; :func:`resolve_warm_start` builds it on first use
(one to three minutes on two CPU cores) and points the recipe at it. Its own module because it trains SFT to
serve RL: ``models`` stays below ``sft``.

Why the noisy teacher: GRPO learns only from differences between the rollouts of a group. The expert SFT alone
ends nearly deterministic (token entropy about 0.02), so every rollout of a prompt can be the same text with
the same reward (``frac_reward_zero_std`` 1, zero gradient): the smoke run then shows no learning signal. As in
the learning proof's RL start (``benchmarks/learning_proof.py``), a brief fine-tune on cv-data's
``toy=0.4,toy_wrong_op=0.6`` mixture keeps the format exact and makes the choice of rotation a real
distribution (the teacher applies a wrong rotation 60 % of the time), so the rollouts of a group differ in the
op, the path reward and usually the answer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path
from typing import TypeVar

from .config import TINY_SFT_PREFIX, ModelRecipe
from .models import tiny_model_dir

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=ModelRecipe)


def resolve_warm_start(recipe: R) -> R:
    """``recipe`` with a ``tiny-sft:<family>`` model replaced by the path of the built warm start.

    Example:
        >>> from cv_train.config import tiny_rl_recipe
        >>> resolve_warm_start(tiny_rl_recipe()).model  # other models pass through unchanged
        'tiny:qwen2_5_vl'
    """
    if not recipe.model.startswith(TINY_SFT_PREFIX):
        return recipe
    return dataclasses.replace(recipe, model=str(build_warm_start(recipe)))


_WARM_MARKER = "cv_train_warm_start.yaml"
#: The noisy teacher of the warm start's second stage (cv-data SFT kinds and weights), as in the learning proof.
WARM_NOISY_KINDS: dict[str, float] = {"toy": 0.4, "toy_wrong_op": 0.6}
#: Steps, learning rate and records of that stage: brief, so the format learned by the expert stage stays.
WARM_NOISY_STEPS, WARM_NOISY_LR, WARM_NOISY_NUM = 40, 2e-4, 256


def build_warm_start(recipe: ModelRecipe) -> Path:
    """The tiny model of ``recipe`` after the toy-task SFT (:func:`~cv_train.config.toy_sft_recipe`) and a short
    fine-tune on the noisy teacher :data:`WARM_NOISY_KINDS` (see the module docstring for why).

    Trained on first use (one to three minutes on two CPU cores) and cached beside the tiny model, keyed by
    every setting of both stages: a cache written by other settings is rebuilt, never reused.

    Example:
        >>> from cv_train.config import toy_rl_recipe
        >>> build_warm_start(toy_rl_recipe()).name  # doctest: +SKIP
        'qwen2_5_vl-seed42-px4096-toy-sft'
    """
    from cv_data import SFTBuildConfig, build_sft

    from .config import recipe_to_yaml, toy_sft_recipe
    from .sft import train_sft

    out = tiny_model_dir(recipe).with_name(tiny_model_dir(recipe).name + "-toy-sft")
    run_dir = out.with_name(f".{out.name}-run")
    expert = toy_sft_recipe(
        model=f"tiny:{recipe.tiny_family}",
        output_dir=str(run_dir / "expert"),
        seed=recipe.seed,
        min_pixels=recipe.min_pixels,
        max_pixels=recipe.max_pixels,
        tiny_hidden_size=recipe.tiny_hidden_size,
        tiny_num_layers=recipe.tiny_num_layers,
        tiny_vision_depth=recipe.tiny_vision_depth,
        preset=recipe.preset,
    )
    noisy = dataclasses.replace(
        expert,
        model="<the expert stage>",
        output_dir=str(run_dir / "noisy"),
        dataset=f"cv-data kinds {WARM_NOISY_KINDS}",  # built in memory below; recorded for the cache key
        num_synthetic=WARM_NOISY_NUM,
        seed=recipe.seed + 1,  # other records than the expert stage's
        max_steps=WARM_NOISY_STEPS,
        learning_rate=WARM_NOISY_LR,
        save_steps=WARM_NOISY_STEPS,
        logging_steps=10,
    )
    wanted = "".join(
        f"# {stage}\n" + recipe_to_yaml(dataclasses.replace(r, output_dir=""))
        for stage, r in (("expert", expert), ("noisy", noisy))
    )
    marker = out / _WARM_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        return out
    logger.info(
        "building the warm start %s: toy-task SFT of %s, then the noisy teacher (once; cached)",
        out,
        expert.model,
    )
    expert_final = train_sft(expert)
    records = list(
        build_sft(
            SFTBuildConfig(
                num=WARM_NOISY_NUM,
                seed=noisy.seed,
                kinds=WARM_NOISY_KINDS,
                preset=recipe.preset,
                progress=False,
            )
        )
    )
    final = train_sft(dataclasses.replace(noisy, model=str(expert_final)), records)
    (final / _WARM_MARKER).write_text(wanted, encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)  # a stale warm start of ours (its marker did not match)
    try:
        os.replace(final, out)
    except OSError:
        if not (out / _WARM_MARKER).is_file():  # lost a race to a builder that did not finish
            raise
    shutil.rmtree(run_dir, ignore_errors=True)
    return out
