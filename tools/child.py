"""A child process with its output in a log file of its own, to kill, stop and start again."""
import signal
import subprocess

STOP_TIMEOUT = 10.0  # seconds a child gets to exit on SIGTERM


class Child:
    """One child process, its output in a log file of its own."""

    def __init__(self, argv: list[str], log_path, env: dict[str, str] | None = None):
        self.argv, self.log_path, self.env = argv, log_path, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Child":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, as when a machine dies."""
        if self.running:
            self.proc.kill()
        if self.proc:
            self.proc.wait(STOP_TIMEOUT)

    def terminate(self) -> int:
        """SIGTERM and wait; return the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(STOP_TIMEOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def check_alive(self) -> None:
        if not self.running:
            raise AssertionError(f"{self.argv[:4]} exited with {self.proc.returncode}:\n"
                                 f"{self.log()}")
