"""The image-token invariant: every image in a sample owns exactly one run of ``<|image_pad|>`` tokens.

A prompt expanded twice (trl#6294, vLLM re-expanding a processor-expanded prompt), a tool image dropped by a chat
template, or truncation through an image all break it; the model then fails deep inside the forward pass with
"Image features and image tokens do not match", or worse, silently trains on misaligned features. We check it
where samples are built: in the SFT collator, after every GRPO rollout and before every GRPO loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class ImageTokenMismatchError(ValueError):
    """A sample's image-pad token runs do not match its images."""


def count_image_runs(token_ids: Iterable[int], image_pad_id: int) -> int:
    """Number of maximal runs of ``image_pad_id`` in a token sequence.

    Example:
        >>> count_image_runs([1, 9, 9, 2, 9, 3], 9)
        2
    """
    runs = 0
    previous = False
    for tid in token_ids:
        current = int(tid) == image_pad_id
        if current and not previous:
            runs += 1
        previous = current
    return runs


def check_image_tokens(
    sequences: Sequence[Sequence[int]],
    num_images: Sequence[int],
    image_pad_id: int,
    *,
    image_grid_thw: Sequence[Sequence[int]] | None = None,
    merge_size: int = 2,
    where: str = "",
) -> None:
    """Raise :class:`ImageTokenMismatchError` unless image-pad runs == images, per sample and in total.

    Args:
        sequences: Token ids per sample (padding may be included; it is never the image-pad id).
        num_images: Images attached to each sample, in order.
        image_pad_id: Id of ``<|image_pad|>``.
        image_grid_thw: Optional ``(t, h, w)`` patch grid per image (all samples, in order); when given, the
            total number of pad tokens must equal ``sum(t*h*w) / merge_size**2``.
        merge_size: Spatial merge of the Qwen-VL projector (2).
        where: Context for the error message (``"sft collator"``, ``"grpo rollout"``...).

    Example:
        >>> check_image_tokens([[5, 9, 9, 6]], [1], 9, image_grid_thw=[[1, 2, 4]])
        >>> check_image_tokens([[5, 9, 6, 9]], [1], 9)
        Traceback (most recent call last):
        ...
        cv_train.invariants.ImageTokenMismatchError: image-token invariant broken: sample 0 has 2 <|image_pad|> runs but 1 images. ...
    """
    if len(sequences) != len(num_images):
        raise ImageTokenMismatchError(
            f"{where}: {len(sequences)} sequences but {len(num_images)} image counts"
        )
    total_pad = 0
    for i, (seq, n) in enumerate(zip(sequences, num_images, strict=True)):
        ids = [int(t) for t in seq]
        runs = count_image_runs(ids, image_pad_id)
        total_pad += sum(1 for t in ids if t == image_pad_id)
        if runs != int(n):
            raise ImageTokenMismatchError(
                f"image-token invariant broken{' in ' + where if where else ''}: sample {i} has {runs} <|image_pad|> "
                f"runs but {int(n)} images. A chat template that drops tool images, a prompt expanded twice "
                "(trl#6294 with vLLM) or truncation through an image causes this; fix the template or raise "
                "max_length / max_completion_length."
            )
    if image_grid_thw is not None:
        expected = sum(int(t) * int(h) * int(w) for t, h, w in image_grid_thw) // (merge_size * merge_size)
        if expected != total_pad:
            raise ImageTokenMismatchError(
                f"image-token invariant broken{' in ' + where if where else ''}: {total_pad} <|image_pad|> tokens "
                f"but the image grids need {expected}; the images and the token sequence disagree."
            )
