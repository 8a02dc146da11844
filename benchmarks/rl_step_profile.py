"""Where an RL step's time goes outside the model: tool calls (sandbox), reward, data.

Builds the default toy GRPO run (``cv_train.toy_rl_recipe``: the warm-started tiny model, the toy task) through
the public API, times the tool (``CodeVisionEnv.code_image_tool``), the reward function and the data loading
(dataset rows to prompts and images) inside real training steps, and prints each as a share of the step time.
On a GPU the remainder is generation and the forward/backward passes; a large tool or reward share there means
the GPU waits on the CPU.

Run: ``uv run python benchmarks/rl_step_profile.py [--steps 6] [--model tiny-sft:qwen2_5_vl] [--use-vllm]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any


def timed(store: dict[str, float], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` that adds its wall time to ``store[key]``.

    Example:
        >>> store = {}
        >>> timed(store, "f", lambda: 1)(), "f" in store
        (1, True)
    """

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            store[key] = store.get(key, 0.0) + time.perf_counter() - t0

    return wrapper


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6, help="training steps to time (the first is a warm-up)")
    p.add_argument("--model", default=None, help="model (default: the toy recipe's warm start)")
    p.add_argument("--output-dir", default="runs/rl-step-profile")
    p.add_argument("--use-vllm", action="store_true", help="generate with vLLM in colocate mode (GPU)")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--json", default=None, help="also write the shares to this JSON file")
    args = p.parse_args(argv)

    import cv_train.env as env_module
    from cv_train import build_rl_trainer, toy_rl_recipe
    from transformers import TrainerCallback

    overrides: dict[str, Any] = dict(
        output_dir=args.output_dir, max_steps=args.steps, save_steps=10_000, bf16=args.bf16
    )
    if args.model:
        overrides["model"] = args.model
    if args.use_vllm:
        overrides.update(use_vllm=True, vllm_mode="colocate", vllm_gpu_memory_utilization=0.2)
    recipe = toy_rl_recipe(**overrides)
    trainer = build_rl_trainer(recipe)

    spent: dict[str, float] = defaultdict(float)
    env_module.CodeVisionEnv.code_image_tool = timed(spent, "tools", env_module.CodeVisionEnv.code_image_tool)
    trainer.reward_funcs = [timed(spent, "reward", f) for f in trainer.reward_funcs]
    trainer.get_train_dataloader = _timed_loader(trainer.get_train_dataloader, spent)

    steps: list[dict[str, float]] = []

    class StepClock(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.t0 = time.perf_counter()
            self.before = dict(spent)

        def on_step_end(self, *a: Any, **k: Any) -> None:
            row = {key: spent[key] - self.before.get(key, 0.0) for key in ("tools", "reward", "data")}
            row["step"] = time.perf_counter() - self.t0
            steps.append(row)

    trainer.add_callback(StepClock())
    trainer.train()
    timed_steps = steps[1:] or steps  # the first step pays one-off costs (sandbox start, compilation)
    total = sum(s["step"] for s in timed_steps)
    shares = {k: sum(s[k] for s in timed_steps) / total for k in ("tools", "reward", "data")}
    shares["model (generation, forward, backward)"] = 1.0 - sum(shares.values())
    print(f"{len(timed_steps)} timed steps, {total / len(timed_steps):.2f} s per step on average")
    for k, v in shares.items():
        print(f"  {k:<40} {100 * v:5.1f} %")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seconds_per_step": total / len(timed_steps), "shares": shares}, f, indent=2)
    return 0


def _timed_loader(get_loader: Callable[[], Any], spent: dict[str, float]) -> Callable[[], Any]:
    def wrapped() -> Any:
        loader = get_loader()

        class Timed:
            def __len__(self) -> int:
                return len(loader)

            def __getattr__(self, name: str) -> Any:
                return getattr(loader, name)

            def __iter__(self) -> Any:
                it = iter(loader)
                while True:
                    t0 = time.perf_counter()
                    try:
                        batch = next(it)
                    except StopIteration:
                        return
                    finally:
                        spent["data"] += time.perf_counter() - t0
                    yield batch

        return Timed()

    return wrapped


if __name__ == "__main__":
    sys.exit(main())
