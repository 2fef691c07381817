"""Log lines that a flood could repeat thousands of times a second, written once a second.

A peer that can make the node log a line per request can fill its disk: those lines are written
at most once a second each, with the count of the ones held back since. The metrics count all.
"""
import logging
import time


class OncePerSecond:
    def __init__(self, log: logging.Logger, level: int):
        self.log, self.level = log, level
        self.last = float("-inf")
        self.held_back = 0

    def say(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self.last < 1:
            self.held_back += 1
            return
        if self.held_back:
            message += f" ({self.held_back} more times since the last line)"
        self.log.log(self.level, message, *args)
        self.last, self.held_back = now, 0
