"""Where registry credentials come from, in skopeo's order.

1. ``--creds USER:PASS`` (``--src-creds``/``--dest-creds``);
2. containers ``auth.json``: ``--authfile``, ``$REGISTRY_AUTH_FILE``,
   ``$XDG_RUNTIME_DIR/containers/auth.json`` (``/run/containers/UID/auth.json``);
3. docker ``config.json``: ``$DOCKER_CONFIG/config.json``, ``~/.docker/config.json``.

In each file ``credHelpers[host]`` wins over ``auths[host]``, then ``credsStore`` is asked;
helpers are the ``docker-credential-NAME`` programs (``get``/``store``/``erase`` on stdin).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from typing import Any

from ...durable import atomic_write
from ...errors import UsageError
from .auth import Credentials

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


class CredentialsError(UsageError):
    """A credentials file or helper that cannot be used."""

    code = "UNAUTHORIZED"
    exit_code = 1


def parse_creds(text: str) -> Credentials:
    """``USER[:PASS]`` as skopeo's ``--creds`` takes it."""
    user, sep, password = text.partition(":")
    if not user:
        raise UsageError("--creds: expected USERNAME[:PASSWORD]")
    return Credentials(user, password)


def auth_json_paths(authfile: str | None = None) -> list[str]:
    """The containers auth.json files to read, most important first."""
    if authfile:
        return [authfile]
    out = []
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        out.append(env)
    out.append(default_auth_file())
    return out


def default_auth_file() -> str:
    """Where ``ocikit login`` writes: ``$REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``."""
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return env
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "containers", "auth.json")
    return os.path.join("/run/containers", str(os.getuid()), "auth.json")


def docker_config_paths() -> list[str]:
    d = os.environ.get("DOCKER_CONFIG")
    if d:
        return [os.path.join(d, "config.json")]
    return [os.path.join(os.path.expanduser("~"), ".docker", "config.json")]


def _host_keys(host: str) -> list[str]:
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return list(DOCKER_HUB_KEYS)
    return [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]


def _normalise_key(key: str) -> str:
    k = key
    for prefix in ("https://", "http://"):
        if k.startswith(prefix):
            k = k[len(prefix):]
    return k.split("/", 1)[0]


