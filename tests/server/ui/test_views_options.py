"""The UI on and off: ``--no-ui``, the ``ui`` config key, ``/`` sending a browser to ``/ui/``, the banner."""

from __future__ import annotations

import glob
import os
import urllib.error
import urllib.request

import pytest

from ocikit.server.config import parse_config

from helpers.servers import start_ocikit_serve


def test_ui_option_in_the_config_file():
    assert parse_config({}).ui is True
    assert parse_config({"ui": {"enabled": False}}).ui is False


def test_no_ui_and_the_banner(tmp_path):
    with start_ocikit_serve(str(tmp_path), args=("--no-ui",)) as srv:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(srv.url + "/ui/")
        assert e.value.code == 404 and b"no such endpoint: /ui/" in e.value.read()
    with start_ocikit_serve(str(tmp_path), args=("--seed-sample",)) as srv:
        with urllib.request.urlopen(srv.url + "/") as r:  # the root sends a browser to the UI
            assert r.url == srv.url + "/ui/" and b"sample/multiarch" in r.read()
    logs = "".join(open(p).read() for p in glob.glob(os.path.join(str(tmp_path), "ocikit-serve-*.log")))
    assert f"web UI: http://{srv.host}/ui/" in logs
