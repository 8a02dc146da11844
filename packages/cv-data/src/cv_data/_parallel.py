"""Order-preserving parallel map with a progress bar; workers return (value, error) so one bad record
never takes the batch down."""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Callable, Iterable, Iterator
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


def pmap(
    fn: Callable[[Any], T],
    args: Iterable[Any],
    *,
    num_proc: int = 1,
    desc: str = "",
    total: int | None = None,
    progress: bool = True,
) -> Iterator[tuple[T | None, str | None]]:
    """Yield ``(fn(arg), None)`` or ``(None, error_message)`` for each arg, in input order.

    ``fn`` must be a module-level function when ``num_proc > 1`` (it is pickled to the workers).
    """
    if num_proc < 1:
        raise ValueError(f"num_proc must be >= 1, got {num_proc}")
    work = ((fn, a) for a in args)
    bar = tqdm(total=total, desc=desc, disable=not progress, unit="rec")
    try:
        if num_proc == 1:
            for w in work:
                yield _safe(w)
                bar.update(1)
        else:
            # forkserver: workers do not inherit the parent's threads (tqdm monitor, sandbox pools).
            ctx = mp.get_context("forkserver")
            with ctx.Pool(num_proc) as pool:
                for r in pool.imap(_safe, work, chunksize=4):
                    yield r
                    bar.update(1)
    finally:
        bar.close()
