"""OCI runtime bundle ``config.json`` from an image config, as image-spec conversion.md says.

Verbatim fields: ``Entrypoint`` + ``Cmd`` -> ``process.args``, ``Env`` -> ``process.env``,
``WorkingDir`` -> ``process.cwd``. Parsed: ``User`` -> ``process.user`` resolved through the
rootfs's ``/etc/passwd`` and ``/etc/group`` (read without following symlinks out of the
rootfs). Annotations: ``os``, ``architecture``, ``variant``, ``os.version``, ``os.features``,
``author``, ``created``, ``StopSignal``, ``ExposedPorts`` (comma-separated), ``Volumes``
(``org.opencontainers.image.volumes``, comma-separated: we provide no mounts for them) and
``Labels``, which win over every implicit annotation. The rest is a conventional Linux
runtime configuration (namespaces, standard mounts, masked paths), like ``runc spec``'s;
``rootless`` adds a user namespace mapping root to the calling user.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigInvalid
from .safepath import SafeRoot, clean

RUNTIME_SPEC_VERSION = "1.0.2"

_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
         "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
         "CAP_KILL", "CAP_AUDIT_WRITE"]


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[PasswdEntry]:
    """``name:pw:uid:gid:gecos:home:shell`` lines; malformed lines are skipped (as libc does)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 4:
            continue
        try:
            out.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[5] if len(f) > 5 else ""))
        except ValueError:
            continue
    return out


def parse_group(text: str) -> list[GroupEntry]:
    """``name:pw:gid:member,member`` lines."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 3:
            continue
        try:
            gid = int(f[2])
        except ValueError:
            continue
        members = tuple(m for m in (f[3].split(",") if len(f) > 3 else []) if m)
        out.append(GroupEntry(f[0], gid, members))
    return out


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] | None
    home: str | None = None


def resolve_user(spec: str, passwd: list[PasswdEntry] | None, group: list[GroupEntry] | None) -> ResolvedUser:
    """Resolve ``Config.User`` (``user``, ``uid``, ``user:group``, ``uid:gid``, ...).

    Numeric values are copied verbatim; names are looked up in ``passwd``/``group`` (None:
    the file does not exist). additionalGids are the user's group memberships, set only when
    the user is given by name and no group is given. Raises ConfigInvalid for an unknown name.
    """
    user, sep, grp = spec.partition(":")
    if not user:
        raise ConfigInvalid(f"config.User {spec!r}: empty user")
    entry: PasswdEntry | None = None
    if user.isdigit():
        uid = int(user)
        entry = next((p for p in passwd or [] if p.uid == uid), None)
        gid = entry.gid if entry else 0
        by_name = False
    else:
        entry = next((p for p in passwd or [] if p.name == user), None)
        if entry is None:
            raise ConfigInvalid(f"config.User {spec!r}: no user {user!r} in the image's /etc/passwd")
        uid, gid = entry.uid, entry.gid
        by_name = True
    extra: tuple[int, ...] | None = None
    if sep:
        if not grp:
            raise ConfigInvalid(f"config.User {spec!r}: empty group")
        if grp.isdigit():
            gid = int(grp)
        else:
            g = next((g for g in group or [] if g.name == grp), None)
            if g is None:
                raise ConfigInvalid(f"config.User {spec!r}: no group {grp!r} in the image's /etc/group")
            gid = g.gid
    elif by_name:
        extra = tuple(sorted({g.gid for g in group or [] if user in g.members} - {gid}))
    return ResolvedUser(uid, gid, extra, entry.home if entry else None)


def read_rootfs_file(rootfs: str, path: str, limit: int = 4 << 20) -> str | None:
    """A small text file of the rootfs, resolved inside it (symlinks cannot lead out); None if absent."""
    rel = clean(path)
    parent, _, base = rel.rpartition("/")
    with SafeRoot(rootfs) as sr:
        res = sr.parent(parent, create=False)
        if res is None:
            return None
        dfd, _ = res
        # the file itself may be a symlink: follow it inside the root, one hop at a time
        for _ in range(40):
            try:
                fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
            except FileNotFoundError:
                return None
            except OSError:
                try:
                    target = os.readlink(base, dir_fd=dfd)
                except OSError:
                    return None
                here = res[1]
                rel = clean(target if target.startswith("/") else f"{here}/{target}")
                parent, _, base = rel.rpartition("/")
                res = sr.parent(parent, create=False)
                if res is None:
                    return None
                dfd = res[0]
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                data = os.read(fd, limit)
            finally:
                os.close(fd)
            return data.decode("utf-8", "replace")
    return None


def runtime_config(image_config: Mapping[str, Any], rootfs: str, *, rootless: bool = False,
                   rootfs_name: str = "rootfs", hostname: str = "ocikit") -> dict[str, Any]:
    """The runtime ``config.json`` document for an image config (the parsed config JSON)."""
    cfg: Mapping[str, Any] = image_config.get("config") or {}
    args = list(cfg.get("Entrypoint") or []) + list(cfg.get("Cmd") or [])
    env = list(cfg.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.append("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    cwd = cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        cwd = "/" + cwd
    user: dict[str, Any] = {"uid": 0, "gid": 0}
    spec = cfg.get("User") or ""
    passwd_text = read_rootfs_file(rootfs, "/etc/passwd")
    passwd = parse_passwd(passwd_text) if passwd_text is not None else None
    home = next((p.home for p in passwd or [] if p.uid == 0), None) or "/root"
    if spec:
        group_text = read_rootfs_file(rootfs, "/etc/group")
        ru = resolve_user(spec, passwd, parse_group(group_text) if group_text is not None else None)
        user = {"uid": ru.uid, "gid": ru.gid}
        if ru.additional_gids:
            user["additionalGids"] = list(ru.additional_gids)
        home = ru.home or "/"
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={home}")     # an addition conversion.md allows (umoci and runc do the same)
    if not args:
        args = ["sh"]   # runtime-spec requires at least one argument on Linux

    ann: dict[str, str] = {}
    for key, field_ in (("os", "os"), ("architecture", "architecture"), ("variant", "variant"),
                        ("os.version", "os.version"), ("author", "author"), ("created", "created")):
        v = image_config.get(field_)
        if v:
            ann[f"org.opencontainers.image.{key}"] = str(v)
    feats = image_config.get("os.features")
    if feats:
        ann["org.opencontainers.image.os.features"] = ",".join(feats)
    if cfg.get("StopSignal"):
        ann["org.opencontainers.image.stopSignal"] = str(cfg["StopSignal"])
    if cfg.get("ExposedPorts"):
        ann["org.opencontainers.image.exposedPorts"] = ",".join(sorted(cfg["ExposedPorts"]))
    if cfg.get("Volumes"):
        ann["org.opencontainers.image.volumes"] = ",".join(sorted(cfg["Volumes"]))
    for k, v in (cfg.get("Labels") or {}).items():
        ann[k] = str(v)      # Labels take precedence

    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
         + ([] if rootless else ["gid=5"])},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
    ]
    if rootless:
        mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                       "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
        namespaces.append({"type": "user"})
    else:
        mounts.append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                       "options": ["nosuid", "noexec", "nodev", "ro"]})
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    }
    if rootless:
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    doc: dict[str, Any] = {
        "ociVersion": RUNTIME_SPEC_VERSION,
        "process": {
            "terminal": False,
            "user": user,
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs_name, "readonly": False},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    }
    if ann:
        doc["annotations"] = ann
    return doc


__all__ = ["GroupEntry", "PasswdEntry", "ResolvedUser", "parse_group", "parse_passwd", "read_rootfs_file",
           "resolve_user", "runtime_config"]
