"""The OS layer on its own: a hardened child cannot reach files, sockets, other processes, IPC or
rlimits even with ``ctypes`` in hand (as if RestrictedPython and the facades had been bypassed); the
seccomp allow-list tables match the kernel's numbering; isolation levels and ``min_isolation``."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cv_sandbox import Sandbox, SandboxConfig, _harden
from cv_sandbox._wire import recv_frame, send_frame
from cv_sandbox.sandbox import IsolationError

DATA = Path(__file__).parent / "data"

# (name, x86_64 number, how to call it in the child with libc.syscall)
# Each must fail (EPERM, or ENOSYS for clone3) in a hardened child.
SYSCALL_PROBES: list[tuple[str, str]] = [
    ("kill", "62, {victim}, 9"),
    ("tkill", "200, {victim}, 9"),
    ("tgkill", "234, {victim}, {victim}, 9"),
    ("prlimit64_other", "302, {victim}, 7, 0, 0"),
    ("msgget", "68, 0, 0o1666"),
    ("mq_open", "240, b'/cvs', 0o100, 0o600, 0"),
    ("shmget", "29, 0, 4096, 0o1666"),
    ("semget", "64, 0, 1, 0o1666"),
    ("socket", "41, 2, 1, 0"),
    ("openat", "257, -100, b'/etc/hostname', 0"),
    ("fork", "57"),
    ("clone", "56, 17, 0, 0, 0, 0"),
    ("clone3", "435, 0, 0"),
    ("execve", "59, b'/bin/true', 0, 0"),
    ("ptrace", "101, 16, {victim}, 0, 0"),
    ("process_vm_readv", "310, {victim}, 0, 0, 0, 0, 0"),
    ("pidfd_open", "434, {victim}, 0"),
    ("keyctl", "250, 0, 0, 0, 0"),
    ("bpf", "321, 0, 0, 0"),
    ("userfaultfd", "323, 0"),
    ("perf_event_open", "298, 0, 0, -1, -1, 0"),
    ("io_uring_setup", "425, 1, 0"),
    ("setns", "308, 0, 0"),
    ("unshare", "272, 0x40000000"),
    ("mount", "165, 0, 0, 0, 0, 0"),
    ("ioctl", "16, 0, 0x5401, 0"),
    ("memfd_create", "319, b'x', 0"),
    ("sched_setaffinity", "203, {victim}, 0, 0"),
    ("setpriority", "141, 0, {victim}, 19"),
    ("sched_setscheduler_other", "144, {victim}, 5, 0"),
    ("getcwd", "79, 0, 0"),
]


def _probe_in_hardened_child(victim: int) -> dict[str, object]:
    """Fork, harden exactly as a sandbox child, then try every syscall of :data:`SYSCALL_PROBES`."""
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    ruleset = _harden.landlock_ruleset()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            status = _harden.harden_child(
                w,
                devnull,
                None,
                memory_mb=256,
                cpu_s=5,
                seccomp=_harden.seccomp_program(),
                drop_uid=True,
                landlock_fd=ruleset,
            )
            libc = ctypes.CDLL(None, use_errno=True)
            out: dict[str, object] = {"status": status}
            for name, args in SYSCALL_PROBES:
                argv = eval(f"({args.format(victim=victim)},)")  # noqa: S307 - our own constant table
                rc = libc.syscall(*(ctypes.c_long(a) if isinstance(a, int) else a for a in argv))
                out[name] = (int(rc), ctypes.get_errno())
            out["uid"] = os.getuid()
            send_frame(w, out)
        finally:
            os._exit(0)
    os.close(w)
    os.close(devnull)
    if ruleset is not None:
        os.close(ruleset)
    header, _ = recv_frame(r, time.monotonic() + 20)
    os.close(r)
    os.waitpid(pid, 0)
    return header


@pytest.fixture(scope="module")
def probe() -> dict[str, object]:
    if _harden.seccomp_program() is None:
        pytest.fail("no seccomp syscall table for this machine; add one to cv_sandbox._harden.ARCHES")
    if os.uname().machine != "x86_64":
        pytest.skip("the probe table uses x86_64 numbers (the aarch64 table is checked against headers)")
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = _probe_in_hardened_child(victim.pid)
        time.sleep(0.1)
        out["victim_alive"] = victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    return out


@pytest.mark.parametrize("name", [n for n, _ in SYSCALL_PROBES])
def test_hardened_child_cannot_make_syscall(probe: dict[str, object], name: str) -> None:
    assert probe["status"]["seccomp"] is True, json.dumps(probe)  # type: ignore[index]
    rc, err = probe[name]  # type: ignore[misc]
    assert rc == -1, f"{name} succeeded in a hardened child"
    assert err == (38 if name == "clone3" else 1), (name, os.strerror(err))  # ENOSYS / EPERM


def test_same_uid_process_survives(probe: dict[str, object]) -> None:
    assert probe["victim_alive"] is True
    if os.getuid() == 0:
        assert probe["uid"] == _harden.NOBODY


# ---------------------------------------------------------------------------------------------- tables
def _kernel_table(arch: str) -> dict[str, int]:
    return json.loads((DATA / f"syscalls_{arch}.json").read_text())["syscalls"]


@pytest.mark.parametrize("arch", sorted(_harden.ARCHES))
def test_syscall_table_matches_the_kernel_numbering(arch: str) -> None:
    """Against numbers taken from Debian's linux-libc-dev headers (arm64: the kernel's generic table)."""
    _, ours = _harden.ARCHES[arch]
    kernel = _kernel_table(arch)
    wanted = set(_harden.ALLOWED_SYSCALLS) | set(_harden.SELF_ONLY_SYSCALLS) | set(_harden.ENOSYS_SYSCALLS)
    assert set(ours) <= wanted
    for name in wanted:
        if name in kernel:
            assert ours.get(name) == kernel[name], (arch, name)
        else:
            assert name not in ours, f"{name} does not exist on {arch}"
    assert all(n in ours for n in _harden.SELF_ONLY_SYSCALLS + _harden.ENOSYS_SYSCALLS)


def test_aarch64_table_also_matches_libseccomp_when_present() -> None:
    """A second, independent source for the generic numbering: libseccomp's own tables."""
    path = ctypes.util.find_library("seccomp")
    if path is None:
        pytest.skip("libseccomp is not installed (the header table above still checks aarch64)")
    lib = ctypes.CDLL(path)
    lib.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    for name, nr in _harden.SYSCALLS_AARCH64.items():
        assert lib.seccomp_syscall_resolve_name_arch(_harden.AUDIT_ARCH_AARCH64, name.encode()) == nr, name


