"""One sandbox per process and configuration, for callers that need "a sandbox" rather than their own.

Starting a sandbox costs its warm workers (about a second of imports each), so the SFT builder's worker
processes, cv-train's RL environments and a reference policy built without one all share the process's
sandbox of their configuration instead of starting one per use. A forked process gets its own (a sandbox
belongs to the process that started it); every shared sandbox is closed when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading

from .sandbox import Sandbox, SandboxConfig

__all__ = ["shared_sandbox"]

_SANDBOXES: dict[tuple[int, str], Sandbox] = {}
_LOCK = threading.Lock()


def shared_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """The process's sandbox for ``config`` (default ``SandboxConfig()``), started on first use.

    Do not close it: it is shared; it closes when the process exits.

    Example:
        >>> sb = shared_sandbox(SandboxConfig(workers=1))
        >>> sb is shared_sandbox(SandboxConfig(workers=1)), sb.run("result = image", ["x.png"]).error_kind
        (True, 'bad_input')
    """
    cfg = config or SandboxConfig()
    key = (os.getpid(), repr(cfg))
    with _LOCK:
        sandbox = _SANDBOXES.get(key)
        if sandbox is None:
            sandbox = Sandbox(cfg)
            atexit.register(sandbox.close)
            _SANDBOXES[key] = sandbox
        return sandbox
