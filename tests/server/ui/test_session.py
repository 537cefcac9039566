"""UI sessions: signed cookies, CSRF tokens, where sign-in may send a browser."""

from __future__ import annotations

import base64

from ocikit.server.ui import session


def test_session_cookie_round_trip_and_tampering():
    key = session.session_key(b"secret")
    cookie, s = session.issue(key, "alice", now=1000)
    assert session.read(key, cookie, now=1001) == s
    assert session.read(session.session_key(b"other"), cookie, now=1001) is None
    body, sig = cookie.split(".")
    forged = base64.urlsafe_b64encode(b'{"u":"bob","e":99999999999,"c":"x"}').rstrip(b"=").decode()
    assert session.read(key, f"{forged}.{sig}", now=1001) is None
    assert session.read(key, cookie, now=1000 + session.SESSION_SECONDS + 1) is None
    for junk in (None, "", "a.b.c", "!!!.???", "e30.e30"):
        assert session.read(key, junk) is None


def test_sign_in_redirects_stay_inside_the_ui():
    assert session.safe_next("/ui/r/a/-/m/latest?x=1") == "/ui/r/a/-/m/latest?x=1"
    for bad in (None, "", "https://evil.example/", "//evil.example/ui/", "/v2/_catalog", "/ui/\\evil",
                "/ui/../x://y"):
        assert session.safe_next(bad) == "/ui/"
    assert session.origin_ok(None, "http", "h:1") and session.origin_ok("http://h:1", "http", "h:1")
    assert not session.origin_ok("http://evil", "http", "h:1")
    assert session.same_token("abc", "abc") and not session.same_token("", "") and not session.same_token("a", None)
