"""Calls out to a provider: retries with backoff, the breaker, refusals, metrics — against a
real HTTP server on 127.0.0.1 (tests/standins), never a fake client."""
import time

import pytest

from rtserver.providers.calls import (BadAnswer, Breaker, Caller, ProviderDown, ProviderRefused,
                                      CALLS)
from tests.standins import StandIn, StandInHandler


class Echo(StandInHandler):
    """Answers 200 with what it was sent, or 400 {"refused"} when asked to refuse."""

    def post(self):
        self.record("echo", {"body": self.request.body.decode()})
        if self.request.body == b"refuse":
            self.set_status(400)
        self.finish(self.request.body if self.signed_by_provider() else b"forged")


def meaning(reply):
    """What the tests' provider means: a refusal on 400, BadAnswer for a forged answer."""
    if reply.body == b"forged":
        raise BadAnswer("signature does not verify")
    if reply.status == 400:
        raise ProviderRefused("the provider says no")
    return reply.body.decode()


@pytest.fixture
def echo(io_loop):
    standin = StandIn([("/echo", Echo)], hang=1.0)
    standin.start()
    yield standin
    standin.stop()


def outcome_count(call: str, outcome: str) -> float:
    return CALLS.labels("echo", call, outcome)._value.get()


@pytest.mark.gen_test
async def test_a_failing_call_is_made_again_until_it_answers(echo):
    echo.misbehave("5xx")
    echo.misbehave("drop")
    caller = Caller("echo", timeout=0.3)
    answer = await caller.call("retried", "POST", echo.url + "/echo", headers={}, body=b"hi",
                               check=meaning, tries=3)
    assert answer == "hi"
    assert len(echo.calls("echo")) == 1, "only the third try got past the faults"
    assert outcome_count("retried", "down") == 2 and outcome_count("retried", "ok") == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("fault", ["timeout", "5xx", "drop", "bad_signature"])
async def test_a_provider_that_never_answers_right_is_down(echo, fault):
    echo.misbehave(fault, times=3)
    caller = Caller("echo", timeout=0.3)
    with pytest.raises(ProviderDown) as raised:
        await caller.call("down_" + fault, "POST", echo.url + "/echo", headers={}, body=b"hi",
                          check=meaning, tries=3)
    assert raised.value.code == "unavailable"
    assert echo.faults == type(echo.faults)(), "every try was made"


@pytest.mark.gen_test
async def test_a_refusal_is_the_providers_answer_and_is_not_retried(echo):
    caller = Caller("echo", timeout=0.3)
    with pytest.raises(ProviderRefused) as raised:
        await caller.call("refused", "POST", echo.url + "/echo", headers={}, body=b"refuse",
                          check=meaning, tries=3)
    assert (raised.value.code, raised.value.message) == ("bad_request", "the provider says no")
    assert len(echo.calls("echo")) == 1
    assert caller.breaker.failed_in_row == 0, "a provider that answers is up"


@pytest.mark.gen_test
async def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_call_try_later(echo):
    caller = Caller("echo", timeout=0.3, breaker=Breaker(failures=3, open_for=0.5))
    echo.misbehave("5xx", times=3)
    with pytest.raises(ProviderDown):
        await caller.call("breaker", "POST", echo.url + "/echo", headers={}, body=b"hi",
                          check=meaning, tries=3)
    started = time.monotonic()
    with pytest.raises(ProviderDown):  # open: refused here, the provider is not called at all
        await caller.call("breaker", "POST", echo.url + "/echo", headers={}, body=b"hi",
                          check=meaning, tries=3)
    assert time.monotonic() - started < 0.1
    assert len(echo.calls("echo")) == 0 and outcome_count("breaker", "breaker_open") == 1
    time.sleep(0.5)
    answer = await caller.call("breaker", "POST", echo.url + "/echo", headers={}, body=b"back",
                               check=meaning, tries=1)
    assert answer == "back" and caller.breaker.opened_at is None


@pytest.mark.gen_test
async def test_one_providers_breaker_leaves_another_alone(echo):
    down = Caller("echo", timeout=0.3, breaker=Breaker(failures=1, open_for=60))
    up = Caller("echo", timeout=0.3)
    echo.misbehave("5xx")
    with pytest.raises(ProviderDown):
        await down.call("apart", "POST", echo.url + "/echo", headers={}, body=b"x",
                        check=meaning, tries=1)
    assert await up.call("apart", "POST", echo.url + "/echo", headers={}, body=b"y",
                         check=meaning, tries=1) == "y"
