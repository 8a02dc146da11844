"""Order-preserving parallel map with bounded look-ahead and a progress bar; workers return (value, error) so
one bad record never takes the batch down."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def _safe(args: tuple[Callable[..., Any], Any]) -> tuple[Any, str | None]:
    fn, arg = args
    try:
        return fn(arg), None
    except Exception as e:  # noqa: BLE001 - reported per record by the caller
        tb = traceback.extract_tb(e.__traceback__)
        where = f" (at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        return None, f"{type(e).__name__}: {e}{where}"


def imap_ordered(
    fn: Callable[[Any], T],
    args: Iterable[Any],
    *,
    num_proc: int = 1,
    window: int | None = None,
    preload: Sequence[str] = (),
) -> Iterator[tuple[T | None, str | None]]:
    """Yield ``(fn(arg), None)`` or ``(None, error_message)`` for each arg, in input order.

    At most ``window`` (default ``4 * num_proc``) args are taken from ``args`` ahead of the result being
    yielded, so memory stays bounded however long ``args`` is and however slow the consumer is
    (``multiprocessing.Pool.imap`` drains its input and queues every result). ``fn`` must be a
    module-level function when ``num_proc > 1`` (it is pickled to the workers). ``preload`` names modules
    the fork server imports once, before it forks the workers (they start warm instead of each importing
    them); it applies when this process starts its fork server, i.e. on its first pool.

    Example:
        >>> [r for r, _ in imap_ordered(abs, [-1, 2, -3])]
        [1, 2, 3]
    """
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    if num_proc == 1:
        for a in args:
            yield _safe((fn, a))
        return
    window = window or 4 * num_proc
    # forkserver: workers do not inherit the parent's threads (tqdm monitor, sandbox pools).
    ctx = mp.get_context("forkserver")
    if preload:
        ctx.set_forkserver_preload(list(preload))
    with ctx.Pool(num_proc) as pool:
        pending: deque[Any] = deque()
        it = iter(args)
        for a in it:
            pending.append(pool.apply_async(_safe, ((fn, a),)))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().get()
            nxt = next(it, _END)
            if nxt is not _END:
                pending.append(pool.apply_async(_safe, ((fn, nxt),)))
            yield result


_END = object()


def pmap(
    fn: Callable[[Any], T],
    args: Iterable[Any],
    *,
    num_proc: int = 1,
    desc: str = "",
    total: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[T | None, str | None]]:
    """:func:`imap_ordered` with a progress bar of ``total`` records.

    ``fn`` must be a module-level function when ``num_proc > 1`` (it is pickled to the workers).
    """
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="rec")
    try:
        for r in imap_ordered(fn, args, num_proc=num_proc):
            yield r
            bar.update(1)
    finally:
        bar.close()
