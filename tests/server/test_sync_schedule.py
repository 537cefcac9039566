"""``sync:`` entries: ``interval`` (a duration) or ``schedule`` (a cron expression), exactly one."""

from __future__ import annotations

import urllib.request

import pytest

from ocikit.core.errors import CronInvalid, UsageError
from ocikit.server.sync_schedule import parse_sync

from helpers.cli import expect_failure
from helpers.servers import free_port, start_ocikit_serve

IMAGES = [{"source": "docker://registry.example/library/httpd", "include": ["^2\\."]}]


@pytest.mark.parametrize("when, message", [
    ({}, r'^config: sync\[0\]: needs exactly one of interval \(a duration, e\.g\. 1h\) and schedule '
         r'\(a cron expression in UTC, e\.g\. "0 3 \* \* \*"\)$'),
    ({"interval": "1h", "schedule": "0 3 * * *"}, r"^config: sync\[0\]: needs exactly one of interval"),
    ({"interval": "0.5s"}, r"^config: sync\[0\]\.interval: at least 1s$"),
    ({"interval": "often"}, r"^config: sync\[0\]\.interval: 'often' is not a duration"),
    ({"schedule": "0 3 * *"}, r'^config: sync\[0\]\.schedule: cron "0 3 \* \*": expected 5 fields'),
    ({"schedule": "0 25 * * *"}, r'^config: sync\[0\]\.schedule: cron "0 25 \* \* \*": hour 25 out of range 0-23$'),
    ({"schedule": "1h"}, r'^config: sync\[0\]\.schedule: cron "1h": expected 5 fields .*, got 1 '
                         r"\(a duration goes in interval:\)$"),
    ({"schedule": 5}, r"^config: sync\[0\]\.schedule: cron 5: expected a string of five fields "
                      r"\(a duration goes in interval:\)$"),
    ({"schedule": "0 0 30 2 *"}, r"never occurs in month 2; the expression would never run$"),
])
def test_bad_timing_is_a_one_line_usage_error(when, message):
    with pytest.raises(UsageError, match=message) as err:
        parse_sync([{"images": IMAGES, **when}])
    assert "\n" not in str(err.value)


def test_cron_errors_keep_their_type():
    with pytest.raises(CronInvalid, match=r'^config: sync\[0\]\.schedule: cron "@never": unknown macro \(expected '
                                          r"one of @yearly, .*\)$"):
        parse_sync([{"images": IMAGES, "schedule": "@never"}])


def test_interval_or_schedule():
    by_interval, by_cron = parse_sync([{"images": IMAGES, "interval": "1h", "name": "hourly"},
                                       {"images": IMAGES, "schedule": "@daily"}])
    assert (by_interval.name, by_interval.interval, by_interval.schedule) == ("hourly", 3600, None)
    assert by_cron.name == "1" and by_cron.interval is None
    assert by_cron.schedule is not None and (by_cron.schedule.minutes, by_cron.schedule.hours) == ((0,), (0,))


def test_serve_refuses_interval_and_schedule_together(tmp_path):
    cfg = tmp_path / "serve.yml"
    cfg.write_text("sync:\n  - interval: 1h\n    schedule: '0 3 * * *'\n    images:\n"
                   "      - source: docker://registry.example/library/httpd\n")
    expect_failure("serve", "--listen", f"127.0.0.1:{free_port()}", "--root", str(tmp_path / "root"),
                   "--config", str(cfg), code=2,
                   match=r"^ocikit: error: config: sync\[0\]: needs exactly one of interval")


def test_serve_refuses_a_cron_schedule_that_never_comes(tmp_path):
    cfg = tmp_path / "serve.yml"
    cfg.write_text("retention:\n  schedule: '0 0 31 4 *'\n  rules:\n    - repository: 'a/*'\n      keep-last: 1\n")
    expect_failure("serve", "--listen", f"127.0.0.1:{free_port()}", "--root", str(tmp_path / "root"),
                   "--config", str(cfg), code=2,
                   match=r'^ocikit: error: config: retention.schedule: cron "0 0 31 4 \*": day-of-month 31 never '
                         r"occurs in month 4")


def test_serve_starts_with_cron_schedules(tmp_path):
    """A server with cron-scheduled sync and retention starts and answers (nothing is due at start)."""
    cfg = ("retention:\n  schedule: '30 3 * * SUN'\n  rules:\n    - repository: 'a/*'\n      keep-last: 1\n"
           "sync:\n  - schedule: '@yearly'\n    tls-verify: false\n    images:\n"
           "      - source: docker://127.0.0.1:9/library/httpd\n")
    with start_ocikit_serve(str(tmp_path), config=cfg) as srv:
        with urllib.request.urlopen(f"{srv.url}/v2/", timeout=30) as r:
            assert r.status == 200
