"""``ocikit sign``: bad keys and passphrases, places that cannot be signed in (the rest of signing is
checked end to end with its peers in the ``_peers`` files)."""

from __future__ import annotations

import os

from helpers.cli import expect_failure, run_ocikit


def test_sign_with_wrong_passphrase_or_bad_key(tmp_path) -> None:
    from ocikit.testing import write_image
    from ocikit.transports.layout import OCILayout

    write_image(OCILayout(str(tmp_path / "lay"), create=True), "v1")
    pf = tmp_path / "pass"
    pf.write_text("right")
    run_ocikit("generate-key", str(tmp_path / "k"), "--passphrase-file", str(pf))
    pf.write_text("wrong")
    expect_failure("sign", "--key", str(tmp_path / "k.key"), "--passphrase-file", str(pf),
                   f"oci:{tmp_path / 'lay'}:v1", "--sign-identity", "example.com/a:v1", code=1,
                   match=r"oci:\S+lay:v1: signing key \S+k.key: wrong passphrase")
    expect_failure("sign", "--key", str(tmp_path / "k.pub"), "--passphrase-file", str(pf),
                   f"oci:{tmp_path / 'lay'}:v1", code=1,
                   match=r"oci:\S+lay:v1: signing key \S+k.pub: not a PEM block")


def test_sign_refuses_places_it_cannot_sign_in(tmp_path) -> None:
    pf = tmp_path / "pass"
    pf.write_text("pw")
    run_ocikit("generate-key", str(tmp_path / "k"), "--passphrase-file", str(pf))
    args = ("sign", "--key", str(tmp_path / "k.key"), "--passphrase-file", str(pf), "--sign-identity", "a.io/b:1")
    expect_failure(*args, f"oci:{tmp_path / 'absent'}:v1", code=1, match="no such OCI layout directory")
    assert not os.path.exists(tmp_path / "absent")  # not created by the attempt
    expect_failure(*args, f"oci-archive:{tmp_path / 'x.tar'}", code=2, match="not in an archive")
    expect_failure("sign", f"oci:{tmp_path}:v1", code=2, match="give --key")
