"""Watch the server under siege: its memory, descriptors and log, and limits they may not pass.

A server whose memory runs away would take the machine with it (the OOM killer picks the
largest process, and that may be anyone's), and a log that runs away fills the disk: past
`limit_kb` of RSS or `log_limit` bytes of log the watch says so, and the siege kills the
attack and the server.
"""
import os
import time

SAMPLE_EVERY = 0.25  # seconds


class Watch:
    """Peaks of the server's RSS (KB) and open descriptors over the periods watched."""

    def __init__(self, server, limit_kb: int, log_limit: int):
        self.server, self.limit_kb, self.log_limit = server, limit_kb, log_limit

    def sample(self) -> tuple[int, int]:
        """RSS in KB and open descriptors now; zeros once the process is gone."""
        try:
            return self.server.rss_kb(), len(os.listdir(f"/proc/{self.server.proc.pid}/fd"))
        except (FileNotFoundError, ProcessLookupError):
            return 0, 0

    def during(self, seconds: float, done=lambda: False) -> dict:
        """Sample for `seconds`, or until `done()`, the server dies or passes the limit."""
        peak_kb = peak_fds = 0
        end, why, log_start = time.monotonic() + seconds, None, self.server.log.stat().st_size
        while time.monotonic() < end and not done():
            rss_kb, fds = self.sample()
            peak_kb, peak_fds = max(peak_kb, rss_kb), max(peak_fds, fds)
            if self.server.proc.poll() is not None:
                why = f"the server exited ({self.server.proc.returncode})"
            elif rss_kb > self.limit_kb:
                why = f"the server passed {self.limit_kb // 1024} MB"
            elif self.server.log.stat().st_size - log_start > self.log_limit:
                why = f"the server's log grew past {self.log_limit >> 20} MB"
            if why:
                break
            time.sleep(SAMPLE_EVERY)
        return {"peak_rss_kb": peak_kb, "peak_fds": peak_fds, "stopped": why}
