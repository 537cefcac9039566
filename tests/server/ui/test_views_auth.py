"""The web UI with htpasswd auth, per-repository rules and --read-only, in headless Chromium.

alice may pull team/one only; bob may do everything (but the server is read-only). Nothing is
visible before signing in; alice sees one repository in every list and gets the not-found page
for anything of team/two, however she types it; no page offers anything that writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import bcrypt
import pytest

from ocikit.server.storage.fs import FilesystemDriver
from ocikit.server.storage.registry import RegistryStorage
from ocikit.server.storage.store import RepositoryStore
from ocikit.testing.images import write_image_async

from helpers.browser import Tab, open_tab
from helpers.servers import RunningServer, start_ocikit_serve

USERS = {"alice": "wonderland", "bob": "builder"}


async def _seed(root: str) -> dict[str, str]:
    storage = RegistryStorage(FilesystemDriver(root, fsync=False))
    out = {}
    for i, repo in enumerate(("team/one", "team/two")):
        d = await write_image_async(RepositoryStore(storage, repo), "latest", seed=7 + i)
        out[repo] = str(d.digest)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[RunningServer, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("ui-auth")
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n"
                                for u, p in USERS.items()))
    root = str(tmp / "root")
    with ThreadPoolExecutor(1) as pool:
        digests = pool.submit(asyncio.run, _seed(root)).result()
    config = (f"auth:\n  mode: htpasswd\n  htpasswd: {htpasswd}\n  rules:\n"
              "    - {repository: team/one, users: [alice], actions: [pull]}\n"
              "    - {repository: '*', users: [bob], actions: [pull, push, delete]}\n")
    with start_ocikit_serve(str(tmp), root=root, config=config, args=("--read-only",)) as srv:
        yield srv, digests


@pytest.fixture
def tab(browser, server, artifacts) -> Iterator[Tab]:
    t = open_tab(browser, server[0].url, artifacts)
    yield t
    t.page.context.close()


def _get(url: str, user: str, password: str) -> bytes:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}",
                                               "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(req) as r:
        return r.read()


def sign_in(tab: Tab, user: str, password: str, path: str = "/ui/") -> None:
    tab.go(path)
    tab.page.fill("input[name=user]", user)
    tab.page.fill("input[name=password]", password)
    tab.page.click("form.login button[type=submit]")


@pytest.mark.parametrize("path", ["/ui/", "/ui/r/team/one", "/ui/r/team/one/-/m/latest", "/ui/blobs",
                                  "/ui/referrers", "/ui/gc", "/ui/compare?a=team/one:latest&b=team/two:latest"])
def test_nothing_visible_before_sign_in(tab, server, path):
    _, digests = server
    tab.go(path)
    assert tab.page.url.startswith(tab.base + "/ui/login?next=")
    text = tab.text()
    assert "Sign in" in text
    assert "team/" not in text.replace(path, "") and digests["team/one"] not in text
    assert tab.errors == []


def test_wrong_password_shows_nothing(tab):
    sign_in(tab, "alice", "not-her-password")
    assert "Invalid user name or password." in tab.text()
    assert "team/one" not in tab.text()


def test_user_sees_only_what_she_may_pull(tab, server):
    _, digests = server
    sign_in(tab, "alice", "wonderland", "/ui/blobs")
    tab.page.wait_for_url(tab.base + "/ui/blobs")  # back where she was going
    assert "team/one" in tab.text() and "team/two" not in tab.text()
    tab.go("/ui/")
    names = tab.page.locator("#repos tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["team/one"]
    assert "signed in as alice" in tab.text()
    tab.shot("signed-in-alice")
    tab.go("/ui/r/team/one/-/m/latest")
    assert "linux/amd64" in tab.text()
    layer = json.loads(_get(tab.base + "/v2/team/two/manifests/latest", "bob", "builder"))["layers"][0]["digest"]
    for path in ("/ui/r/team/two", "/ui/r/team/two/-/m/latest", f"/ui/r/team/two/-/m/{digests['team/two']}",
                 "/ui/r/team/two/-/referrers", f"/ui/blobs/{layer}", "/ui/compare?a=team/one:latest&b=team/two:latest",
                 "/ui/gc"):
        resp = tab.go(path)
        assert resp.status == 404, path
        assert digests["team/two"] not in tab.text()
    tab.go("/ui/referrers")
    assert "team/two" not in tab.text()
    assert tab.dialogs == []


def test_read_only_offers_nothing_that_writes(tab):
    sign_in(tab, "bob", "builder")
    tab.page.wait_for_url(tab.base + "/ui/")
    assert tab.page.locator("header .badge").inner_text() == "read-only"
    for path in ("/ui/", "/ui/r/team/two", "/ui/r/team/two/-/m/latest", "/ui/blobs"):
        tab.go(path)
        # the only form that posts is sign-out; no push, delete or upload anywhere
        assert tab.page.locator("form[method=post]").evaluate_all("fs => fs.map(f => f.getAttribute('action'))") \
            == ["/ui/logout"]
        html = tab.page.content()
        assert "/blobs/uploads" not in html and "delete" not in html.lower()
    names = tab.page.locator("header")
    assert "bob" in names.inner_text()
    tab.page.click("header form button")  # sign out
    tab.page.wait_for_url(tab.base + "/ui/login")
    tab.go("/ui/")
    assert tab.page.url.startswith(tab.base + "/ui/login")
    assert tab.errors == []


def test_sign_in_needs_the_form_token(server):
    srv, _ = server
    data = b"user=bob&password=builder&csrf=forged&next=/ui/"
    req = urllib.request.Request(srv.url + "/ui/login", data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Cookie": "ocikit_ui_login=other"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 403
    assert "Set-Cookie" not in e.value.headers or "ocikit_ui=" not in e.value.headers.get("Set-Cookie", "")
    req = urllib.request.Request(srv.url + "/ui/", headers={"Cookie": "ocikit_ui=eyJ1IjoiYm9iIn0.forged"})
    with urllib.request.urlopen(req) as r:  # a forged session cookie: back to the sign-in form
        assert r.url.startswith(srv.url + "/ui/login")
