"""User tokens, without servers: a verification remembered never outlives the token, and a
socket is renewed only with its own user's."""
import time

import pytest

from rtserver import auth
from rtserver.errors import Forbidden, Unauthorized

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


def test_a_token_remembered_as_verified_is_refused_once_it_expires(monkeypatch):
    token = auth.issue_token(SECRET, 42, ttl=60)
    assert auth.verify(SECRET, token)[0] == 42
    assert auth.verify(SECRET, token)[0] == 42  # from what was remembered
    later = time.time() + 61
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(Unauthorized):
        auth.verify(SECRET, token)


def test_a_token_is_remembered_for_its_own_secret_only():
    token = auth.issue_token(SECRET, 42)
    assert auth.verify(SECRET, token)[0] == 42
    with pytest.raises(Unauthorized):
        auth.verify("another-secret-of-at-least-32-bytes!!", token)


def test_a_socket_is_renewed_only_with_a_valid_token_of_its_own_user():
    assert auth.renewal(SECRET, 42, auth.issue_token(SECRET, 42, ttl=60)) > time.time() + 59
    with pytest.raises(Forbidden):
        auth.renewal(SECRET, 42, auth.issue_token(SECRET, 43))
    with pytest.raises(Unauthorized):
        auth.renewal(SECRET, 42, auth.issue_token(SECRET, 42, ttl=-1))
