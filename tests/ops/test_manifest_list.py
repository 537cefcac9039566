"""Working manifest lists over OCI layouts: create/add/annotate/remove/inspect/push/rm, and index filter/append."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from ocikit.core import mediatypes as mt
from ocikit.core.errors import (DuplicatePlatform, LayoutInvalid, ManifestInvalid, ManifestUnknown, PlatformNotFound,
                           UsageError)
from ocikit.ops import index_edit as ie
from ocikit.ops import manifest_list as ml
from ocikit.core.platforms import Platform, parse_platform
from ocikit.testing import write_image
from ocikit.transports.layout import OCILayout
from helpers.cli import invoke, OCIKIT, run_ocikit

ARCHES = ("linux/amd64", "linux/arm64", "linux/ppc64le")


@pytest.fixture(autouse=True)
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


@pytest.fixture
def images(tmp_path) -> dict[str, str]:
    """Three single-arch images, each in its own layout tagged v1: {arch: 'oci:PATH:v1'}."""
    out = {}
    for i, p in enumerate(ARCHES):
        path = str(tmp_path / f"img-{p.split('/')[1]}")
        write_image(OCILayout(path, create=True), "v1", platform=p, seed=i + 1)
        out[p.split("/")[1]] = f"oci:{path}:v1"
    return out


def arun(coro):
    return asyncio.run(coro)


def test_assemble_push_and_validate(images, tmp_path, xdg) -> None:
    st = arun(ml.create_list("mylist"))
    assert st.index.manifests == ()
    for arch in ("amd64", "arm64", "ppc64le"):
        st = arun(ml.add_to_list("mylist", images[arch]))
    plats = [str(m.platform) for m in st.index.manifests]
    assert plats == ["linux/amd64", "linux/arm64/v8", "linux/ppc64le"]
    # the working layout holds the list (tagged) and nothing else at top level; it validates
    work = OCILayout(ml.working_layout_path())
    assert [e.ref_name for e in work.entries()] == ["mylist"]
    assert work.validate() == []
    assert str(xdg) in ml.working_layout_path()
    # push: every image, then the index, byte-exact
    res = arun(ml.push_list("mylist", f"oci:{tmp_path / 'out'}:multi"))
    assert res.digest == st.digest
    out = OCILayout(str(tmp_path / "out"))
    assert out.validate() == []
    assert out.resolve_sync("multi").digest == st.digest
    for arch in ("amd64", "arm64", "ppc64le"):
        src = OCILayout(images[arch][4:-3])
        assert out.has_blob_sync(src.resolve_sync("v1"))


def test_add_picks_host_or_requested_platform_from_an_index_and_all(multi_layout) -> None:
    arun(ml.create_list("l1"))
    st = arun(ml.add_to_list("l1", f"oci:{multi_layout.path}:multi", platform=ie.PlatformFields(architecture="ppc64le")))
    assert [str(m.platform) for m in st.index.manifests] == ["linux/ppc64le"]
    arun(ml.create_list("l2"))
    st = arun(ml.add_to_list("l2", f"oci:{multi_layout.path}:multi", all_platforms=True))
    assert len(st.index.manifests) == 3
    with pytest.raises(PlatformNotFound):
        arun(ml.add_to_list("l2", f"oci:{multi_layout.path}:multi", platform=ie.PlatformFields(architecture="s390x")))


def test_bad_input_gives_typed_errors_and_leaves_the_list_alone(images, tmp_path) -> None:
    arun(ml.create_list("bad"))
    st = arun(ml.add_to_list("bad", images["amd64"]))
    # a missing image: no such layout, no such tag
    with pytest.raises(LayoutInvalid, match="cannot add"):
        arun(ml.add_to_list("bad", f"oci:{tmp_path / 'nope'}:v1"))
    with pytest.raises(ManifestUnknown, match="no tag 'v2'"):
        arun(ml.add_to_list("bad", images["arm64"][:-2] + "v2"))
    # a duplicate platform: the arm64 image declared amd64
    with pytest.raises(DuplicatePlatform, match="linux/amd64"):
        arun(ml.add_to_list("bad", images["arm64"], platform=ie.PlatformFields(architecture="amd64")))
    arm = OCILayout(images["arm64"][4:-3]).resolve_sync("v1")
    assert not OCILayout(ml.working_layout_path()).has_blob_sync(arm)  # refused before anything was copied
    # an unknown digest to annotate / remove
    unknown = "sha256:" + "0" * 64
    with pytest.raises(ManifestUnknown, match="no entry"):
        arun(ml.annotate_list("bad", unknown, annotations={"a": "b"}))
    with pytest.raises(ManifestUnknown, match="no entry"):
        arun(ml.remove_from_list("bad", unknown))
    assert arun(ml.inspect_list("bad")).raw == st.index.raw
    # no such list; create twice
    with pytest.raises(ManifestUnknown, match="no manifest list 'other'"):
        arun(ml.add_to_list("other", images["amd64"]))
    with pytest.raises(UsageError, match="already exists"):
        arun(ml.create_list("bad"))
    arun(ml.create_list("empty"))
    with pytest.raises(UsageError, match="empty"):
        arun(ml.push_list("empty", f"oci:{tmp_path / 'x'}:y"))


def test_annotate_remove_and_docker_format(images, tmp_path) -> None:
    st = arun(ml.create_list("dl", media_type=mt.DOCKER_MANIFEST_LIST, images=[images["amd64"], images["arm64"]]))
    assert st.index.media_type == mt.DOCKER_MANIFEST_LIST
    d_arm = str(st.index.manifests[1].digest)
    st = arun(ml.annotate_list("dl", d_arm, annotations={"org.example": "x"},
                               platform=ie.PlatformFields(variant="v8", os_features=("f1",))))
    assert st.index.manifests[1].annotations == {"org.example": "x"}
    assert st.index.manifests[1].platform == Platform("linux", "arm64", "v8", None, ("f1",))
    st = arun(ml.annotate_list("dl", None, annotations={"org.opencontainers.image.version": "2"}))
    assert st.index.annotations == {"org.opencontainers.image.version": "2"}
    st = arun(ml.remove_from_list("dl", d_arm))
    assert len(st.index.manifests) == 1
    # push converting the Docker list to an OCI index; the images stay byte-exact
    res = arun(ml.push_list("dl", f"oci:{tmp_path / 'o2'}:x", media_type=mt.OCI_INDEX))
    out = OCILayout(str(tmp_path / "o2"))
    assert out.resolve_sync("x").media_type == mt.OCI_INDEX and out.validate() == []
    assert res.digest != st.digest
    # rm frees the name
    assert arun(ml.delete_list("dl")) == st.digest
    with pytest.raises(ManifestUnknown):
        arun(ml.inspect_list("dl"))


def test_list_at_a_transport_reference(images, tmp_path) -> None:
    ref = f"oci:{tmp_path / 'lay'}:idx"
    arun(ml.create_list(ref))
    st = arun(ml.add_to_list(ref, images["amd64"]))
    st = arun(ml.add_to_list(ref, images["ppc64le"]))
    lay = OCILayout(str(tmp_path / "lay"))
    assert [e.ref_name for e in lay.entries()] == ["idx"]  # the images are not extra index.json entries
    assert lay.validate() == [] and lay.resolve_sync("idx").digest == st.digest


def test_push_index_only_needs_the_images_there(images, tmp_path) -> None:
    arun(ml.create_list("io", images=[images["amd64"]]))
    with pytest.raises(ManifestUnknown, match="--all"):
        arun(ml.push_list("io", f"oci:{tmp_path / 'o3'}:x", all_images=False))
    arun(ml.push_list("io", f"oci:{tmp_path / 'o3'}:x"))
    res = arun(ml.push_list("io", f"oci:{tmp_path / 'o3'}:y", all_images=False))
    assert OCILayout(str(tmp_path / "o3")).resolve_sync("y").digest == res.digest


def test_index_filter_and_append(multi_layout, images, tmp_path) -> None:
    src = f"oci:{multi_layout.path}:multi"
    edit = arun(ie.filter_index_ref(src, [parse_platform("linux/amd64"), parse_platform("linux/ppc64le")],
                                    f"oci:{tmp_path / 'f'}:two"))
    assert [str(m.platform) for m in edit.manifests] == ["linux/amd64", "linux/ppc64le"]
    assert OCILayout(str(tmp_path / "f")).validate() == []
    with pytest.raises(PlatformNotFound):
        arun(ie.filter_index_ref(src, [parse_platform("linux/s390x")], f"oci:{tmp_path / 'f'}:none"))
    with pytest.raises(ManifestInvalid, match="is an image manifest .*, not an index"):
        arun(ie.filter_index_ref(f"oci:{multi_layout.path}:single", [parse_platform("linux/amd64")]))
    # append the s390x-less filtered index + a new arch image; in place (target = base)
    s390 = str(tmp_path / "s390")
    write_image(OCILayout(s390, create=True), "v1", platform="linux/s390x", seed=9)
    edit2 = arun(ie.append_index_ref(f"oci:{tmp_path / 'f'}:two", [f"oci:{s390}:v1"]))
    assert [str(m.platform) for m in edit2.manifests] == ["linux/amd64", "linux/ppc64le", "linux/s390x"]
    lay = OCILayout(str(tmp_path / "f"))
    assert lay.resolve_sync("two").digest == edit2.digest and lay.validate() == []
    other = str(tmp_path / "other-amd64")
    write_image(OCILayout(other, create=True), "v1", platform="linux/amd64", seed=42)
    with pytest.raises(DuplicatePlatform):
        arun(ie.append_index_ref(f"oci:{tmp_path / 'f'}:two", [f"oci:{other}:v1"]))
    assert lay.resolve_sync("two").digest == edit2.digest
    # no base: a new index from images, flattening an index
    edit3 = arun(ie.append_index_ref(None, [src],
                                     f"oci:{tmp_path / 'n'}:all", media_type=mt.DOCKER_MANIFEST_LIST))
    assert edit3.media_type == mt.DOCKER_MANIFEST_LIST and len(edit3.manifests) == 3
    edit4 = arun(ie.append_index_ref(None, [src], f"oci:{tmp_path / 'n'}:nested", flatten=False))
    assert [m.media_type for m in edit4.manifests] == [mt.OCI_INDEX]


def test_cli_round_trip(images, tmp_path, ocikit) -> None:
    """The first and the error calls run the installed entry point; the rest run in-process (faster)."""
    p = ocikit("manifest", "create", "cli-list", images["amd64"], images["arm64"])
    ocikit = invoke  # noqa: F811 - the same commands, without a new interpreter each
    digest = p.stdout.decode().split()[-1]
    p = ocikit("manifest", "inspect", "--raw", "cli-list")
    raw = p.stdout
    assert json.loads(raw)["manifests"][1]["platform"]["architecture"] == "arm64"
    p = ocikit("--format", "json", "manifest", "add", "cli-list", images["ppc64le"], "--annotation", "k=v")
    assert json.loads(p.stdout)["added"][0]["annotations"] == {"k": "v"}
    dup = run_ocikit("manifest", "add", "cli-list", images["ppc64le"][:-3] + ":v1", "--arch", "amd64", check=False)
    assert dup.returncode != 0 and dup.stderr.decode().startswith("ocikit: error: platform linux/amd64")
    assert ocikit("manifest", "exists", "cli-list").returncode == 0
    assert ocikit("manifest", "exists", "no-such-list", check=False).returncode == 1
    bad = ocikit("manifest", "annotate", "cli-list", "sha256:" + "1" * 64, "--annotation", "a=b", check=False)
    assert bad.returncode != 0 and "no entry" in bad.stderr.decode() and bad.stderr.decode().count("\n") == 1
    missing = ocikit("manifest", "add", "cli-list", f"oci:{tmp_path / 'missing'}:v1", check=False)
    assert missing.returncode != 0 and "cannot add" in missing.stderr.decode()
    ocikit("manifest", "push", "cli-list", f"oci:{tmp_path / 'pushed'}:multi", "--digestfile", str(tmp_path / "d"))
    assert open(tmp_path / "d").read() != digest  # three images now
    assert OCILayout(str(tmp_path / "pushed")).validate() == []
    p = ocikit("index", "filter", f"oci:{tmp_path / 'pushed'}:multi", "--platform", "linux/arm64",
               "-t", f"oci:{tmp_path / 'pushed'}:arm")
    assert p.stdout.decode().strip().startswith("sha256:")


def test_umoci_and_skopeo_read_the_pushed_index(images, tmp_path, peer) -> None:
    skopeo = peer("skopeo")
    arun(ml.create_list("peer", images=list(images.values())))
    arun(ml.push_list("peer", f"oci:{tmp_path / 'pl'}:multi"))
    for arch in ("arm64", "ppc64le"):
        subprocess.run([skopeo, "copy", "--override-arch", arch, f"oci:{tmp_path / 'pl'}:multi",
                        f"oci:{tmp_path / ('got-' + arch)}:x"], check=True, capture_output=True)
        got = OCILayout(str(tmp_path / ("got-" + arch))).resolve_sync("x")
        want = OCILayout(images[arch][4:-3]).resolve_sync("v1")
        assert got.digest == want.digest
    assert os.path.exists(tmp_path / "pl" / "index.json")


def test_parallel_adds_lose_nothing(images) -> None:
    """Three `manifest add` processes at once on one working list: the list lock keeps every entry."""
    arun(ml.create_list("par"))
    procs = [subprocess.Popen([*OCIKIT, "manifest", "add", "par", images[a]],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a in ("amd64", "arm64", "ppc64le")]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    st = arun(ml.inspect_list("par"))
    assert sorted(m.platform.architecture for m in st.manifests) == ["amd64", "arm64", "ppc64le"]
    assert OCILayout(ml.working_layout_path()).validate() == []
