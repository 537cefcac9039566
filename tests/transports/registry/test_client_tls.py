"""TLS: docker-registry serving HTTPS with a self-signed CA; verified by default, --cert-dir, --tls-verify=false."""

from __future__ import annotations

import subprocess
from asyncio import run

import pytest

from ocikit.core.errors import TransportError
from ocikit.ops.copy import acopy
from ocikit.testing import write_image
from ocikit.transports import OpenOptions
from ocikit.transports.layout import OCILayout

from helpers.cli import expect_failure, run_ocikit
from helpers.peers import require, sh
from helpers.servers import docker_registry

pytestmark = pytest.mark.peer


@pytest.fixture(scope="module")
def tls_reg(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    require("openssl")
    ca_key, ca_crt = d / "ca.key", d / "ca.crt"
    key, csr, crt = d / "srv.key", d / "srv.csr", d / "srv.crt"
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
       "-days", "2", "-subj", "/CN=ocikit test CA")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
       "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    sh("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
       "-out", str(crt), "-days", "2", "-extfile", str(ext))
    certs = d / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(ca_crt.read_bytes())
    tls = f"  tls:\n    certificate: {crt}\n    key: {key}\n"
    with docker_registry(str(d), extra_config=tls) as srv:
        yield srv, str(certs)


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> OCILayout:
    lay = OCILayout(str(tmp_path_factory.mktemp("tlsimg") / "lay"), create=True)
    write_image(lay, "v1", seed=41)
    return lay


def test_untrusted_certificate_fails_clearly(tls_reg, image):
    srv, _ = tls_reg
    with pytest.raises(TransportError, match="TLS certificate not trusted"):
        run(acopy(f"oci:{image.path}:v1", f"docker://{srv.host}/tls/img:v1"))
    expect_failure("copy", f"oci:{image.path}:v1", f"docker://{srv.host}/tls/img:v1", match="--cert-dir")


def test_cert_dir_trusts_the_ca_and_skopeo_agrees(tls_reg, image):
    srv, certs = tls_reg
    res = run(acopy(f"oci:{image.path}:v1", f"docker://{srv.host}/tls/img:v1",
                    dst_options=OpenOptions(cert_dir=certs)))
    assert res.digest == image.resolve_sync("v1").digest
    p = subprocess.run(["skopeo", "inspect", "--raw", "--cert-dir", certs, f"docker://{srv.host}/tls/img:v1"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and p.stdout == image.get_manifest_sync("v1").raw


def test_tls_verify_false_accepts_any_certificate(tls_reg, image, tmp_path):
    srv, _ = tls_reg
    run(acopy(f"oci:{image.path}:v1", f"docker://{srv.host}/tls/nover:v1", dst_options=OpenOptions(tls_verify=False)))
    run_ocikit("copy", "--src-tls-verify=false", f"docker://{srv.host}/tls/nover:v1", f"oci:{tmp_path}/o:v1")
    assert OCILayout(str(tmp_path / "o")).resolve_sync("v1").digest == image.resolve_sync("v1").digest
