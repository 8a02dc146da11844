"""OS-level isolation of worker (zygote) and child processes: namespaces, Landlock, rlimits, privileges,
and a seccomp *allow-list*.

Two stages:

- :func:`isolate_worker` runs once when a worker process starts, before it imports anything: it enters new
  network, IPC, UTS and PID namespaces (as root directly; as an ordinary user inside a new *user*
  namespace, where the kernel allows unprivileged ones) and, for the PID namespace, forks so that the
  worker is process 1 of it. Children forked later see no other process of the machine.
- :func:`harden_child` locks down each freshly forked child before it can see any code: chroot into an
  empty deleted directory, rlimits, uid ``nobody`` (root) or no capabilities (user namespace),
  ``no_new_privs``, a Landlock domain with no file, network or signal rights outside itself, and a seccomp
  filter that allows only the syscalls the interpreter and the image libraries need once they are loaded
  (:func:`restrict_syscalls`; the sandbox installs it after the child's warm-up, before it reads a request).

Every step is best effort and reported; :func:`isolation_level` turns the report into a level, and
:func:`missing_for` says what is missing for a level and how to enable it
(``SandboxConfig.min_isolation`` refuses to start below the level a caller requires).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import resource
import signal
import struct
import sys
from typing import Any

_libc: Any = None

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NOBODY = 65534

#: Isolation levels, weakest first (``SandboxConfig.min_isolation``).
ISOLATION_LEVELS = ("none", "basic", "strict")
#: What each level needs (keys of the hardening report), beyond the levels below it.
LEVEL_NEEDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "basic": ("no_new_privs", "seccomp", "rlimit_as", "rlimit_fsize"),
    "strict": ("netns", "pidns", "filesystem", "privileges"),
}

#: Testing knob: a comma-separated list of steps to skip (``userns``, ``landlock``), to see what a machine
#: without them gets. Forwarded to workers by the caller; never read by children.
DISABLE_ENV = "CV_SANDBOX_DISABLE"


def libc() -> Any:
    global _libc
    if _libc is None:
        # The C library is loaded already (not ctypes.util.find_library: it imports shutil, subprocess,
        # bz2 and lzma, mappings every fork of the worker would copy).
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def prctl(option: int, arg2: int = 0, arg3: Any = 0, arg4: int = 0, arg5: int = 0) -> int:
    return int(
        libc().prctl(
            option,
            ctypes.c_ulong(arg2),
            arg3 if not isinstance(arg3, int) else ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        )
    )


def _disabled(step: str) -> bool:
    return step in os.environ.get(DISABLE_ENV, "").split(",")


# ----------------------------------------------------------------------------------------------- namespaces


def _unshare(flags: int) -> bool:
    try:
        return int(libc().unshare(ctypes.c_int(flags))) == 0
    except (AttributeError, OSError):
        return False


def _write(path: str, text: str) -> bool:
    try:
        with open(path, "w") as f:
            f.write(text)
        return True
    except OSError:
        return False


def isolate_worker() -> dict[str, bool]:
    """Enter new namespaces for this worker process; fork into the new PID namespace if one was made.

    Must run before the worker starts any thread. The process that called it returns only in the worker
    (process 1 of the new PID namespace, or the original process when no PID namespace could be made); the
    original process waits for the worker and exits with its status, holding no file descriptor.
    """
    status = {"userns": False, "netns": False, "pidns": False}
    others = CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if os.getuid() == 0:
        if _unshare(others | CLONE_NEWPID):
            status.update(netns=True, pidns=True)
        else:
            status["netns"] = _unshare(others)
    elif not _disabled("userns"):
        uid, gid = os.getuid(), os.getgid()
        for flags in (CLONE_NEWUSER | others | CLONE_NEWPID, CLONE_NEWUSER | others):
            if _unshare(flags):
                # Identity maps: the worker keeps its own uid inside, with capabilities that count only
                # for the namespaces it owns (children drop them).
                ok = (
                    _write("/proc/self/setgroups", "deny")
                    and _write("/proc/self/uid_map", f"{uid} {uid} 1")
                    and _write("/proc/self/gid_map", f"{gid} {gid} 1")
                )
                status.update(userns=ok, netns=True, pidns=bool(flags & CLONE_NEWPID))
                break
    if status["pidns"]:
        _become_pid1()
    return status


def _become_pid1() -> None:
    """Fork; the child (process 1 of the new PID namespace) returns, the parent waits and mirrors its exit."""
    pid = os.fork()
    if pid == 0:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the caller kills the parent: the worker must follow
        return
    # The parent holds nothing: the caller must see the worker's pipes close when the worker dies.
    os.closerange(0, 65536)
    while True:
        try:
            _, st = os.waitpid(pid, 0)
            break
        except InterruptedError:  # pragma: no cover
            continue
    os._exit(os.waitstatus_to_exitcode(st) & 0xFF if os.WIFEXITED(st) else 1)


# ----------------------------------------------------------------------------------------------- Landlock
_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on x86_64 and aarch64
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
#: Filesystem rights known per Landlock ABI version (all of them are "handled" and none granted).
_FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_CONNECT_TCP = 0x3  # ABI >= 4
_SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 0x3  # ABI >= 6


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when Landlock is absent or disabled)."""
    if _disabled("landlock"):
        return 0
    try:
        v = int(libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    except (AttributeError, OSError):
        return 0
    return max(v, 0)


def landlock_ruleset() -> int | None:
    """A ruleset that handles every right this kernel knows and grants none: a process restricted by it
    can open no file, bind or connect no TCP socket, and signal or reach (abstract sockets) no process
    outside its own domain. Returns its fd, or None where Landlock is unavailable."""
    abi = landlock_abi()
    if abi < 1:
        return None
    fs = _FS_RIGHTS_BY_ABI[max(k for k in _FS_RIGHTS_BY_ABI if k <= abi)]
    fields = [fs]
    if abi >= 4:
        fields.append(_NET_BIND_CONNECT_TCP)
    if abi >= 6:
        fields.append(_SCOPE_ABSTRACT_UNIX_AND_SIGNAL)
    attr = struct.pack(f"{len(fields)}Q", *fields)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = int(
        libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    )
    return fd if fd >= 0 else None


def _landlock_restrict(fd: int) -> bool:
    return int(libc().syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0))) == 0


