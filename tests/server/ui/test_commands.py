"""The pull commands the UI offers to copy."""

from __future__ import annotations

from ocikit.server.ui.commands import pull_commands, registry_host


def test_pull_commands():
    cmds = dict(pull_commands("127.0.0.1:5000", "sample/multiarch", "latest", index=True, tls=False))
    assert cmds["skopeo"] == ("skopeo copy --all --src-tls-verify=false "
                              "docker://127.0.0.1:5000/sample/multiarch:latest oci:multiarch:latest")
    assert cmds["ocikit"].startswith("ocikit copy --all --src-tls-verify=false docker://")
    assert cmds["podman"] == "podman pull --tls-verify=false 127.0.0.1:5000/sample/multiarch:latest"
    d = "sha256:" + "a" * 64
    cmds = dict(pull_commands("reg.example:443", "x", d, index=False, tls=True))
    assert cmds["skopeo"] == f"skopeo copy docker://reg.example:443/x@{d} oci:x"
    assert registry_host("evil\"host;rm -rf /", "127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_host("[::1]:5000", "x") == "[::1]:5000"
