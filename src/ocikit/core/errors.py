"""One error hierarchy for the whole of ocikit, client and server alike.

Every error carries a registry error ``code`` (the Distribution spec's table where one
applies), the HTTP ``status`` a server answers it with, and the CLI ``exit_code``.
"""

from __future__ import annotations

from typing import Any


class OcikitError(Exception):
    """Base of every error ocikit raises on purpose."""

    code: str = "UNKNOWN"
    status: int = 500
    exit_code: int = 1

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message

    def to_registry_error(self) -> dict[str, Any]:
        """The ``{"code", "message", "detail"}`` object of a registry error body."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class UsageError(OcikitError):
    """The caller asked for something that does not make sense."""

    code = "UNSUPPORTED"
    status = 400
    exit_code = 2


class CronInvalid(UsageError):
    """A cron expression that does not parse, or that no date can ever match; the message names the field."""


class ConversionError(UsageError):
    """A manifest cannot be converted to the format asked for (``copy --format``), or may not change."""


# --- input that cannot be parsed ---------------------------------------------------------


class InvalidReference(OcikitError):
    """A malformed image reference (``host/path:tag@digest``) or transport reference."""

    code = "NAME_INVALID"
    status = 400


class NameInvalid(InvalidReference):
    """A repository name that does not match the Distribution spec's pattern."""


class InvalidPlatform(OcikitError):
    code = "UNSUPPORTED"
    status = 400


class DigestInvalid(OcikitError):
    """A digest string that does not follow the ``algorithm:encoded`` grammar."""

    code = "DIGEST_INVALID"
    status = 400


class UnsupportedDigestAlgorithm(DigestInvalid):
    pass


class DigestMismatch(DigestInvalid):
    """Content whose digest (or size) is not the one it was announced with."""

    def __init__(self, expected: str, actual: str, *, what: str = "content", message: str | None = None) -> None:
        super().__init__(message or f"{what}: digest mismatch: expected {expected}, got {actual}",
                         detail={"expected": str(expected), "actual": str(actual)})
        self.expected = expected
        self.actual = actual


class SizeInvalid(OcikitError):
    code = "SIZE_INVALID"
    status = 400

    def __init__(self, message: str, *, expected: int | None = None, actual: int | None = None) -> None:
        super().__init__(message, detail={"expected": expected, "actual": actual})
        self.expected = expected
        self.actual = actual


class ManifestInvalid(OcikitError):
    """A manifest, index or config that is not well formed; the message names the field path."""

    code = "MANIFEST_INVALID"
    status = 400


class Schema1Unsupported(ManifestInvalid):
    """Docker schema 1 manifests are recognised and refused."""


class UnsupportedMediaType(ManifestInvalid):
    pass


class ConfigInvalid(ManifestInvalid):
    pass


class ManifestUnreadable(OcikitError):
    """A walk of an image graph met a manifest it could not read, verify or parse.

    Names where the walk ran (``where``: a layout, a repository), the manifest's ``digest``,
    and the ``parent`` that pointed at it (``None`` for a root) at ``path`` (``manifests[2]``).
    A sweep stops on it rather than treat what hangs under the manifest as garbage.
    """

    code = "MANIFEST_INVALID"

    def __init__(self, message: str, *, where: str, digest: str, parent: str | None, path: str,
                 cause: BaseException) -> None:
        super().__init__(message, detail={"digest": str(digest), "parent": str(parent) if parent else None,
                                          "path": path})
        self.where = where
        self.digest = digest
        self.parent = parent
        self.path = path
        self.cause = cause


# --- content that is not there -----------------------------------------------------------


class NotFound(OcikitError):
    status = 404


class ManifestUnknown(NotFound):
    code = "MANIFEST_UNKNOWN"


class BlobUnknown(NotFound):
    code = "BLOB_UNKNOWN"


class NameUnknown(NotFound):
    code = "NAME_UNKNOWN"


class ManifestBlobUnknown(OcikitError):
    code = "MANIFEST_BLOB_UNKNOWN"
    status = 400


class PlatformNotFound(NotFound):
    code = "MANIFEST_UNKNOWN"


class DuplicatePlatform(ManifestInvalid):
    """An index would list two different images for the same platform."""


class BlobUploadInvalid(OcikitError):
    code = "BLOB_UPLOAD_INVALID"
    status = 400


class BlobUploadUnknown(NotFound):
    code = "BLOB_UPLOAD_UNKNOWN"


class RangeInvalid(OcikitError):
    code = "BLOB_UPLOAD_INVALID"
    status = 416


# --- access ------------------------------------------------------------------------------


