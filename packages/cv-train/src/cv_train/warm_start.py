"""The warm start of the default RL run: a tiny model SFT'd on cv-data's toy task, trained once and cached.

A random tiny model never writes a tool call, so GRPO from it sees no tool use and equal rewards: a smoke run
that cannot fail. ``model: tiny-sft:<family>`` names the tiny model after :func:`~cv_train.config.toy_sft_recipe`
instead; :func:`resolve_warm_start` builds it on first use (about a minute on two CPU cores) and points the
recipe at it. Its own module because it trains SFT to serve RL: ``models`` stays below ``sft``.
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


def build_warm_start(recipe: ModelRecipe) -> Path:
    """The tiny model of ``recipe`` after the default toy-task SFT (:func:`~cv_train.config.toy_sft_recipe`).

    Trained on first use (about a minute on two CPU cores) and cached beside the tiny model, keyed by the SFT
    recipe it came from: the warm start of the default RL run, which calls the tool and whose answers vary.

    Example:
        >>> from cv_train.config import toy_rl_recipe
        >>> build_warm_start(toy_rl_recipe()).name  # doctest: +SKIP
        'qwen2_5_vl-seed42-px4096-toy-sft'
    """
    from .config import recipe_to_yaml, toy_sft_recipe
    from .sft import train_sft

    out = tiny_model_dir(recipe).with_name(tiny_model_dir(recipe).name + "-toy-sft")
    run_dir = out.with_name(f".{out.name}-run")
    sft = toy_sft_recipe(
        model=f"tiny:{recipe.tiny_family}",
        output_dir=str(run_dir),
        seed=recipe.seed,
        min_pixels=recipe.min_pixels,
        max_pixels=recipe.max_pixels,
        tiny_hidden_size=recipe.tiny_hidden_size,
        tiny_num_layers=recipe.tiny_num_layers,
        tiny_vision_depth=recipe.tiny_vision_depth,
        preset=recipe.preset,
    )
    wanted = recipe_to_yaml(dataclasses.replace(sft, output_dir=""))
    marker = out / _WARM_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
        return out
    logger.info("building the warm start %s: toy-task SFT of %s (once; cached)", out, sft.model)
    final = train_sft(sft)
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
