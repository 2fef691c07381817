"""`rtserver serve --processes N`: N forked children serve one port; this process supervises them.

Each child is a node of its own: it binds the port with SO_REUSEPORT (the kernel spreads new
connections over the children) and opens its own MariaDB and Redis pools after the fork, so no
pool's sockets are ever shared by two processes. The parent holds no pool, no event loop and no
socket. A child that dies is started again after RESTART_DELAY; more than MAX_RESTARTS within
RESTART_WINDOW means something is wrong that restarting will not mend (MariaDB refusing us, a
bad flag), and the parent stops the others and exits 1, for its own supervisor to see. SIGTERM or
SIGINT to the parent stops every child gracefully and exits 0 once all of them have.
"""
import collections
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable

import tornado.log
import tornado.netutil

log = logging.getLogger("rtserver.processes")

RESTART_DELAY = 1.0  # seconds before a dead child starts again: a crash loop does not spin
MAX_RESTARTS, RESTART_WINDOW = 5, 60.0  # restarts within this many seconds before giving up
STOP_TIMEOUT = 30.0  # seconds children get to stop gracefully (their own grace is 10 s), then SIGKILL
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
PR_SET_PDEATHSIG = 1  # prctl(2)
LOG_FORMAT = ("%(color)s[%(levelname)1.1s %(asctime)s %(process)d %(module)s:%(lineno)d]"
              "%(end_color)s %(message)s")  # Tornado's, with the pid: whose line is it


def check_port_free(port: int, address: str) -> None:
    """Fail now if anyone holds the port: the children's SO_REUSEPORT would otherwise share it
    silently with another `rtserver serve --processes` left running there."""
    if port == 0:
        raise SystemExit("rtserver: --processes needs a fixed --port (each child binds it)")
    for sock in tornado.netutil.bind_sockets(port, address):
        sock.close()


def supervise(count: int, serve: Callable[[int], None]) -> int:
    """Run `serve(index)` in `count` children until signalled; return the exit code."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(tornado.log.LogFormatter(fmt=LOG_FORMAT))
    # Taken in turn by sigtimedwait, and left blocked when it returns: the process exits next,
    # and a signal that arrives late must not change its exit status.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    return Supervisor(count, serve, mask).run()


class Supervisor:
    def __init__(self, count: int, serve: Callable[[int], None], mask):
        self.count, self.serve, self.mask = count, serve, mask
        self.children: dict[int, int] = {}  # pid → index
        self.due: list[tuple[float, int]] = []  # (when, index) of children to start again
        self.restarts: collections.deque = collections.deque()  # when, within RESTART_WINDOW

    def run(self) -> int:
        log.info("starting %d processes", self.count)
        for index in range(self.count):
            self._start(index)
        while True:
            wait = min([when for when, _ in self.due], default=time.monotonic() + 1)
            got = signal.sigtimedwait(SIGNALS, max(0.0, wait - time.monotonic()))
            if got and got.si_signo != signal.SIGCHLD:
                log.info("%s: stopping %d processes", signal.Signals(got.si_signo).name,
                         len(self.children))
                return self._stop()
            if not self._reap():
                log.error("more than %d restarts within %.0f s: giving up", MAX_RESTARTS,
                          RESTART_WINDOW)
                self._stop()
                return 1
            now = time.monotonic()
            for when, index in [d for d in self.due if d[0] <= now]:
                self.due.remove((when, index))
                self._start(index)

    def _start(self, index: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = index
            return
        code = 1
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
            _die_with(parent)
            self.serve(index)
            code = 0
        except BaseException:
            log.exception("process %d failed", index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)  # never back into the parent's loop

    def _reap(self) -> bool:
        """Collect the children that died and schedule each to start again; False once past
        the restart budget."""
        now = time.monotonic()
        for pid, status in _exited():
            index = self.children.pop(pid, None)
            if index is None:
                continue
            log.warning("process %d (pid %d) %s; starting it again", index, pid, _how(status))
            self.restarts.append(now)
            self.due.append((now + RESTART_DELAY, index))
        while self.restarts and self.restarts[0] < now - RESTART_WINDOW:
            self.restarts.popleft()
        return len(self.restarts) <= MAX_RESTARTS

    def _stop(self) -> int:
        """SIGTERM every child and wait for all; 0 if each stopped cleanly in time."""
        code = 0
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.children:
            left = deadline - time.monotonic()
            if left <= 0:
                log.error("%d processes still running after %.0f s: killed",
                          len(self.children), STOP_TIMEOUT)
                self._signal(signal.SIGKILL)
                code, deadline = 1, float("inf")
            signal.sigtimedwait(SIGNALS, min(max(left, 0.0), 1.0))  # a second signal: still stopping
            for pid, status in _exited():
                if self.children.pop(pid, None) is not None and status != 0:
                    log.warning("process (pid %d) %s while stopping", pid, _how(status))
                    code = 1
        log.info("all processes stopped")
        return code

    def _signal(self, sig: int) -> None:
        for pid in self.children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # exited already; reaped next


def _exited():
    """(pid, wait status) of every child that has exited since the last look."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _how(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


def _die_with(parent: int) -> None:
    """Have the kernel SIGTERM this child when the parent dies, even by SIGKILL (Linux): a
    child must not serve on, unsupervised, holding the port and its pools."""
    if sys.platform != "linux":
        return
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # died before the request was in force
        os.kill(os.getpid(), signal.SIGTERM)
