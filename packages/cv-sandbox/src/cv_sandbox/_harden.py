"""OS-level hardening of worker (zygote) and child processes: namespaces, rlimits, privileges, seccomp.

Every step is best effort and reported, because what works depends on the kernel and the container: the
caller can read the outcome from :attr:`cv_sandbox.Sandbox.hardening`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import resource
import signal
import struct
from typing import Any

_libc: Any = None

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000

NOBODY = 65534


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
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


def unshare_network() -> bool:
    """Give the worker an empty network namespace (no interfaces at all). Needs CAP_SYS_ADMIN."""
    try:
        return int(libc().unshare(CLONE_NEWNET | CLONE_NEWIPC)) == 0
    except (AttributeError, OSError):
        return False


# ----------------------------------------------------------------------------------------------- seccomp
# Syscalls denied to children (x86_64 numbers). The filter is a deny list: the interpreter keeps working,
# while everything that creates files, sockets, processes or reaches other processes fails with EPERM.
_DENY_X86_64 = {
    "open": 2,
    "creat": 85,
    "openat": 257,
    "openat2": 437,
    "open_by_handle_at": 304,
    "name_to_handle_at": 303,
    "socket": 41,
    "connect": 42,
    "accept": 43,
    "bind": 49,
    "listen": 50,
    "socketpair": 53,
    "accept4": 288,
    "clone": 56,
    "fork": 57,
    "vfork": 58,
    "execve": 59,
    "execveat": 322,
    "kill": 62,
    "tkill": 200,
    "ptrace": 101,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "kcmp": 312,
    "pidfd_open": 434,
    "pidfd_getfd": 438,
    "pidfd_send_signal": 424,
    "process_madvise": 440,
    "link": 86,
    "unlink": 87,
    "symlink": 88,
    "readlink": 89,
    "chmod": 90,
    "fchmod": 91,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "rename": 82,
    "mkdir": 83,
    "rmdir": 84,
    "truncate": 76,
    "mknod": 133,
    "mkdirat": 258,
    "mknodat": 259,
    "fchownat": 260,
    "futimesat": 261,
    "unlinkat": 263,
    "renameat": 264,
    "linkat": 265,
    "symlinkat": 266,
    "readlinkat": 267,
    "fchmodat": 268,
    "renameat2": 316,
    "fchmodat2": 452,
    "utime": 132,
    "utimes": 235,
    "utimensat": 280,
    "chdir": 80,
    "fchdir": 81,
    "chroot": 161,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "sethostname": 170,
    "setdomainname": 171,
    "init_module": 175,
    "delete_module": 176,
    "finit_module": 313,
    "quotactl": 179,
    "acct": 163,
    "kexec_load": 246,
    "kexec_file_load": 320,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "setns": 308,
    "memfd_create": 319,
    "bpf": 321,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
    "memfd_secret": 447,
    "setuid": 105,
    "setgid": 106,
    "setreuid": 113,
    "setregid": 114,
    "setresuid": 117,
    "setresgid": 119,
    "setgroups": 116,
    "personality": 135,
    "iopl": 172,
    "ioperm": 173,
    "syslog": 103,
}
_ENOSYS_X86_64 = {"clone3": 435}  # glibc falls back to clone (denied) on ENOSYS
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def seccomp_program() -> bytes | None:
    """The BPF deny-list filter for this architecture, or None where no syscall table is known."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    prog = [
        _bpf(ld_abs, 0, 0, 4),  # seccomp_data.arch
        _bpf(jeq, 1, 0, AUDIT_ARCH_X86_64),
        _bpf(ret, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _bpf(ld_abs, 0, 0, 0),  # seccomp_data.nr
        _bpf(jge, 0, 1, 0x40000000),  # x32 ABI numbers
        _bpf(ret, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM),
    ]
    for nr in sorted(_DENY_X86_64.values()):
        prog += [_bpf(jeq, 0, 1, nr), _bpf(ret, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)]
    for nr in sorted(_ENOSYS_X86_64.values()):
        prog += [_bpf(jeq, 0, 1, nr), _bpf(ret, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    prog.append(_bpf(ret, 0, 0, SECCOMP_RET_ALLOW))
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
) -> dict[str, bool]:
    """Lock down a freshly forked child before it runs user code. Returns what succeeded."""
    status: dict[str, bool] = {}
    status["pdeathsig"] = prctl(PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    prctl(PR_SET_DUMPABLE, 0)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    vm = _vm_bytes()
    keep = {0, 1, 2, keep_fd, *keep_fds} | ({root_fd} if root_fd is not None else set())
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
    status["no_new_privs"] = prctl(PR_SET_NO_NEW_PRIVS, 1) == 0
    status["seccomp"] = bool(seccomp) and status["no_new_privs"] and install_seccomp(seccomp)  # type: ignore[arg-type]
    return status


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(3, 256))
