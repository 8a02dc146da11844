"""Every message between the sandbox's processes, written once and used by each side.

Three processes take part (frames and images themselves are :mod:`cv_sandbox._wire`'s):

- the **caller** (the process holding the :class:`~cv_sandbox.Sandbox`; :mod:`cv_sandbox._pool`),
- the **worker** (one warm "zygote" per pool slot; :mod:`cv_sandbox._zygote`), which forks
- hardened **children** that run the user code (the child loop in :mod:`cv_sandbox._zygote`).

Channels:

1. *Start-up*, on the worker's stdin/stdout: the caller sends ``init`` (limits and shared-memory fds), the
   worker answers ``ready`` (with its hardening report) or ``failed``.
2. *Control*, a Unix socket between caller and worker: the caller says ``take`` (a spare child was taken
   into use: fork the next), ``retire`` (done with a child), ``kill`` (its deadline passed) or ``reap``
   (its pipe closed: say why) and ``exit``; the worker sends a marker byte and a frame: ``F`` + ``child``
   with the new child's request/reply pipe ends attached (``SCM_RIGHTS``), ``M`` + ``status`` (the answer
   to ``kill`` and ``reap``) or ``M`` + ``gone`` (a child has been reaped: it can no longer see anything).
3. *Request/reply*, on a child's private pipes, without the worker in between: one request frame (code and
   the header of the input image, whose pixels are already in shared memory) is answered by exactly one
   reply frame (outcome, stdout, trace; the pixels of ``result`` in shared memory).

The request/reply exchange is :func:`call_child` on the calling side (the caller for every real call, the
worker for its start-up probe) and :func:`serve_calls` on the child side; both apply the same rule for
when a child may serve another call (:func:`is_reusable`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeVar

from ._wire import (
    CallLost,
    WireClosed,
    WireError,
    WireTimeout,
    _wait,
    frame_bytes,
    recv_frame,
    send_frame,
    write_all,
)

# ------------------------------------------------------------------------------------------- replies

#: Error kinds after which a child keeps serving calls: the user code failed in an ordinary way, so the
#: child's state is still trusted. Anything else (timeout, memory, crash, forbidden access) retires it.
REUSABLE_AFTER = frozenset(
    {"syntax", "exception", "bad_result", "empty_result", "output_too_large", "code_too_long"}
)


def timeout_message(timeout_s: float) -> str:
    """The error every timed-out call reports, wherever the deadline was enforced."""
    return (
        f"execution timed out after {timeout_s:g} s (the code must finish faster; "
        "avoid infinite loops and very slow per-pixel Python loops)"
    )


def ok_reply(
    stdout: str,
    trace: list[dict[str, Any]],
    to_source: list[float] | None,
    discarded: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The reply header of a call that produced an image (the child adds its image header and size):
    ``trace`` holds the ops that took effect on it, ``discarded`` the ops whose output it does not carry."""
    return {
        "ok": True,
        "error": None,
        "error_kind": None,
        "stdout": stdout,
        "trace": trace,
        "discarded": discarded or [],
        "to_source": to_source,
    }


