"""Linking a blob from another layout on this machine: hardlink, else reflink, else copy.

A hardlink is the source's own inode: a verified-at-ingest record ocikit left on it vouches
for its bytes; any other source blob is hashed before it appears, so a corrupt blob does not
spread. The link is made under a temp name and renamed in (:mod:`ocikit.durable`'s rules).
"""

from __future__ import annotations

import fcntl
import os

from ... import durable
from ...content import LinkResult
from ...digest import CHUNK, Verifier, digest_file
from ...errors import BlobUnknown, DigestMismatch, SizeInvalid
from ...model import Descriptor
from .layoutdir import LayoutDir
from .verified import has_verified_record, record_verified



def _ficlone(src_fd: int, dst_fd: int) -> bool:
    FICLONE = 0x40049409
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
        return True
    except OSError:
        return False


def link_sync(target: LayoutDir, source: LayoutDir, desc: Descriptor) -> LinkResult:
    """Put ``source``'s blob ``desc`` into ``target`` without streaming it through Python; says how."""
    src = source.blob_path(desc.digest)
    try:
        st = os.stat(src)
    except FileNotFoundError:
        raise BlobUnknown(f"{source.location}: blob {desc.digest} is missing from blobs/") from None
    if st.st_size != desc.size:
        raise SizeInvalid(f"{source.location}: blob {desc.digest} is {st.st_size} bytes, "
                          f"the descriptor says {desc.size}", expected=desc.size, actual=st.st_size)
    final = target.blob_path(desc.digest)
    d = os.path.dirname(final)
    tmp = durable.temp_path(d, os.path.basename(final))
    with durable.removing_on_error(tmp, f"blob {desc.digest} to {target.location}"):
        os.makedirs(d, exist_ok=True)
        verified = False
        how = LinkResult.HARDLINKED
        try:
            os.link(src, tmp)
        except OSError:
            how = LinkResult.REFLINKED
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                if not _ficlone(fi.fileno(), fo.fileno()):
                    how = LinkResult.COPIED
                    v = Verifier(desc.digest, desc.size, what=f"{source.location}: blob")
                    while chunk := fi.read(CHUNK):
                        v.update(chunk)
                        fo.write(chunk)
                    v.verify()
                    verified = True
                fo.flush()
                if target.sync:
                    durable.sync_data(fo.fileno())
                if verified:
                    record_verified(fo.fileno(), desc.digest)
        else:
            # the link is the source's own inode: a record ocikit left on it when it wrote
            # and verified those bytes vouches for them
            verified = has_verified_record(tmp, os.stat(tmp), desc.digest)
        held = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)  # the writer's lock, for a concurrent gc
        durable.lock_temp(held)
        try:
            _check_and_publish(tmp, final, source, desc, verified)
        finally:
            os.close(held)
    return how


def _check_and_publish(tmp: str, final: str, source: LayoutDir, desc: Descriptor, verified: bool) -> None:
    """Check a linked blob's bytes unless a record vouches for them, then rename it in."""
    if not verified:
        # a link shares the source's bytes: check them, so a corrupt blob does not spread
        actual, size = digest_file(tmp, desc.digest.algorithm)
        if size != desc.size:
            raise SizeInvalid(f"{source.location}: blob {desc.digest} is {size} bytes, "
                              f"the descriptor says {desc.size}", expected=desc.size, actual=size)
        if actual != desc.digest:
            raise DigestMismatch(desc.digest, actual, what=f"{source.location}: blob")
    durable.publish(tmp, final, sync=False)   # the directory is flushed before index.json names it
