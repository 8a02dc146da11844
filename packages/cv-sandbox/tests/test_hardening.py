"""The OS layer on its own: a hardened child cannot open files, sockets or processes even with the real
``os``/``socket`` modules in hand (as if RestrictedPython and the facades had been bypassed)."""

from __future__ import annotations

import json
import os

import pytest
from cv_sandbox import _harden
from cv_sandbox._wire import recv_frame, send_frame


def _probe_in_hardened_child() -> dict[str, object]:
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            status = _harden.harden_child(
                w, devnull, None, memory_mb=256, cpu_s=5, seccomp=_harden.seccomp_program(), drop_uid=True
            )
            out: dict[str, object] = {"status": status}

            def attempt(name: str, fn) -> None:  # type: ignore[no-untyped-def]
                try:
                    fn()
                    out[name] = "ALLOWED"
                except OSError as exc:
                    out[name] = f"denied: {exc.__class__.__name__}"

            import socket

            attempt("open_read", lambda: open("/etc/hostname").read())
            attempt("open_write", lambda: open("/tmp/cvs-hardening-probe", "w").write("x"))
            attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            attempt("unix_socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            attempt("fork", lambda: os._exit(0) if os.fork() == 0 else None)
            attempt("exec", lambda: os.execv("/bin/true", ["true"]))
            attempt("kill_parent", lambda: os.kill(os.getppid(), 0))
            attempt("mkdir", lambda: os.mkdir("/tmp/cvs-hardening-dir"))
            out["uid"] = os.getuid()
            send_frame(w, out)
        finally:
            os._exit(0)
    os.close(w)
    os.close(devnull)
    header, _ = recv_frame(r, None)
    os.close(r)
    os.waitpid(pid, 0)
    return header


@pytest.mark.skipif(_harden.seccomp_program() is None, reason="seccomp syscall table only for x86_64")
def test_hardened_child_is_locked_down() -> None:
    out = _probe_in_hardened_child()
    status = out["status"]
    assert isinstance(status, dict) and status["seccomp"] is True, json.dumps(out)
    for key in ("open_read", "open_write", "socket", "unix_socket", "fork", "exec", "kill_parent", "mkdir"):
        assert str(out[key]).startswith("denied"), (key, out)
    assert not os.path.exists("/tmp/cvs-hardening-probe")
    if os.getuid() == 0:
        assert out["uid"] == _harden.NOBODY


def test_seccomp_program_shape() -> None:
    prog = _harden.seccomp_program()
    if prog is None:
        pytest.skip("no syscall table for this architecture")
    assert len(prog) % 8 == 0 and len(prog) // 8 < 4096