def error_reply(
    kind: str, msg: str, stdout: str = "", trace: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The reply header of a failed call (``kind`` is one of :data:`cv_sandbox.ERROR_KINDS`)."""
    return {
        "ok": False,
        "error": msg,
        "error_kind": kind,
        "stdout": stdout,
        "trace": trace or [],
        "to_source": None,
    }


def is_reusable(reply: dict[str, Any]) -> bool:
    """Whether the child that sent ``reply`` may serve another call."""
    return bool(reply.get("ok")) or reply.get("error_kind") in REUSABLE_AFTER


def reply_header_limit(max_stdout_chars: int) -> int:
    """Largest reply header accepted: stdout (up to 4 UTF-8 bytes per character, JSON-escaped) plus trace."""
    return max_stdout_chars * 8 + (8 << 20)


# ------------------------------------------------------------------------------------------- request/reply


class ChildEnds(Protocol):
    """The calling side's ends of one child's private pipes."""

    req_w: int
    res_r: int


_C = TypeVar("_C", bound=ChildEnds)
_R = TypeVar("_R")


class Supervisor(Protocol[_C]):
    """What the calling side does with a child the exchange gives up on (the worker owns the processes)."""

    def kill_child(self, child: _C) -> None:
        """Its deadline passed: kill it (may raise :class:`WireTimeout` if the worker cannot be reached)."""

    def reap_child(self, child: _C) -> tuple[str, str]:
        """It closed its pipe (it died): reap it and return ``(error_kind, error)`` saying why."""

    def retire_child(self, child: _C) -> None:
        """Its state is no longer trusted: it serves no more calls."""


def call_child(
    child: _C,
    code: str,
    image: dict[str, Any],
    nbytes: int,
    *,
    deadline: float,
    timeout_s: float,
    max_stdout_chars: int,
    out_capacity: int,
    load_result: Callable[[Any, int], _R],
    supervisor: Supervisor[_C],
) -> tuple[dict[str, Any], _R | None]:
    """Run one call on ``child`` and return its reply header and ``load_result(image_header, nbytes)``.

    The input pixels must already be in the shared input region (``image``/``nbytes`` describe them). Never
    raises for anything the child does: a late, dead or lying child becomes an error reply, and
    ``supervisor`` is told to kill, reap or retire it. ``load_result`` reads (or only checks) the result
    image; it may raise :class:`WireError`, ``TypeError`` or ``ValueError`` for an invalid one. Raises
    :class:`CallLost` when the child was gone before it got the request, or died with its worker.
    """
    try:
        send_frame(child.req_w, {"code": code, "image": image, "nbytes": nbytes}, b"", deadline)
    except (WireClosed, BrokenPipeError) as exc:
        # The child was dead before it could read the request, so nothing of this call ran: have it reaped
        # and let the caller run the call on another child.
        try:
            supervisor.reap_child(child)
        except (WireError, OSError):
            pass  # the worker is gone too; the supervisor knows it must be replaced
        raise CallLost(f"the sandbox child was gone before the call: {exc}") from exc
    try:
        reply, _ = recv_frame(
            child.res_r, deadline, max_header=reply_header_limit(max_stdout_chars), max_payload=0
        )
    except WireTimeout:
        supervisor.kill_child(child)
        return error_reply("timeout", timeout_message(timeout_s)), None
    except (WireClosed, BrokenPipeError):  # the child died: ask why
        try:
            why = supervisor.reap_child(child)
        except (
            WireError,
            OSError,
        ) as exc:  # its worker died too: an outside event, not a verdict on the code
            raise CallLost(f"the sandbox worker died during the call: {exc}") from exc
        return error_reply(*why), None
    except (WireError, OSError, ValueError, RecursionError) as exc:  # garbage on the pipe
        supervisor.kill_child(child)
        return error_reply("crash", f"invalid reply from sandbox child: {type(exc).__name__}"), None
    result = None
    if reply.get("ok"):
        try:
            n = reply.get("nbytes")
            if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= out_capacity:
                raise WireError("result size out of range")
            result = load_result(reply.get("image"), n)
        except (WireError, TypeError, ValueError) as exc:
            supervisor.retire_child(child)
            return error_reply("crash", f"invalid result from sandbox child: {exc}"), None
    if not is_reusable(reply):
        supervisor.retire_child(child)
    return reply, result


def serve_calls(
    req_r: int,
    res_w: int,
    handle: Callable[[dict[str, Any]], dict[str, Any]],
    max_calls: int,
    after_reply: Callable[[], None] = lambda: None,
) -> None:
    """The child's side: answer up to ``max_calls`` requests with ``handle(request)``, one reply each
    (``after_reply`` runs after each reply that another call may follow).

    Returns when the caller goes away, after a reply that ends the child's use (:func:`is_reusable`), or
    after anything ``handle`` raises (reported as the reply; the child's state is not trusted after it).
    """
    for left in range(max_calls - 1, -1, -1):
        try:
            request, _ = recv_frame(req_r)
        except (WireError, OSError):
            return  # the caller went away or discarded this child
        try:
            reply = handle(request)
            send_frame(res_w, reply)
            if left and is_reusable(reply):
                after_reply()  # only before another call (nothing to tidy up in a child about to end)
        except BaseException as exc:  # noqa: BLE001 - report and end; never return into the zygote's loop
            try:
                kind = "memory" if isinstance(exc, MemoryError) else "crash"
                send_frame(res_w, error_reply(kind, f"sandbox child error: {type(exc).__name__}: {exc}"))
            except BaseException:  # noqa: BLE001
                pass
            return
        if not is_reusable(reply):
            return


# ------------------------------------------------------------------------------------------- control

ControlOp = Literal["take", "retire", "kill", "reap", "exit"]
_OFFER, _MESSAGE = b"F", b"M"


def send_control(fd: int, op: ControlOp, child_id: int | None = None, deadline: float | None = None) -> None:
    """Caller -> worker: one control request."""
    send_controls(fd, [(op, child_id)], deadline)


def send_controls(
    fd: int, requests: list[tuple[ControlOp, int | None]], deadline: float | None = None
) -> None:
    """Caller -> worker: several control requests in one write, so the worker wakes once for all of them."""
    frames = [frame_bytes({"op": op} if cid is None else {"op": op, "id": cid}) for op, cid in requests]
    write_all(fd, b"".join(frames), deadline)


def read_control(fd: int) -> tuple[str | None, int | None]:
    """Worker side: the next control request as ``(op, child id)``; raises :class:`WireError` when the
    caller went away or sent garbage."""
    try:
        msg, _ = recv_frame(fd)
    except (OSError, ValueError, RecursionError) as exc:
        raise WireError(f"bad control request: {type(exc).__name__}") from exc
    op, cid = msg.get("op"), msg.get("id")
    return (op if isinstance(op, str) else None), (
        cid if isinstance(cid, int) and not isinstance(cid, bool) else None
    )


def offer_child(sock: socket.socket, child_id: int, slot: int, req_w: int, res_r: int) -> None:
    """Worker -> caller: a new child (with the pixel slot it maps) and its request-write and reply-read ends
    (the worker then closes its own); one ``sendmsg``."""
    socket.send_fds(
        sock, [_OFFER + frame_bytes({"op": "child", "id": child_id, "slot": slot})], [req_w, res_r]
    )


def send_status(sock: socket.socket, child_id: int | None, kind: str, msg: str = "") -> None:
    """Worker -> caller: how a child the caller asked about ended (answers ``kill`` and ``reap``)."""
    sock.sendall(_MESSAGE + frame_bytes({"op": "status", "id": child_id, "error_kind": kind, "error": msg}))


def send_gone(sock: socket.socket, child_id: int) -> None:
    """Worker -> caller: ``child_id`` has been reaped (sent once for every child, whatever its end)."""
    sock.sendall(_MESSAGE + frame_bytes({"op": "gone", "id": child_id}))


def read_worker_message(
    sock: socket.socket, deadline: float
) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """Caller side: the worker's next message and, for a child offer, its ``(req_w, res_r)`` ends (owned by
    the caller from here on, not inherited by later subprocesses)."""
    fd = sock.fileno()
    _wait(fd, False, deadline)
    marker, fds, _, _ = socket.recv_fds(sock, 1, 2)
    for f in fds:
        os.set_inheritable(f, False)
    try:
        if not marker:
            raise WireClosed("the worker closed its control socket")
        msg, _ = recv_frame(fd, deadline, max_header=1 << 16, max_payload=0)
        if marker == _OFFER:
            cid, slot = msg.get("id"), msg.get("slot")
            if (
                len(fds) != 2
                or msg.get("op") != "child"
                or not isinstance(cid, int)
                or not isinstance(slot, int)
                or isinstance(slot, bool)
            ):
                raise WireError("bad child offer from the worker")
            return msg, (fds[0], fds[1])
        if fds:
            raise WireError("unexpected file descriptors from the worker")
        return msg, None
    except BaseException:
        for f in fds:
            os.close(f)
        raise


# ------------------------------------------------------------------------------------------- start-up


def send_init(fd: int, config: dict[str, Any], deadline: float) -> None:
    """Caller -> worker: limits and the numbers of the inherited fds (shared memory, control socket)."""
    send_frame(fd, {"op": "init", "config": config}, b"", deadline)


def read_init(fd: int) -> dict[str, Any]:
    """Worker side: the ``init`` configuration."""
    msg, _ = recv_frame(fd)
    config = msg.get("config")
    if msg.get("op") != "init" or not isinstance(config, dict):
        raise WireError("expected an init frame")
    return config


def send_ready(fd: int, hardening: dict[str, bool]) -> None:
    """Worker -> caller: started; ``hardening`` says which OS protections worked."""
    send_frame(fd, {"op": "ready", "hardening": hardening, "pid": os.getpid()})


def send_failed(fd: int, error: str) -> None:
    """Worker -> caller: the worker cannot start, and why."""
    send_frame(fd, {"op": "failed", "error": error})


def read_ready(fd: int, deadline: float) -> dict[str, bool]:
    """Caller side: the worker's hardening report; raises ``RuntimeError`` if it failed to start."""
    msg, _ = recv_frame(fd, deadline)
    if msg.get("op") != "ready":
        raise RuntimeError(f"sandbox worker failed to start: {msg.get('error', msg)}")
    return dict(msg.get("hardening") or {})
