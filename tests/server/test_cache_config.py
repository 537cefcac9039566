"""The cache sections of the server YAML: every bad entry is a one-line UsageError naming it."""

from __future__ import annotations

import pytest

from ocikit.core.errors import UsageError
from ocikit.core.cron import CronSchedule
from ocikit.server.cache_config import ProxyEntry, parse_cache, parse_duration, parse_when, points_at_self


@pytest.mark.parametrize("doc, message", [
    ({"retention": [{"keep-last": 3}]}, r"retention\[0\].repository: required"),
    ({"retention": [{"repository": "a", "keep-tags": ["("]}]}, r"retention\[0\].keep-tags\[0\]"),
    ({"retention": [{"repository": "a", "untagged-for": "soon"}]}, r"untagged-for: 'soon' is not a duration"),
    ({"retention": [{"repository": "a", "allowEmpty": "yes"}]}, r"allowEmpty: expected true or false"),
    ({"retention": {"schedule": "1h", "rulez": []}}, r"retention: unknown keys \['rulez'\]"),
    ({"retention": {"schedule": "61 3 * * *", "rules": []}},
     r'^config: retention.schedule: cron "61 3 \* \* \*": minute 61 out of range 0-59$'),
    ({"retention": {"schedule": "0 0 31 2 *", "rules": []}}, r"day-of-month 31 never occurs in month 2"),
    ({"retention": {"schedule": "@often", "rules": []}}, r'retention.schedule: cron "@often": unknown macro'),
    ({"retention": {"schedule": "soon", "rules": []}}, r"retention.schedule: 'soon' is not a duration"),
    ({"proxy": [{"prefix": "hub", "upstream": "http://x"}]}, r"proxy\[0\].upstream: expected docker://"),
    ({"proxy": [{"upstream": "docker://x"}]}, r"proxy\[0\].prefix: required"),
    ({"proxy": [{"prefix": "a", "upstream": "docker://x"}, {"prefix": "a/b", "upstream": "docker://y"}]},
     r"prefix 'a' overlaps"),
    ({"notifications": [{"url": "ftp://x"}]}, r"notifications\[0\].url"),
    ({"notifications": [{"url": "http://x", "events": ["push", "boom"]}]}, r"notifications\[0\].events"),
])
def test_bad_sections_are_one_line_usage_errors(doc, message):
    with pytest.raises(UsageError, match=message):
        parse_cache(doc)


def test_minimal_proxy_entry():
    cfg = parse_cache({"proxy": [{"prefix": "hub", "upstream": "docker://127.0.0.1:5001", "tls-verify": False}]})
    (p,) = cfg.proxy
    assert (p.host, p.path_prefix, p.tls_verify, p.tag_ttl) == ("127.0.0.1:5001", "", False, 300.0)
    assert p.upstream_repository("hub/library/httpd") == "library/httpd"
    assert p.upstream_repository("hubble/x") is None
    q = ProxyEntry("q", "reg.example:443", "mirror/base")
    assert q.upstream_repository("q/library/httpd") == "mirror/base/library/httpd"


@pytest.mark.parametrize("host, listen, loop", [
    ("127.0.0.1:5000", ("127.0.0.1", 5000), True),
    ("localhost:5000", ("0.0.0.0", 5000), True),
    ("127.0.0.1:5001", ("127.0.0.1", 5000), False),
    ("registry.example:5000", ("127.0.0.1", 5000), False),
    ("registry.example", ("registry.example", 443), True),
])
def test_points_at_self(host, listen, loop):
    assert points_at_self(ProxyEntry("p", host), *listen) is loop


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("value, expected", [
    ("24h", 86400), (30, 30), ("90", 90), (" 2h ", 7200),
    ("0 3 * * *", "0 3 * * *"), ("@daily", "@daily"), (" @hourly", "@hourly"),
    ("*/5 * * * MON-FRI", "*/5 * * * MON-FRI"),
])
def test_a_schedule_is_a_duration_or_a_cron_expression(value, expected):
    when = parse_when(value, "x")
    if isinstance(expected, str):
        assert isinstance(when, CronSchedule) and when.text == expected
    else:
        assert when == expected


def test_retention_schedule_as_cron_or_interval():
    rules = [{"repository": "a", "keep-last": 1}]
    cron = parse_cache({"retention": {"schedule": "30 3 * * SUN", "rules": rules}})
    assert cron.retention_interval is None and cron.retention_cron is not None
    assert (cron.retention_cron.minutes, cron.retention_cron.hours, cron.retention_cron.weekdays) == \
        ((30,), (3,), frozenset({0}))
    interval = parse_cache({"retention": {"schedule": "24h", "rules": rules}})
    assert interval.retention_interval == 86400 and interval.retention_cron is None
    rules_only = parse_cache({"retention": rules})
    assert rules_only.retention_interval is None and rules_only.retention_cron is None
