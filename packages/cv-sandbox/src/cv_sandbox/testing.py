"""Helpers for tests of code that uses the sandbox (here and in downstream packages)."""

from __future__ import annotations

import os


def _stat(pid: str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children_of(pid: int) -> list[int]:
    """Live or zombie child process ids of ``pid`` (Linux ``/proc``).

    Example:
        >>> children_of(os.getpid()) == children_of(os.getpid())
        True
    """
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            fields = _stat(p)
            if fields is not None and int(fields[1]) == pid:
                out.append(int(p))
    return out


def child_zombies(pid: int | None = None) -> list[int]:
    """Zombie children of ``pid`` (default: this process): should be empty after any sandbox use.

    Example:
        >>> child_zombies()
        []
    """
    pid = os.getpid() if pid is None else pid
    return [c for c in children_of(pid) if (_stat(str(c)) or ["?"])[0] == "Z"]