class Unauthorized(OcikitError):
    code = "UNAUTHORIZED"
    status = 401


class Denied(OcikitError):
    code = "DENIED"
    status = 403


class Unsupported(OcikitError):
    code = "UNSUPPORTED"
    status = 405


class TooManyRequests(OcikitError):
    code = "TOOMANYREQUESTS"
    status = 429


class ScopeInvalid(UsageError, ValueError):
    """A token scope that is not ``type:name:actions`` (a ``ValueError`` too, as it always was)."""


# --- places ------------------------------------------------------------------------------


class LayoutInvalid(OcikitError):
    """An OCI image layout on disk that breaks the image-layout spec."""

    code = "LAYOUT_INVALID"


class ArchiveInvalid(OcikitError):
    code = "ARCHIVE_INVALID"


class TransportError(OcikitError):
    """A place could not be reached, or answered something that makes no sense."""

    code = "TRANSPORT"
    status = 502


class RegistryError(TransportError):
    """A registry answered with an error the client did not map to a finer type."""


class LayerInvalid(OcikitError):
    """A layer tarball that cannot be applied (hostile paths, bad headers, ...)."""

    code = "LAYER_INVALID"


class LayerLimitExceeded(LayerInvalid):
    """A layer past one of the bounds of :class:`~ocikit.layers.limits.LayerLimits` (expansion,
    extended-header state); ``limit`` names the bound, ``value`` what was reached."""

    def __init__(self, message: str, *, limit: str, value: int) -> None:
        super().__init__(message, detail={"limit": limit, "value": value})
        self.limit = limit
        self.value = value


class DiskFull(OcikitError):
    """No room left: the disk, or the quota on it, is full (``ENOSPC``/``EDQUOT``).

    Raised the same way by every writer (:mod:`ocikit.durable`), which leaves no temp file and
    no half-written final name behind. The server answers it with **503 Service Unavailable**:
    the Distribution spec has no error code for a full disk (507 Insufficient Storage is
    WebDAV's, and clients do not expect it), and 503 says what is true — this registry cannot
    take the write now, the request was fine, and it may succeed once space is freed. On the
    wire the body's code is the spec's catch-all ``UNKNOWN`` with ``detail`` ``{"reason":
    "DISK_FULL"}``, which ocikit's client turns back into this error.
    """

    code = "DISK_FULL"
    status = 503

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message, detail=detail if detail is not None else {"reason": self.code})


StorageFull = DiskFull
"""The former name of :class:`DiskFull`."""


# --- trust: keys, signatures, policy --------------------------------------------------------


class TrustError(OcikitError):
    """Base of the signing and verification errors."""

    code = "TRUST"


class KeyInvalid(TrustError):
    """A key file that cannot be read: not PEM, not the expected format, an unsupported algorithm."""


class PassphraseInvalid(KeyInvalid):
    """The passphrase does not open the encrypted private key."""


class SignatureInvalid(TrustError):
    """A signature that does not verify, or whose payload names another digest or identity."""


class SignatureMissing(SignatureInvalid):
    """No signature that the keys or policy in force accept was found."""


class PolicyInvalid(TrustError):
    """A containers-policy.json or registries.d file that does not parse (an unknown requirement type, ...)."""


class PolicyRejected(TrustError):
    """The policy in force refuses the image."""


class SigningFailed(TrustError):
    """Making a signature failed (gpg refused, no such key, ...)."""


class StorageUnavailable(OcikitError):
    """The storage backend (an S3 bucket) cannot be reached or refuses us: answered 503 + Retry-After."""

    code = "UNAVAILABLE"
    status = 503
    retry_after = 5

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


ERROR_CODES: dict[str, type[OcikitError]] = {
    "BLOB_UNKNOWN": BlobUnknown,
    "BLOB_UPLOAD_INVALID": BlobUploadInvalid,
    "BLOB_UPLOAD_UNKNOWN": BlobUploadUnknown,
    "DIGEST_INVALID": DigestInvalid,
    "MANIFEST_BLOB_UNKNOWN": ManifestBlobUnknown,
    "MANIFEST_INVALID": ManifestInvalid,
    "MANIFEST_UNKNOWN": ManifestUnknown,
    "NAME_INVALID": NameInvalid,
    "NAME_UNKNOWN": NameUnknown,
    "SIZE_INVALID": SizeInvalid,
    "UNAUTHORIZED": Unauthorized,
    "DENIED": Denied,
    "UNSUPPORTED": Unsupported,
    "TOOMANYREQUESTS": TooManyRequests,
}
"""Registry error codes of the Distribution spec mapped to their exception types."""
