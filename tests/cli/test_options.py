"""Registry flag spellings: podman's (``--tls-verify``, ``--creds``) and skopeo's (``--src-``/``--dest-``)."""

from __future__ import annotations

import bcrypt
import pytest

from helpers.cli import expect_failure, run_ocikit
from helpers.rawhttp import USERS
from helpers.servers import start_ocikit_serve

# (command words, the side skopeo would name it by)
ONE_SIDED = [
    (("manifest", "push"), "dest"), (("artifact", "push"), "dest"), (("artifact", "pull"), "src"),
    (("list-tags",), "src"), (("inspect",), "src"), (("referrers",), "src"), (("manifest", "create"), "src"),
    (("manifest", "add"), "src"), (("manifest", "inspect"), "src"), (("tree",), "src"),
]


@pytest.mark.parametrize("words,side", ONE_SIDED)
def test_one_sided_commands_take_both_spellings(words, side):
    text = run_ocikit(*words, "--help", text=True).stdout
    for flag in ("tls-verify", "creds", "authfile", "cert-dir"):
        assert f"--{flag}, --{side}-{flag}" in text, (words, flag)
    other = "src" if side == "dest" else "dest"
    assert f"--{other}-tls-verify" not in text  # the other side would be ambiguous


@pytest.fixture(scope="module")
def auth_serve(tmp_path_factory):
    path = tmp_path_factory.mktemp("auth") / "htpasswd"
    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode()}\n"
                            for u, p in USERS.items()))
    with start_ocikit_serve(str(tmp_path_factory.mktemp("serve")), args=("--htpasswd", str(path))) as srv:
        yield srv


@pytest.mark.parametrize("creds_flag,tls_flag", [("--dest-creds", "--dest-tls-verify=false"),
                                                 ("--creds", "--tls-verify=false")])
def test_artifact_push_and_list_tags_take_each_spelling(tmp_path, auth_serve, creds_flag, tls_flag):
    f = tmp_path / "note.txt"
    f.write_text("hello")
    ref = f"docker://{auth_serve.host}/notes/{creds_flag.strip('-')}:v1"
    expect_failure("artifact", "push", ref, str(f), "--artifact-type", "application/x-note", tls_flag,
                   match="authentication required")
    run_ocikit("artifact", "push", ref, str(f), "--artifact-type", "application/x-note", tls_flag,
               creds_flag, "alice:" + USERS["alice"])
    src_creds = creds_flag.replace("dest", "src")
    out = run_ocikit("list-tags", ref.rsplit(":", 1)[0], tls_flag.replace("dest", "src"), src_creds,
                     "alice:" + USERS["alice"], text=True).stdout
    assert '"v1"' in out


def test_copy_still_takes_both_sides_and_the_shared_flag():
    text = run_ocikit("copy", "--help", text=True).stdout
    for flag in ("--src-tls-verify", "--dest-tls-verify", "--tls-verify", "--src-creds", "--dest-creds", "--creds"):
        assert flag in text
