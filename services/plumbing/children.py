"""Child processes that do not outlive their parent: nats-server and the services.

On Linux the kernel sends a child SIGTERM when its parent dies, even by SIGKILL
(`prctl(PR_SET_PDEATHSIG)`, set in the child before it executes), so a killed launcher or test
run leaves no orphans holding ports, files and a JetStream store. Elsewhere this is a no-op.

The child sets it itself, in a few lines of Python that then execute the command in its place
(the pid, the open files and the death signal carry over). Not with `preexec_fn`: with it
CPython forks without vfork and runs, in the child before it executes, gRPC's fork handlers
and every `os.register_at_fork(after_in_child=…)` hook (OpenTelemetry's start threads). Forked
from a threaded parent busy with gRPC (the tests, the launcher), the child crashed (SIGSEGV,
1 child in 4 to 7) or hung before it became nats-server or a service, which "did not start".

The kernel fires that signal when the *thread* that forked the child ends, not the process, so
every child is forked by one thread that lives as long as the process, whichever thread asked
(the tests start services from `asyncio.to_thread`, the supervisor from the main thread).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: The exit status of a service process refused because another process writes its SQLite file
#: (services/plumbing/host.py): started again it would be refused again, so it is not restarted.
EXIT_SOLE_WRITER_TAKEN = 2

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_DEATH_SIGNAL = int(signal.SIGTERM)  # the services and nats-server shut down gracefully on it

_forker: tuple[int, ThreadPoolExecutor] | None = None
_forker_lock = threading.Lock()


def _has_prctl() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return callable(ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        return False


_HAS_PRCTL = _has_prctl()


# Run by the interpreter in the child (`-I -S`: no site, no environment, nothing imported but
# these): the death signal, the check that the parent did not die before it was set (then no
# signal would come), the signals Python ignores put back as a fresh process has them, and the
# command executed with the environment the child was given (/proc/self/environ: before Python's
# start-up added to it, e.g. LC_CTYPE).
_EXEC_WITH_DEATH_SIGNAL = """
import ctypes, os, signal, sys
parent, option, death_signal, *command = sys.argv[1:]
ctypes.CDLL(None, use_errno=True).prctl(int(option), int(death_signal))
if os.getppid() != int(parent):
    os._exit(1)
for ignored in (signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(ignored, signal.SIG_DFL)
with open("/proc/self/environ", "rb") as environ:
    env = dict(item.split(b"=", 1) for item in environ.read().split(b"\\0") if b"=" in item)
os.execvpe(command[0], command, env)
"""


def _dying_with_parent(command: Sequence[str]) -> list[str]:
    """`command`, started so that it ends when this process ends (Linux; elsewhere as is)."""
    if not _HAS_PRCTL:
        return list(command)
    return [
        sys.executable,
        "-I",
        "-S",
        "-c",
        _EXEC_WITH_DEATH_SIGNAL,
        str(os.getpid()),
        str(PR_SET_PDEATHSIG),
        str(_DEATH_SIGNAL),
        *command,
    ]


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[str]:
    """`subprocess.Popen(command, **popen)` for a child that ends when this process ends."""
    path = (popen.get("env") or os.environ).get("PATH")
    if shutil.which(command[0], path=path) is None:  # said here, not by the child that would execute it
        raise FileNotFoundError(f"{command[0]}: no such executable")
    wrapped = _dying_with_parent(command)
    return _forking_thread().submit(lambda: subprocess.Popen(wrapped, **popen)).result()


def _forking_thread() -> ThreadPoolExecutor:
    global _forker
    with _forker_lock:
        if _forker is None or _forker[0] != os.getpid():  # a forked process has no copy of the thread
            _forker = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-forker"))
        return _forker[1]
