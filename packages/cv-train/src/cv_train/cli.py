"""``cv-train sft|rl [--config recipe.yaml] [--field value ...]``: thin over :mod:`cv_train.sft` / :mod:`cv_train.rl`.

Without ``--config`` the toy CPU recipes run (:func:`~cv_train.config.toy_sft_recipe`,
:func:`~cv_train.config.toy_rl_recipe`): a tiny Qwen2.5-VL built locally learns cv-data's toy task, and RL starts
from that model (trained once and cached), so ``uv run cv-train sft`` and ``uv run cv-train rl`` work on a fresh
machine and show a learning signal.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .config import (
    RecipeError,
    RLRecipe,
    SFTRecipe,
    add_recipe_arguments,
    load_recipe,
    overrides_from_args,
    toy_rl_recipe,
    toy_sft_recipe,
)
from .data import DatasetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cv-train", description="SFT and multi-turn GRPO for CodeVision on TRL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sft = sub.add_parser("sft", help="supervised fine-tuning on multi-turn tool trajectories")
    add_recipe_arguments(sft, SFTRecipe)
    rl = sub.add_parser("rl", help="multi-turn GRPO with the code tool and the process reward")
    add_recipe_arguments(rl, RLRecipe)
    for p in (sft, rl):
        p.add_argument(
            "--dry-run", action="store_true", help="validate and print the resolved recipe, do not train"
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cv-train``; returns the process exit code.

    Example:
        >>> main(["sft", "--dry-run", "--max_steps", "3"])  # doctest: +SKIP
        0
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cls = SFTRecipe if args.command == "sft" else RLRecipe
    try:
        base = None if args.config else (toy_sft_recipe() if args.command == "sft" else toy_rl_recipe())
        recipe = load_recipe(cls, args.config, overrides_from_args(args, cls), base=base)
    except RecipeError as e:
        print(f"cv-train {args.command}: invalid recipe: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        from .config import recipe_to_yaml

        print(recipe_to_yaml(recipe), end="")
        return 0
    try:
        if args.command == "sft":
            from .sft import train_sft
            from .warm_start import resolve_warm_start

            recipe = resolve_warm_start(recipe)  # SFT may continue from the cached toy-SFT model

            final = train_sft(recipe)
        else:
            from .rl import train_rl

            final = train_rl(recipe)
    except (RecipeError, DatasetError, ImportError) as e:
        # Configuration problems (bad recipe, bad data, missing optional extra): say what to fix, no traceback.
        print(f"cv-train {args.command}: {e}", file=sys.stderr)
        return 2
    print(f"cv-train {args.command}: saved the final model to {final}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
