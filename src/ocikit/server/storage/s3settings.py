"""Settings of the S3 storage driver, from the YAML ``storage:`` mapping or an ``s3://`` URL (pure).

``s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:8333&region=us-east-1&path_style=true&part_size=8MiB
&redirect=presigned&redirect_expiry=600`` — every query key is optional. Credentials are not part of
the URL: they come from the YAML (``access_key``/``secret_key``) or, as for every AWS tool, from
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and the
shared ``~/.aws/credentials`` and ``~/.aws/config`` files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...errors import UsageError

MIN_PART = 5 * 1024 * 1024
"""S3's smallest multipart part (except the last)."""
DEFAULT_PART = 8 * 1024 * 1024


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str = "us-east-1"
    path_style: bool = True
    access_key: str | None = None
    secret_key: str | None = None
    profile: str | None = None
    part_size: int = DEFAULT_PART
    redirect: str = "off"
    """``presigned``: blob GETs answer 307 to a presigned URL of the object; ``off``: stream."""
    redirect_expiry: int = 600
    ca_bundle: str | None = None
    """CA file for an HTTPS endpoint; default: ``AWS_CA_BUNDLE`` or the system store."""

    @property
    def key_prefix(self) -> str:
        """The prefix every key is written under, ``""`` or ending in ``/``."""
        p = self.prefix.strip("/")
        return f"{p}/" if p else ""

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}" + (f" at {self.endpoint}" if self.endpoint else "")


def parse_size(value: Any) -> int:
    """``16MiB``, ``8M``, ``5242880`` -> bytes."""
    text = str(value).strip().lower().removesuffix("b").removesuffix("i")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise UsageError(f"storage: part size {value!r}: expected bytes such as 16MiB") from None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def settings_from_mapping(doc: dict[str, Any]) -> S3Settings:
    """The YAML form: ``storage: {driver: s3, bucket: ..., prefix: ..., endpoint: ...}``."""
    known = {"driver", "delete", "fsync", "bucket", "prefix", "endpoint", "region", "path_style", "access_key", "secret_key",
             "profile", "part_size", "redirect", "redirect_expiry", "ca_bundle"}
    unknown = set(doc) - known
    if unknown:
        raise UsageError(f"config: storage: unknown keys {sorted(unknown)} for driver s3")
    if not doc.get("bucket"):
        raise UsageError("config: storage.bucket is required for driver s3")
    redirect = str(doc.get("redirect", "off"))
    if redirect not in ("presigned", "off"):
        raise UsageError(f"storage: redirect {redirect!r}: expected presigned or off")
    part = parse_size(doc.get("part_size", DEFAULT_PART))
    if part < MIN_PART:
        raise UsageError(f"storage: part_size {part}: S3 needs at least {MIN_PART} bytes (5 MiB)")
    return S3Settings(
        bucket=str(doc["bucket"]), prefix=str(doc.get("prefix", "") or ""), endpoint=doc.get("endpoint"),
        region=str(doc.get("region", "us-east-1")), path_style=_bool(doc.get("path_style", True)),
        access_key=doc.get("access_key"), secret_key=doc.get("secret_key"), profile=doc.get("profile"),
        part_size=part, redirect=redirect, redirect_expiry=int(doc.get("redirect_expiry", 600)),
        ca_bundle=doc.get("ca_bundle"))


def parse_s3_url(url: str) -> S3Settings:
    """``s3://BUCKET/PREFIX?endpoint=...&region=...`` (query keys as in the YAML mapping)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise UsageError(f"--storage {url!r}: expected s3://BUCKET[/PREFIX][?endpoint=URL&...]")
    doc: dict[str, Any] = {"bucket": parts.netloc, "prefix": parts.path.strip("/")}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        k = k.replace("-", "_")
        if k in ("driver", "bucket", "prefix", "access_key", "secret_key"):
            raise UsageError(f"--storage: {k} cannot be given in the URL")
        doc[k] = v
    return settings_from_mapping(doc)