def read_config(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialsError(f"{path}: cannot read: {e.strerror}") from None
    if not raw.strip():
        return {}
    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise CredentialsError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise CredentialsError(f"{path}: not a JSON object")
    return doc


def decode_auth_entry(entry: Any, where: str) -> Credentials | None:
    """An ``auths`` entry: ``{"auth": base64(user:pass)}`` or ``{"identitytoken": ...}``."""
    if not isinstance(entry, dict):
        return None
    ident = entry.get("identitytoken")
    auth = entry.get("auth")
    user = entry.get("username") or ""
    password = entry.get("password") or ""
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{where}: 'auth' is not base64 of user:password") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise CredentialsError(f"{where}: 'auth' does not decode to user:password")
    if isinstance(ident, str) and ident:
        return Credentials(user, "", identity_token=ident)
    if user:
        return Credentials(user, password)
    return None


def lookup_in_config(doc: dict[str, Any], host: str, path: str) -> Credentials | None:
    keys = _host_keys(host)
    helpers = doc.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for k, name in helpers.items():
            if (k in keys or _normalise_key(k) == host) and isinstance(name, str):
                return helper_get(name, host)
    auths = doc.get("auths") or {}
    if isinstance(auths, dict):
        for k in keys:
            if k in auths:
                c = decode_auth_entry(auths[k], f"{path}: auths[{k!r}]")
                if c:
                    return c
        for k, v in auths.items():
            if _normalise_key(k) == host:
                c = decode_auth_entry(v, f"{path}: auths[{k!r}]")
                if c:
                    return c
    store = doc.get("credsStore")
    if isinstance(store, str) and store:
        return helper_get(store, host, missing_ok=True)
    return None


def helper_get(name: str, host: str, *, missing_ok: bool = False) -> Credentials | None:
    """Ask ``docker-credential-NAME get`` for the host's credentials."""
    exe = f"docker-credential-{name}"
    try:
        p = subprocess.run([exe, "get"], input=host.encode(), capture_output=True, timeout=30)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise CredentialsError(f"credential helper {exe} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {exe} did not answer in 30 s") from None
    if p.returncode != 0:
        msg = p.stdout.decode(errors="replace").strip() or p.stderr.decode(errors="replace").strip()
        if "credentials not found" in msg.lower():
            return None
        raise CredentialsError(f"credential helper {exe} failed: {msg.splitlines()[0] if msg else p.returncode}")
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise CredentialsError(f"credential helper {exe} answered something that is not JSON") from None
    user, secret = doc.get("Username") or "", doc.get("Secret") or ""
    if not secret:
        return None
    if user == "<token>":
        return Credentials("", "", identity_token=secret)
    return Credentials(user, secret)


def helper_store(name: str, host: str, creds: Credentials) -> None:
    exe = f"docker-credential-{name}"
    payload = json.dumps({"ServerURL": host, "Username": creds.username, "Secret": creds.password}).encode()
    try:
        p = subprocess.run([exe, "store"], input=payload, capture_output=True, timeout=30)
    except FileNotFoundError:
        raise CredentialsError(f"credential helper {exe} is not installed") from None
    if p.returncode != 0:
        raise CredentialsError(f"credential helper {exe} could not store: {p.stdout.decode(errors='replace').strip()}")


def helper_erase(name: str, host: str) -> None:
    exe = f"docker-credential-{name}"
    try:
        subprocess.run([exe, "erase"], input=host.encode(), capture_output=True, timeout=30)
    except FileNotFoundError:
        raise CredentialsError(f"credential helper {exe} is not installed") from None


def find_credentials(host: str, *, creds: str | tuple[str, str] | Credentials | None = None,
                     authfile: str | None = None) -> Credentials | None:
    """The credentials to use for ``host`` (None: anonymous)."""
    if isinstance(creds, Credentials):
        return creds
    if isinstance(creds, tuple):
        return Credentials(creds[0], creds[1])
    if isinstance(creds, str):
        return parse_creds(creds)
    for path in auth_json_paths(authfile) + docker_config_paths():
        doc = read_config(path)
        if doc:
            c = lookup_in_config(doc, host, path)
            if c:
                return c
    return None


def _write_json(path: str, doc: dict[str, Any]) -> None:
    """Replace the file at ``path`` (mode 0600: it holds secrets) atomically and durably."""
    atomic_write(path, (json.dumps(doc, indent="\t") + "\n").encode(), mode=0o600)


def store_credentials(host: str, creds: Credentials, authfile: str | None = None) -> str:
    """Save credentials for ``host`` (a helper if the file names one); returns where they went."""
    path = authfile or default_auth_file()
    doc = read_config(path) or {}
    helper = (doc.get("credHelpers") or {}).get(host) or doc.get("credsStore")
    if isinstance(helper, str) and helper:
        helper_store(helper, host, creds)
        return f"docker-credential-{helper}"
    auths = doc.setdefault("auths", {})
    auths[host] = {"auth": base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()}
    _write_json(path, doc)
    return path


def remove_credentials(host: str | None, authfile: str | None = None) -> bool:
    """Forget ``host``'s credentials (``None``: every host). True when something was removed."""
    path = authfile or default_auth_file()
    doc = read_config(path)
    if not doc:
        return False
    removed = False
    auths = doc.get("auths") or {}
    if host is None:
        removed = bool(auths)
        doc["auths"] = {}
    else:
        for k in list(auths):
            if k == host or _normalise_key(k) == host:
                del auths[k]
                removed = True
        helper = (doc.get("credHelpers") or {}).get(host) or doc.get("credsStore")
        if isinstance(helper, str) and helper and not removed:
            helper_erase(helper, host)
            removed = True
    _write_json(path, doc)
    return removed


__all__ = ["CredentialsError", "auth_json_paths", "decode_auth_entry", "default_auth_file", "docker_config_paths",
           "find_credentials", "helper_get", "lookup_in_config", "parse_creds", "remove_credentials",
           "store_credentials"]