@pytest.mark.parametrize("machine", ["x86_64", "aarch64", "arm64", "AMD64"])
def test_seccomp_program_shape(machine: str) -> None:
    prog = _harden.seccomp_program(machine)
    assert prog is not None and len(prog) % 8 == 0 and len(prog) // 8 < 4096
    assert _harden.seccomp_program("riscv64") is None


# ---------------------------------------------------------------------------------------------- levels
def test_isolation_levels_from_reports() -> None:
    full = {k: True for name in _harden.ISOLATION_LEVELS for k in _harden.LEVEL_NEEDS[name]}
    assert _harden.isolation_level(full) == "strict"
    assert _harden.isolation_level({**full, "pidns": False}) == "basic"
    assert _harden.isolation_level({**full, "seccomp": False}) == "none"
    missing = _harden.missing_for("strict", {**full, "netns": False, "pidns": False})
    assert missing[0] == "a network namespace, a PID namespace" and "user namespaces" in missing[1]
    assert missing[1].count("sysctl -w kernel.unprivileged_userns_clone=1") == 1


def test_this_machine_gives_strict_isolation() -> None:
    """Root (namespaces directly) and unprivileged users (user namespaces) alike, on this kernel."""
    with Sandbox(SandboxConfig(workers=1, min_isolation="strict")) as sb:
        h = sb.hardening
        assert sb.isolation == "strict", h
        assert h["seccomp"] and h["netns"] and h["pidns"] and h["filesystem"] and h["privileges"]
        assert h["userns"] is (os.getuid() != 0)
        r = sb.run("result = image", [__import__("PIL.Image").Image.new("L", (2, 2))])
        assert r.ok


def test_refuses_to_start_below_min_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without user namespaces (and Landlock) an ordinary user gets 'basic'; 'strict' is refused."""
    if os.getuid() == 0:
        pytest.skip("root gets namespaces without user namespaces; the unprivileged CI run covers this")
    monkeypatch.setenv(_harden.DISABLE_ENV, "userns,landlock")
    with pytest.raises(IsolationError) as exc:
        Sandbox(SandboxConfig(workers=1, min_isolation="strict"))
    msg = str(exc.value)
    assert "'strict'" in msg and "'basic'" in msg and "user namespaces" in msg and "sysctl" in msg
    assert "min_isolation='basic'" in msg
    with Sandbox(SandboxConfig(workers=1)) as sb:  # the default accepts 'basic'
        assert sb.isolation == "basic"
        assert sb.run("result = image", [__import__("PIL.Image").Image.new("L", (2, 2))]).ok


def test_config_rejects_isolation_without_hardening() -> None:
    with pytest.raises(ValueError, match="min_isolation='none'"):
        SandboxConfig(harden=False)
    with pytest.raises(ValueError, match="min_isolation must be one of"):
        SandboxConfig(min_isolation="paranoid")


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


def test_a_call_after_the_worker_died_runs_on_a_fresh_one() -> None:
    """A worker that died between calls (OOM killer, an operator's kill) costs no call: nothing of the next
    call had run, so it is retried on a fresh worker instead of coming back as a crash."""
    img = __import__("PIL.Image").Image.new("L", (2, 2), 7)
    with Sandbox(SandboxConfig(workers=1)) as sb:
        for _ in range(3):
            (pid,) = sb.worker_pids()
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while not _gone(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)  # the worker's children (the spare the next call takes) die with it
            r = sb.run("result = image.point(lambda v: v + 1)", [img])
            assert r.ok, r.error
            assert r.image.getpixel((0, 0)) == 8
            assert sb.worker_pids() != [pid]


def test_a_call_after_every_spare_was_killed_runs_on_the_next() -> None:
    """Spares killed from outside before a call reached them (both of them, twice over) cost no call either:
    none of its code had run, so it goes to the next spare (or a fresh worker)."""
    from cv_sandbox.testing import children_of

    img = __import__("PIL.Image").Image.new("L", (2, 2), 7)
    with Sandbox(SandboxConfig(workers=1)) as sb:
        assert sb.run("result = image", [img]).ok
        for _ in range(2):
            time.sleep(0.3)  # the replacement spares are forked
            (worker,) = sb.worker_pids()
            spares = children_of(worker)
            assert len(spares) == 2
            for pid in spares:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
            r = sb.run("result = image.point(lambda v: v + 1)", [img])
            assert r.ok, r.error
            assert r.image.getpixel((0, 0)) == 8


def test_worker_sits_in_its_own_pid_namespace() -> None:
    with Sandbox(SandboxConfig(workers=1)) as sb:
        (pid,) = sb.worker_pids()
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
        os.kill(pid, signal.SIGKILL)  # the worker dies; a call gets a fresh one
        img = __import__("PIL.Image").Image.new("L", (2, 2))
        for _ in range(2):
            r = sb.run("result = image", [img])
        assert r.ok
