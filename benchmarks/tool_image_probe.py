"""Does the model answer from the tool's image? A counterfactual probe on cv-data's toy task.

A correct toy answer does not prove the tool image is used: the top-right square of the upright image is one
of the quadrants of the *input* image too, so a model could learn to read it there (and, upright items
aside, never look at the tool's output). The probe tells the two apart. It runs the model through the
ordinary agent loop (``cv_agent.Agent``, the hf backend, the ``minimal`` preset, as ``cv-bench eval`` does)
on held-out rotated toy items, and when the model calls the tool, the image it is shown for the tool's
result is swapped for a counterfactual: the upright image with its top-right square painted in the one
colour the item does not use. The sandbox still runs the model's code; only what the model sees changes.

- answers the counterfactual colour: the answer is read from the tool-turn image;
- answers the item's own colour: the answer is read from the input image (the tool image is ignored);
- anything else: neither.

Only episodes whose tool call applies the corrective rotation count (the swapped image is then exactly what
the tool would show for some other item). Chance is 25 % for either colour.

Run: ``uv run python benchmarks/tool_image_probe.py --model runs/learning-proof/runs/sft-s0/final
[--size 16] [--out probe.json]``; the learning proof runs it on every SFT seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image


def counterfactual(colours: list[str]) -> tuple[Image.Image, str]:
    """The upright toy image with its top-right square in the colour the item does not use, and that colour.

    Example:
        >>> im, colour = counterfactual(["red", "green", "blue"])
        >>> colour, im.getpixel((42, 20))
        ('yellow', (230, 200, 30))
    """
    from cv_data.toy import TOY_COLOURS, toy_image

    absent = next(c for c in TOY_COLOURS if c not in colours)
    return toy_image(absent, colours[1], colours[2]), absent


class SwapToolImage:
    """A backend wrapper that shows ``replacement`` in place of every image after the first (tool outputs)."""

    def __init__(self, backend: Any, replacement: Image.Image) -> None:
        self.backend = backend
        self.replacement = replacement
        self.swapped = 0

    async def complete(self, messages: list[dict[str, Any]], images: list[Image.Image], **kw: Any) -> Any:
        if len(images) > 1:
            self.swapped += 1
            images = [images[0]] + [self.replacement.resize(im.size) for im in images[1:]]
        return await self.backend.complete(messages, images, **kw)


def probe(model: str, size: int = 16, max_new_tokens: int = 128, preset: str = "minimal") -> dict[str, Any]:
    """Run the probe on ``size`` held-out base items x 3 rotations; counts and rates of what the answer followed.

    Example:
        >>> probe("runs/learning-proof/runs/sft-s0/final")["follows_tool"]  # doctest: +SKIP
        0.97
    """
    from cv_agent import Agent, AgentConfig, make_backend
    from cv_data.toy import TOY_ROTATIONS, make_toy_item, toy_item
    from cv_protocol import ORIENTATION_OPS, corrective_ops

    backend = make_backend(f"hf:{model}", temperature=0.0)
    agent_cfg = AgentConfig(max_turns=3, max_new_tokens=max_new_tokens, preset=preset)
    rows = []
    for i in range(size):
        colours = list(make_toy_item(i, split="test").meta["colours"])
        fake, fake_colour = counterfactual(colours)
        for rotation in TOY_ROTATIONS:
            item = toy_item(i, split="test", rotation=rotation)
            wrapper = SwapToolImage(backend, fake)
            agent = Agent(wrapper, agent_cfg)  # type: ignore[arg-type]
            try:
                traj = agent.run(item.images, item.question, item_id=item.id)
            finally:
                agent.close()
            ran = [op for c in traj.tool_calls if c.ok for op in c.op_names if op in ORIENTATION_OPS]
            rows.append(
                {
                    "item": item.id,
                    "rotation": rotation,
                    "op_correct": ran
                    == [op for op in corrective_ops(item.transform) if op in ORIENTATION_OPS],
                    "shown_tool_image": wrapper.swapped > 0,
                    "answer": (traj.answer or "").strip().lower(),
                    "true": item.answer,
                    "counterfactual": fake_colour,
                }
            )
    used = [r for r in rows if r["op_correct"] and r["shown_tool_image"]]
    n = len(used)
    tool = sum(r["answer"] == r["counterfactual"] for r in used)
    inp = sum(r["answer"] == r["true"] for r in used)
    return {
        "model": model,
        "episodes": len(rows),
        "n": n,
        "follows_tool": tool / n if n else 0.0,
        "follows_input": inp / n if n else 0.0,
        "neither": (n - tool - inp) / n if n else 0.0,
        "counts": {"tool": tool, "input": inp, "neither": n - tool - inp},
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local model directory (hf backend)")
    p.add_argument("--size", type=int, default=16, help="held-out base items (x3 rotations)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--preset", default="minimal")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args(argv)
    if not Path(args.model).is_dir():
        print(f"tool_image_probe: no model directory at {args.model}", file=sys.stderr)
        return 2
    res = probe(args.model, args.size, args.max_new_tokens, args.preset)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))
    print(
        f"{args.model}: {res['n']} episodes with the corrective call; answer follows the tool image "
        f"{100 * res['follows_tool']:.1f} %, the input image {100 * res['follows_input']:.1f} %, "
        f"neither {100 * res['neither']:.1f} % (chance 25 % each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
