"""The image config of a build (pure): ``--env``/``--cmd``/... parsed, changes applied, history.

Same inputs, same bytes: keys keep their place or are added in a fixed order, and history
entries carry no paths or host names.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import UsageError
from ..platforms import Platform


@dataclass(frozen=True)
class ConfigChanges:
    """Edits to an image config's ``config`` object and the manifest's annotations.

    ``None`` leaves a field alone; an empty list removes ``Entrypoint``/``Cmd``.
    ``env`` entries replace a variable of the same name or are appended.
    """

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    def describe(self) -> list[str]:
        """Dockerfile-like lines for history entries (deterministic)."""
        out: list[str] = []
        if self.entrypoint is not None:
            out.append(f"ENTRYPOINT {json.dumps(list(self.entrypoint))}")
        if self.cmd is not None:
            out.append(f"CMD {json.dumps(list(self.cmd))}")
        out += [f"ENV {k}={v}" for k, v in self.env]
        if self.workdir is not None:
            out.append(f"WORKDIR {self.workdir}")
        if self.user is not None:
            out.append(f"USER {self.user}")
        out += [f"LABEL {k}={v}" for k, v in self.labels]
        out += [f"EXPOSE {p}" for p in self.exposed_ports]
        return out

    @property
    def touches_config(self) -> bool:
        return bool(self.describe())


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_PORT = re.compile(r"^([0-9]{1,5})(?:/(tcp|udp|sctp))?$")


def parse_env(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> (KEY, VALUE). The value may be empty, the name may not."""
    key, eq, value = text.partition("=")
    if not eq or not _ENV_NAME.match(key):
        raise UsageError(f"bad --env {text!r}: expected NAME=VALUE with NAME of letters, digits and _")
    return key, value


def parse_key_value(text: str, what: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise UsageError(f"bad {what} {text!r}: expected KEY=VALUE")
    return key, value


def parse_port(text: str) -> str:
    """``80``, ``80/tcp``, ``53/udp`` -> the ``ExposedPorts`` key (``80/tcp``)."""
    m = _PORT.match(text.strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        raise UsageError(f"bad --expose {text!r}: expected PORT[/tcp|/udp|/sctp] with 1 <= PORT <= 65535")
    return f"{int(m.group(1))}/{m.group(2) or 'tcp'}"


def parse_command(text: str, what: str) -> tuple[str, ...]:
    """A JSON array of strings (``["/bin/app", "-v"]``) or a shell-like word list; ``""`` clears."""
    s = text.strip()
    if not s:
        return ()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except json.JSONDecodeError as e:
            raise UsageError(f"bad {what} {text!r}: not a JSON array: {e.msg}") from None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UsageError(f"bad {what} {text!r}: expected a JSON array of strings")
        return tuple(v)
    try:
        return tuple(shlex.split(s))
    except ValueError as e:
        raise UsageError(f"bad {what} {text!r}: {e}") from None


def rfc3339(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def apply_changes(config: Mapping[str, Any] | None, changes: ConfigChanges) -> dict[str, Any]:
    """A new ``config`` object (the image config's ``config`` field) with ``changes`` applied.

    Existing keys keep their place; new keys are added in a fixed order.
    """
    c: dict[str, Any] = dict(config or {})
    if changes.entrypoint is not None:
        if changes.entrypoint:
            c["Entrypoint"] = list(changes.entrypoint)
        else:
            c.pop("Entrypoint", None)
    if changes.cmd is not None:
        if changes.cmd:
            c["Cmd"] = list(changes.cmd)
        else:
            c.pop("Cmd", None)
    if changes.env:
        env = list(c.get("Env") or [])
        for key, value in changes.env:
            item = f"{key}={value}"
            for i, e in enumerate(env):
                if e.partition("=")[0] == key:
                    env[i] = item
                    break
            else:
                env.append(item)
        c["Env"] = env
    if changes.workdir is not None:
        c["WorkingDir"] = changes.workdir
    if changes.user is not None:
        c["User"] = changes.user
    if changes.labels:
        labels = dict(c.get("Labels") or {})
        labels.update(changes.labels)
        c["Labels"] = labels
    if changes.exposed_ports:
        ports = dict(c.get("ExposedPorts") or {})
        for p in changes.exposed_ports:
            ports.setdefault(p, {})
        c["ExposedPorts"] = ports
    return c


def new_config(base: Mapping[str, Any] | None, platform: Platform, *, diff_ids: Sequence[str],
               history: Sequence[Mapping[str, Any]], changes: ConfigChanges, created: str,
               replace_layers: bool = False) -> dict[str, Any]:
    """The image config of a built image: the base's (or a fresh one), new layers and history added.

    ``replace_layers``: ``diff_ids`` and ``history`` replace the base's instead of extending them.
    """
    if base is None:
        doc: dict[str, Any] = {"created": created, "architecture": platform.architecture, "os": platform.os}
        if platform.variant:
            doc["variant"] = platform.variant
        doc["config"] = {}
        doc["rootfs"] = {"type": "layers", "diff_ids": []}
        doc["history"] = []
    else:
        doc = json.loads(json.dumps(base))
        doc["created"] = created
    doc["config"] = apply_changes(doc.get("config"), changes)
    rootfs = dict(doc.get("rootfs") or {"type": "layers"})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = ([] if replace_layers else list(rootfs.get("diff_ids") or [])) + [str(d) for d in diff_ids]
    doc["rootfs"] = rootfs
    doc["history"] = ([] if replace_layers else list(doc.get("history") or [])) + [dict(h) for h in history]
    return doc


def history_entries(created: str, created_by: str, n_layers: int, changes: ConfigChanges,
                    sources: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One history entry per new layer, then one (empty_layer) for config changes."""
    out: list[dict[str, Any]] = []
    for i in range(n_layers):
        kind = sources[i] if i < len(sources) else "layer"
        out.append({"created": created, "created_by": created_by, "comment": f"layer {i + 1} of {n_layers}: {kind}"})
    if changes.touches_config:
        out.append({"created": created, "created_by": f"{created_by}: " + "; ".join(changes.describe()),
                    "empty_layer": True})
    return out


__all__ = [
    "ConfigChanges", "apply_changes", "history_entries", "new_config", "parse_command", "parse_env",
    "parse_key_value", "parse_port", "rfc3339",
]
