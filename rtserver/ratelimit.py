"""A token bucket: `rate` requests a second on average, bursts up to `burst`."""


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float):
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        if self.left(now) >= 1:
            self.tokens -= 1
            return True
        return False

    def left(self, now: float) -> float:
        """The tokens there are now (below zero while a `spend` is being made up)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.tokens

    def spend(self, tokens: float) -> None:
        """Spend what something cost once done, even past what is left."""
        self.tokens -= tokens

    def give_back(self) -> None:
        """Return a token taken for something that did not happen."""
        self.tokens = min(self.burst, self.tokens + 1)