# ----------------------------------------------------------------------------------------------- seccomp
# The allow-list: what a child does once the libraries are loaded and it has been hardened (measured with
# strace over the test suite's calls): move memory around, read and write its own pipes, wait, read
# clocks, exit. Everything else fails with EPERM (files, sockets, processes, signals to anyone, IPC, message
# queues, rlimits of others, ...). Numbers: tests/test_hardening.py checks them against the kernel headers.
ALLOWED_SYSCALLS = (
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "lseek",
    "fstat",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "brk",
    "madvise",
    "futex",
    "exit",
    "exit_group",
    "rt_sigreturn",
    "rt_sigprocmask",
    "rt_sigaction",
    "sigaltstack",
    "restart_syscall",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "getpid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getrandom",
    "sched_yield",
    "select",
    "pselect6",
    "poll",
    "ppoll",
    "sysinfo",
    "times",
)
#: Allowed only about the calling process itself (first argument 0).
#: (``sched_setscheduler``: a child that has answered its last call hands its exit to the background, see
#: :mod:`cv_sandbox._zygote`; without privileges it can only lower its own priority.)
SELF_ONLY_SYSCALLS = ("sched_getaffinity", "sched_setscheduler", "getrusage", "prlimit64")
#: Answered with ENOSYS, so libc falls back to an older call (which the filter then refuses).
ENOSYS_SYSCALLS = ("clone3",)

SYSCALLS_X86_64: dict[str, int] = {
    "read": 0,
    "write": 1,
    "close": 3,
    "fstat": 5,
    "poll": 7,
    "lseek": 8,
    "mmap": 9,
    "mprotect": 10,
    "munmap": 11,
    "brk": 12,
    "rt_sigaction": 13,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "readv": 19,
    "writev": 20,
    "select": 23,
    "sched_yield": 24,
    "mremap": 25,
    "madvise": 28,
    "nanosleep": 35,
    "getpid": 39,
    "exit": 60,
    "gettimeofday": 96,
    "getrusage": 98,
    "sysinfo": 99,
    "times": 100,
    "getuid": 102,
    "getgid": 104,
    "geteuid": 107,
    "getegid": 108,
    "sigaltstack": 131,
    "gettid": 186,
    "futex": 202,
    "sched_setscheduler": 144,
    "sched_getaffinity": 204,
    "restart_syscall": 219,
    "clock_gettime": 228,
    "clock_getres": 229,
    "clock_nanosleep": 230,
    "exit_group": 231,
    "pselect6": 270,
    "ppoll": 271,
    "prlimit64": 302,
    "getrandom": 318,
    "clone3": 435,
}
# aarch64 uses the kernel's generic table (asm-generic/unistd.h): no select/poll (libc uses pselect6/ppoll).
SYSCALLS_AARCH64: dict[str, int] = {
    "close": 57,
    "lseek": 62,
    "read": 63,
    "write": 64,
    "readv": 65,
    "writev": 66,
    "pselect6": 72,
    "ppoll": 73,
    "fstat": 80,
    "exit": 93,
    "exit_group": 94,
    "futex": 98,
    "nanosleep": 101,
    "clock_gettime": 113,
    "clock_getres": 114,
    "clock_nanosleep": 115,
    "sched_setscheduler": 119,
    "sched_getaffinity": 123,
    "sched_yield": 124,
    "restart_syscall": 128,
    "sigaltstack": 132,
    "rt_sigaction": 134,
    "rt_sigprocmask": 135,
    "rt_sigreturn": 139,
    "times": 153,
    "getrusage": 165,
    "gettimeofday": 169,
    "getpid": 172,
    "getuid": 174,
    "geteuid": 175,
    "getgid": 176,
    "getegid": 177,
    "gettid": 178,
    "sysinfo": 179,
    "brk": 214,
    "munmap": 215,
    "mremap": 216,
    "mmap": 222,
    "mprotect": 226,
    "madvise": 233,
    "prlimit64": 261,
    "getrandom": 278,
    "clone3": 435,
}
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
#: machine name -> (audit arch, syscall table)
ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (AUDIT_ARCH_X86_64, SYSCALLS_X86_64),
    "aarch64": (AUDIT_ARCH_AARCH64, SYSCALLS_AARCH64),
}
_MACHINE_ALIASES = {"AMD64": "x86_64", "amd64": "x86_64", "arm64": "aarch64"}
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000
_X32_SYSCALL_BIT = 0x40000000

