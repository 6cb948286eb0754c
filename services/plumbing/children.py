"""Child processes that do not outlive their parent: nats-server and the services.

On Linux the kernel sends a child SIGTERM when its parent dies, even by SIGKILL
(`prctl(PR_SET_PDEATHSIG)`, set in the child before it executes), so a killed launcher or test
run leaves no orphans holding ports, files and a JetStream store. Elsewhere this is a no-op.

The kernel fires that signal when the *thread* that forked the child ends, not the process, so
every child is forked by one thread that lives as long as the process, whichever thread asked
(the tests start services from `asyncio.to_thread`, the supervisor from the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_DEATH_SIGNAL = int(signal.SIGTERM)  # the services and nats-server shut down gracefully on it

_forker: tuple[int, ThreadPoolExecutor] | None = None
_forker_lock = threading.Lock()


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def _dies_with(parent: int) -> Callable[[], None] | None:
    """What the child runs between fork and exec: the prepared libc call only, no imports."""
    prctl = _PRCTL
    if prctl is None:
        return None

    def in_child() -> None:
        prctl(PR_SET_PDEATHSIG, _DEATH_SIGNAL)
        if os.getppid() != parent:  # the parent died before the prctl: no signal will come
            os._exit(1)

    return in_child


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[str]:
    """`subprocess.Popen(command, **popen)` for a child that ends when this process ends."""

    def fork() -> subprocess.Popen[str]:
        # preexec_fn is unsafe in a threaded process only if it takes a lock; this one makes one libc call.
        return subprocess.Popen(command, preexec_fn=_dies_with(os.getpid()), **popen)

    return _forking_thread().submit(fork).result()


def _forking_thread() -> ThreadPoolExecutor:
    global _forker
    with _forker_lock:
        if _forker is None or _forker[0] != os.getpid():  # a forked process has no copy of the thread
            _forker = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="child-forker"))
        return _forker[1]
