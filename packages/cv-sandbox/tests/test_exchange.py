"""The request/reply exchange on its own: both halves over real pipes, with a recording supervisor."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cv_sandbox._exchange import (
    REUSABLE_AFTER,
    call_child,
    error_reply,
    is_reusable,
    ok_reply,
    serve_calls,
    timeout_message,
)
from cv_sandbox._wire import check_image

IMAGE = {"mode": "L", "w": 2, "h": 2}


@dataclass
class Ends:
    req_w: int
    res_r: int


@dataclass
class Recorder:
    """Supervisor that records what the exchange asked of it."""

    calls: list[str] = field(default_factory=list)
    reap_says: tuple[str, str] = ("crash", "the code crashed the interpreter (SIGSEGV)")

    def kill_child(self, child: Ends) -> None:
        self.calls.append("kill")

    def reap_child(self, child: Ends) -> tuple[str, str]:
        self.calls.append("reap")
        return self.reap_says

    def retire_child(self, child: Ends) -> None:
        self.calls.append("retire")


@dataclass
class Child:
    ends: Ends
    thread: threading.Thread
    fds: list[int]


Spawn = Callable[..., Child]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start ``serve_calls`` with a handler in a thread, as a child would run it."""
    made: list[Child] = []

    def start(handle: Callable[[dict[str, Any]], dict[str, Any]], max_calls: int = 8) -> Child:
        req_r, req_w = os.pipe()
        res_r, res_w = os.pipe()
        t = threading.Thread(target=serve_calls, args=(req_r, res_w, handle, max_calls), daemon=True)
        t.start()
        child = Child(Ends(req_w, res_r), t, [req_r, req_w, res_r, res_w])
        made.append(child)
        return child

    yield start
    for child in made:
        os.close(child.ends.req_w)  # the loop sees the caller go away
        child.thread.join(2)
        for fd in child.fds:
            if fd != child.ends.req_w:
                os.close(fd)


def _call(child: Child, sup: Recorder, code: str = "result = image", timeout_s: float = 2.0) -> Any:
    return call_child(
        child.ends,
        code,
        IMAGE,
        4,
        deadline=time.monotonic() + timeout_s,
        timeout_s=timeout_s,
        max_stdout_chars=100,
        out_capacity=1 << 10,
        load_result=check_image,
        supervisor=sup,
    )


def _echo(request: dict[str, Any]) -> dict[str, Any]:
    if request["code"] == "raise":
        raise MemoryError("boom")
    if request["code"].startswith("fail:"):
        return error_reply(request["code"][5:], "failed")
    return dict(ok_reply(request["code"], [], None), image=request["image"], nbytes=request["nbytes"])


def test_a_reusable_child_serves_call_after_call(spawn: Spawn) -> None:
    child, sup = spawn(_echo), Recorder()
    for code in ("a", "fail:exception", "b"):
        reply, result = _call(child, sup, code)
        assert is_reusable(reply)
    assert reply["stdout"] == "b" and result == ("L", 2, 2)
    assert sup.calls == [] and child.thread.is_alive()


@pytest.mark.parametrize("kind", ["forbidden", "memory", "crash"])
def test_after_a_non_reusable_reply_both_sides_let_go_of_the_child(spawn: Spawn, kind: str) -> None:
    assert kind not in REUSABLE_AFTER
    child, sup = spawn(_echo), Recorder()
    reply, result = _call(child, sup, f"fail:{kind}")
    assert reply["error_kind"] == kind and result is None
    assert sup.calls == ["retire"]
    child.thread.join(2)
    assert not child.thread.is_alive()  # the child's loop ended by itself


def test_a_late_child_is_killed_with_the_one_timeout_message(spawn: Spawn) -> None:
    child, sup = spawn(lambda req: time.sleep(1) or _echo(req)), Recorder()
    reply, _ = _call(child, sup, timeout_s=0.05)
    assert reply["error_kind"] == "timeout" and reply["error"] == timeout_message(0.05)
    assert sup.calls == ["kill"]


def test_a_dead_child_is_reaped_and_the_reason_reported() -> None:
    req_r, req_w = os.pipe()
    res_r, res_w = os.pipe()
    os.close(res_w)  # the child is gone
    sup = Recorder()
    try:
        reply, _ = call_child(
            Ends(req_w, res_r),
            "result = image",
            IMAGE,
            4,
            deadline=time.monotonic() + 2,
            timeout_s=2,
            max_stdout_chars=100,
            out_capacity=1 << 10,
            load_result=check_image,
            supervisor=sup,
        )
    finally:
        for fd in (req_r, req_w, res_r):
            os.close(fd)
    assert sup.calls == ["reap"]
    assert (reply["error_kind"], reply["error"]) == sup.reap_says


def test_a_handler_error_is_the_reply_and_ends_the_child(spawn: Spawn) -> None:
    child, sup = spawn(_echo), Recorder()
    reply, _ = _call(child, sup, "raise")
    assert reply["error_kind"] == "memory" and "MemoryError: boom" in reply["error"]
    child.thread.join(2)
    assert not child.thread.is_alive()


def test_a_result_that_does_not_fit_retires_the_child(spawn: Spawn) -> None:
    child, sup = spawn(lambda req: dict(_echo(req), nbytes=1 << 20)), Recorder()
    reply, result = _call(child, sup)
    assert reply["error_kind"] == "crash" and "invalid result" in reply["error"] and result is None
    assert sup.calls == ["retire"]