_LD_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_NR_OFF, _ARCH_OFF, _ARG0_LO, _ARG0_HI = 0, 4, 16, 20


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The BPF allow-list filter for ``machine`` (default: this one), or None where no table is known.

    A foreign architecture or (on x86_64) the x32 ABI kills the process; allowed syscalls pass; the
    self-only ones pass when their first argument is 0; everything else returns EPERM.
    """
    m = machine or platform.machine()
    entry = ARCHES.get(_MACHINE_ALIASES.get(m, m))
    if entry is None:
        return None
    audit, table = entry
    allow = _bpf(_RET, 0, 0, SECCOMP_RET_ALLOW)
    deny = _bpf(_RET, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    prog = [
        _bpf(_LD_ABS, 0, 0, _ARCH_OFF),
        _bpf(_JEQ, 1, 0, audit),
        _bpf(_RET, 0, 0, SECCOMP_RET_KILL_PROCESS),
    ]
    prog.append(_bpf(_LD_ABS, 0, 0, _NR_OFF))
    if audit == AUDIT_ARCH_X86_64:
        prog += [_bpf(_JGE, 0, 1, _X32_SYSCALL_BIT), _bpf(_RET, 0, 0, SECCOMP_RET_KILL_PROCESS)]
    for name in ALLOWED_SYSCALLS:
        if name in table:
            prog += [_bpf(_JEQ, 0, 1, table[name]), allow]
    for name in ENOSYS_SYSCALLS:
        prog += [_bpf(_JEQ, 0, 1, table[name]), _bpf(_RET, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    for name in SELF_ONLY_SYSCALLS:
        # nr == X ? (arg0 == 0 ? allow : deny) : next; the accumulator is reloaded with nr afterwards.
        prog += [
            _bpf(_JEQ, 0, 6, table[name]),
            _bpf(_LD_ABS, 0, 0, _ARG0_LO),
            _bpf(_JEQ, 0, 3, 0),
            _bpf(_LD_ABS, 0, 0, _ARG0_HI),
            _bpf(_JEQ, 0, 1, 0),
            allow,
            deny,
        ]
    prog.append(deny)
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(program: bytes) -> bool:
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    rc = libc().prctl(
        PR_SET_SECCOMP,
        ctypes.c_ulong(SECCOMP_MODE_FILTER),
        ctypes.byref(fprog),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )
    return int(rc) == 0


# ----------------------------------------------------------------------------------------------- children


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> bool:
    """Clear every capability of this process (effective, permitted, inheritable)."""
    hdr = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    try:
        return int(libc().capset(ctypes.byref(hdr), data)) == 0
    except AttributeError:  # pragma: no cover
        return False


def _vm_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _set(limit: int, value: int) -> bool:
    try:
        resource.setrlimit(limit, (value, value))
        return True
    except (ValueError, OSError):
        return False


def harden_child(
    keep_fd: int,
    devnull: int,
    root_fd: int | None,
    *,
    memory_mb: int,
    cpu_s: int,
    seccomp: bytes | None,
    drop_uid: bool,
    keep_fds: tuple[int, ...] = (),
    landlock_fd: int | None = None,
) -> dict[str, bool]:
    """Lock down a freshly forked child before it runs user code. Returns what succeeded."""
    status: dict[str, bool] = {}
    status["pdeathsig"] = prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    prctl(PR_SET_DUMPABLE, 0)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    vm = _vm_bytes()
    keep = {0, 1, 2, keep_fd, *keep_fds} | {fd for fd in (root_fd, landlock_fd) if fd is not None}
    for fd in _open_fds():
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    status["chroot"] = False
    if root_fd is not None:
        try:
            os.fchdir(root_fd)
            os.chroot(".")
            os.chdir("/")
            status["chroot"] = True
        except OSError:
            pass
        os.close(root_fd)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past FSIZE fail with EFBIG instead of killing
    status["rlimit_as"] = _set(resource.RLIMIT_AS, vm + memory_mb * (1 << 20))
    status["rlimit_cpu"] = _set(resource.RLIMIT_CPU, cpu_s)
    status["rlimit_fsize"] = _set(resource.RLIMIT_FSIZE, 0)
    status["rlimit_nofile"] = _set(resource.RLIMIT_NOFILE, max(keep_fd, *keep_fds, 2) + 1)
    status["rlimit_core"] = _set(resource.RLIMIT_CORE, 0)
    status["rlimit_nproc"] = _set(resource.RLIMIT_NPROC, 0)
    status["drop_uid"] = False
    if drop_uid and os.getuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            status["drop_uid"] = True
        except OSError:
            pass
    status["no_capabilities"] = drop_capabilities()
    status["no_new_privs"] = prctl(PR_SET_NO_NEW_PRIVS, 1) == 0
    status["landlock"] = False
    if landlock_fd is not None:
        status["landlock"] = status["no_new_privs"] and _landlock_restrict(landlock_fd)
        os.close(landlock_fd)
    status["seccomp"] = restrict_syscalls(seccomp, status)
    return status


def restrict_syscalls(seccomp: bytes | None, status: dict[str, bool]) -> bool:
    """Install the seccomp allow-list (the last step of :func:`harden_child`, which a caller may defer: pass
    ``seccomp=None`` there and call this once the child's own preparation is done)."""
    return bool(seccomp) and bool(status.get("no_new_privs")) and install_seccomp(seccomp)  # type: ignore[arg-type]


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))


