"""The toy task of the learning proof: the tool is necessary, the signal is visual, and chance is 25 %.

A 56-pixel image of four 28-pixel quadrants, one image token each for Qwen-VL (14-pixel patches merged 2x2):
the top-left quadrant is the black marker, the other three have distinct colours from :data:`TOY_COLOURS`,
and every quadrant carries a black band along its top edge, so each token shows which way is up. The image is
shown rotated by 0, 90, 180 or 270 degrees; the question asks the colour of the top-right square of the
*upright* image. Correct behaviour: call the tool with the corrective rotation (no call when the image is
upright) and read the answer from the tool's image. A random policy picks the right op and the right colour
a quarter of the time each.

- :func:`make_toy_item`: the upright item (``cv_data.SOURCES["toy"]``; ``cv-data build-rl --sources toy
  --transforms rotate_90,rotate_180,rotate_270 --p-identity 0.25 --p-compose 0`` gives the four orientations
  equally often).
- :func:`toy_item`: an item already shown in one of the four orientations (uniform in ``(seed, index)``).
- :func:`toy_kind` / :func:`toy_wrong_op_kind`: SFT trajectory kinds (``cv-data build-sft --kinds toy=1``),
  written by a scripted expert and executed in the sandbox; ``toy_wrong_op`` applies a wrong rotation on
  purpose (then answers correctly anyway), so a mixture such as ``toy=0.4,toy_wrong_op=0.6`` trains a
  deliberately noisy policy to start RL from.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from cv_protocol import ROTATE_OPS, corrective_ops
from PIL import Image

from .expert import orientation_code
from .item import Item
from .transforms import transform_item

__all__ = [
    "TOY_COLOURS",
    "TOY_QUESTION",
    "TOY_ROTATIONS",
    "TOY_SIZE",
    "make_toy_item",
    "toy_image",
    "toy_item",
    "toy_kind",
    "toy_wrong_op_kind",
]

#: Colour name -> RGB of the three coloured quadrants (four names: the answer is one of them, chance 25 %).
TOY_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 30),
}
#: Side of the toy image in pixels: 2x2 quadrants of 28 pixels, i.e. one Qwen-VL image token per quadrant.
TOY_SIZE = 56
#: The orientations a toy item is shown in besides upright (``Image.rotate`` angles, counter-clockwise).
TOY_ROTATIONS: tuple[str, ...] = ROTATE_OPS
TOY_QUESTION = "What colour is the top-right square of the upright image?"
_BAND = 6  # pixels of the black band on top of each quadrant
_SOURCE = "synthetic/toy"


def toy_image(top_right: str, bottom_left: str, bottom_right: str) -> Image.Image:
    """The upright toy image: black marker top-left, three coloured quadrants, a black band on top of each.

    Example:
        >>> im = toy_image("red", "green", "blue")
        >>> im.size, im.getpixel((42, 20)), im.getpixel((42, 2))
        ((56, 56), (220, 40, 40), (0, 0, 0))
    """
    q = TOY_SIZE // 2
    arr = np.zeros((TOY_SIZE, TOY_SIZE, 3), dtype=np.uint8)
    for (row, col), name in zip(
        ((0, 1), (1, 0), (1, 1)), (top_right, bottom_left, bottom_right), strict=True
    ):
        if name not in TOY_COLOURS:
            raise ValueError(f"unknown toy colour {name!r}; use one of {sorted(TOY_COLOURS)}")
        arr[row * q : (row + 1) * q, col * q : (col + 1) * q] = TOY_COLOURS[name]
        arr[row * q : row * q + _BAND, col * q : (col + 1) * q] = 0
    return Image.fromarray(arr, "RGB")


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, 0x70E, stream])


def _arrangements(held_out: bool) -> list[tuple[str, str, str]]:
    """The colour arrangements (top-right, bottom-left, bottom-right) of one split.

    There are 24; a fixed 8 of them (2 per top-right colour) only ever appear in the ``test`` split, so
    held-out items show colour arrangements that training never saw.
    """
    names = list(TOY_COLOURS)
    out = []
    for c, top_right in enumerate(names):
        rest = [n for n in names if n != top_right]
        pairs = [(a, b) for a in rest for b in rest if a != b]
        out += [
            (top_right, a, b) for j, (a, b) in enumerate(pairs) if (j in (c % 6, (c + 3) % 6)) == held_out
        ]
    return out


_TRAIN, _TEST = _arrangements(False), _arrangements(True)


def make_toy_item(index: int, seed: int = 0, split: str = "train") -> Item:
    """Toy item ``index`` upright (no transform); deterministic in ``(seed, index, split)``.

    Items of the ``test`` split use 8 colour arrangements that the other splits never use (16 of the 24);
    consecutive indices go through all of a split's arrangements, so every colour is the answer equally often.

    Example:
        >>> it = make_toy_item(3, seed=1)
        >>> it.images[0].size, it.transform, it.answer in TOY_COLOURS
        ((56, 56), [], True)
        >>> {tuple(make_toy_item(i, split="test").meta["colours"]) for i in range(200)} & set(_TRAIN)
        set()
    """
    pool = _TEST if split == "test" else _TRAIN
    # Consecutive indices cycle through every arrangement (each answer equally often); the seed shifts the cycle.
    picked = list(pool[(index + 5 * seed) % len(pool)])
    return Item(
        id=f"toy-s{seed}-{index:06d}",
        images=[toy_image(*picked)],
        question=TOY_QUESTION,
        answer=picked[0],
        data_source=_SOURCE,
        split=split,
        meta={"colours": picked},
    )


def toy_item(index: int, seed: int = 0, split: str = "train", *, rotation: str | None = None) -> Item:
    """Toy item ``index`` shown upright or rotated, each of the four orientations equally likely.

    Args:
        index: Item index.
        seed: Seed; the item (colours and orientation) is a function of ``(seed, index)``.
        split: Split recorded on the item.
        rotation: Force an orientation: ``""`` (upright) or one of :data:`TOY_ROTATIONS`.

    Example:
        >>> [toy_item(i, seed=2).transform for i in range(3)]  # doctest: +ELLIPSIS
        [[...], [...], [...]]
        >>> toy_item(0, rotation="rotate_90").transform
        ['rotate_90']
    """
    base = make_toy_item(index, seed, split)
    if rotation is None:
        rotation = ("", *TOY_ROTATIONS)[int(_rng(seed, index, 1).integers(4))]
    if rotation and rotation not in TOY_ROTATIONS:
        raise ValueError(f"rotation {rotation!r}: use '' (upright) or one of {TOY_ROTATIONS}")
    return transform_item(base, [rotation]) if rotation else base


# ------------------------------------------------------------------ SFT trajectory kinds
# A kind builder is ``(conversation_factory, rng, index, seed) -> (item, conversation)`` (cv_data.sft.kinds).

_THINK_ROTATED = "The marker is not at the top left: the image is rotated."
_THINK_UPRIGHT = "The marker is at the top left: the image is upright."
_THINK_AFTER = "Now the marker is at the top left."


def _rotate(conv, op: str) -> None:
    conv.call(_THINK_ROTATED, orientation_code(op), "Rotate the image upright.", 0)


def toy_kind(conv_factory: Callable, rng: np.random.Generator, index: int, seed: int):
    """The expert on toy item ``index``: the corrective rotation when rotated, then the colour.

    Example:
        >>> from cv_data.sft import make_trajectory
        >>> rec = make_trajectory(1, "toy", seed=0)
        >>> rec["kind"], rec["messages"][-1]["content"][0]["text"].endswith(f"<answer>{rec['answer']}</answer>")
        ('toy', True)
    """
    from .sft.conversation import TrajectoryError

    item = toy_item(index, seed)
    conv = conv_factory(item)
    if item.transform:
        fix = corrective_ops(item.transform)[0]
        _rotate(conv, fix)
        upright = make_toy_item(index, seed).images[0]
        if conv.images[-1].tobytes() != upright.tobytes():
            raise TrajectoryError(f"{fix} did not restore the upright toy image")
        conv.answer(_THINK_AFTER, item.answer)
    else:
        conv.answer(_THINK_UPRIGHT, item.answer)
    return item, conv


def toy_wrong_op_kind(conv_factory: Callable, rng: np.random.Generator, index: int, seed: int):
    """A deliberately wrong expert: a rotated toy item gets a *wrong* rotation, then the correct colour.

    Mixed with :func:`toy_kind` it trains a policy whose choice of op is noisy while its format is exact, the
    start the learning proof gives GRPO.

    Example:
        >>> from cv_data.sft import make_trajectory
        >>> rec = make_trajectory(1, "toy_wrong_op", seed=0)
        >>> rec["tool_ops"][0] != corrective_ops(rec["transform"])  # the applied rotation does not undo it
        True
    """
    item = toy_item(index, seed)
    if not item.transform:  # the wrong op of an upright image: rotate it anyway
        item = toy_item(index, seed, rotation=TOY_ROTATIONS[int(rng.integers(3))])
    right = corrective_ops(item.transform)[0]
    wrong = [op for op in TOY_ROTATIONS if op != right]
    conv = conv_factory(item)
    _rotate(conv, wrong[int(rng.integers(len(wrong)))])
    conv.answer(_THINK_AFTER, item.answer)
    return item, conv
