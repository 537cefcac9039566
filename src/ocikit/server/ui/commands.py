"""The pull commands a page offers to copy: ``skopeo copy``, ``ocikit copy``, ``podman pull``.

Pure functions. Every argument is shell-quoted (repository names, tags and digests follow
grammars with no shell metacharacters, but the host comes from the request).
"""

from __future__ import annotations

import re
import shlex

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def registry_host(request_host: str | None, listen: str) -> str:
    """The host clients reach us at: the request's ``Host`` when it is a plain host[:port], else ``listen``."""
    if request_host and _HOST.match(request_host):
        return request_host
    return listen


def pull_commands(host: str, repo: str, ref: str, *, index: bool, tls: bool) -> list[tuple[str, str]]:
    """(label, command) pairs for one reference (``ref`` is a tag or a digest)."""
    sep = "@" if ":" in ref else ":"
    source = f"{host}/{repo}{sep}{ref}"
    local = repo.rsplit("/", 1)[-1]
    dest = f"oci:{local}" + (f":{ref}" if sep == ":" else "")
    all_ = ["--all"] if index else []
    src_tls = [] if tls else ["--src-tls-verify=false"]
    q = shlex.join
    return [
        ("skopeo", q(["skopeo", "copy", *all_, *src_tls, f"docker://{source}", dest])),
        ("ocikit", q(["ocikit", "copy", *all_, *src_tls, f"docker://{source}", dest])),
        ("podman", q(["podman", "pull", *([] if tls else ["--tls-verify=false"]), source])),
    ]