# ----------------------------------------------------------------------------------------------- levels


def summarize(worker: dict[str, bool], child: dict[str, bool]) -> dict[str, bool]:
    """The hardening report: every step, plus the derived ``filesystem`` and ``privileges`` guarantees."""
    out = {**worker, **child}
    out["filesystem"] = bool(child.get("chroot") or child.get("landlock"))
    out["privileges"] = bool(child.get("drop_uid") or (worker.get("userns") and child.get("no_capabilities")))
    return out


def isolation_level(report: dict[str, bool]) -> str:
    """The strongest level of :data:`ISOLATION_LEVELS` whose needs ``report`` meets."""
    level = "none"
    for name in ISOLATION_LEVELS[1:]:
        if all(report.get(k) for k in LEVEL_NEEDS[name]):
            level = name
        else:
            break
    return level


_NS_HOW = (
    "root, or unprivileged user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1` (Debian, Ubuntu) "
    "and `sysctl -w user.max_user_namespaces=15000`, on Ubuntu >= 23.10 also "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in Docker `--security-opt "
    "seccomp=unconfined` (the default profile blocks unshare) or `--cap-add SYS_ADMIN`"
)
#: What each missing step is, and how to get it.
_WHAT: dict[str, tuple[str, str]] = {
    "no_new_privs": ("no_new_privs", "a Linux kernel >= 3.5"),
    "seccomp": (
        "a seccomp filter",
        f"Linux with seccomp filters on {' or '.join(ARCHES)} (this machine: {platform.machine()}); in Docker "
        "a profile that allows prctl(PR_SET_SECCOMP)",
    ),
    "rlimit_as": ("an address-space limit", "setrlimit(RLIMIT_AS) to work"),
    "rlimit_fsize": ("a file-size limit", "setrlimit(RLIMIT_FSIZE) to work"),
    "netns": ("a network namespace", _NS_HOW),
    "pidns": ("a PID namespace", _NS_HOW),
    "filesystem": ("filesystem isolation (chroot or Landlock)", _NS_HOW + "; or Landlock (Linux >= 5.13)"),
    "privileges": ("dropped privileges (uid nobody or a user namespace)", _NS_HOW),
}


def missing_for(level: str, report: dict[str, bool]) -> list[str]:
    """What ``report`` lacks for ``level``, then how to enable it (one sentence per remedy)."""
    need = [k for name in ISOLATION_LEVELS[1 : ISOLATION_LEVELS.index(level) + 1] for k in LEVEL_NEEDS[name]]
    lacking = [k for k in need if not report.get(k)]
    if not lacking:
        return []
    remedies: list[str] = []
    for k in lacking:
        how = _WHAT.get(k, (k, ""))[1]
        if how and how not in remedies:
            remedies.append(how)
    what = ", ".join(_WHAT.get(k, (k, ""))[0] for k in lacking)
    return [what, "to enable: " + " | ".join(remedies)]


_ = sys  # (kept importable before anything else in the worker)
