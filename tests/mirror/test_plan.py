"""Pure parts of mirror: blob dedupe and the plan summary, the journal, the cluster outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ocikit.core.digest import Digest
from ocikit.core.errors import UsageError
from ocikit.mirror.journal import Journal
from ocikit.mirror.outputs import (image_content_source_policy, image_digest_mirror_set, image_tag_mirror_set,
                                   mapping_txt, registries_conf, repository_pairs, write_outputs)
from ocikit.mirror.plan import ImageJob, MirrorPlan, PlannedImage, merge_blobs, summarize
from ocikit.model import Descriptor, build_manifest
from ocikit.ops.copy import CopyPlan, Node


def _d(n: int) -> Digest:
    return Digest.of(str(n).encode())


def _planned(path: str, blobs: list[int]) -> PlannedImage:
    descs = {_d(b): Descriptor("application/octet-stream", _d(b), 100 + b) for b in blobs}
    m = build_manifest(Descriptor("application/vnd.oci.image.config.v1+json", _d(-1), 2), list(descs.values()))
    node = Node(m.descriptor(), m.raw, m)
    job = ImageJob(f"docker://src/{path}:1", f"docker://src/{path}", f"src/{path}", "1", path, "1")
    return PlannedImage(job, CopyPlan(node, node.desc.digest, [node], descs, []))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.lists(st.integers(0, 12), max_size=6, unique=True)),
                min_size=1, max_size=8),
       st.sets(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 12))))
def test_dedupe_and_summary_invariants(images, present_pairs):
    planned = [_planned(path, blobs) for path, blobs in images]
    blobs = merge_blobs(planned, lambda p: p)
    union = {b for _, bs in images for b in bs}
    assert set(blobs) == {_d(b) for b in union}
    for b in union:  # every destination that needs a blob is listed once
        want = []
        for path, bs in images:
            if b in bs and path not in want:
                want.append(path)
        assert blobs[_d(b)].destinations == want
    present = {(k, _d(b)) for k, b in present_pairs}
    s = summarize(MirrorPlan(planned, blobs, present))
    assert s["uniqueBlobs"] == len(union)
    assert s["blobReferences"] == sum(len(bs) for _, bs in images)
    assert s["blobsToMove"] + s["blobsAlreadyThere"] + sum(
        1 for d, n in blobs.items() if 0 < sum((k, d) in present for k in n.destinations) < len(n.destinations)
    ) == len(union)
    # a blob moves at most once; every other missing placement is a mount
    placements = sum(len(n.destinations) for n in blobs.values())
    have = sum(1 for d, n in blobs.items() for k in n.destinations if (k, d) in present)
    assert s["blobsToMove"] + s["blobsToMount"] == placements - have
    assert s["bytesToMove"] + s["bytesAlreadyThere"] <= s["totalBytes"]


KILLED_RUN = """
import os, sys
from ocikit.core.digest import Digest
from ocikit.mirror.journal import Journal
d = lambda n: Digest.of(str(n).encode())
j = Journal.open(sys.argv[1], "job1")
j.blob_done("k", d(1), 5)
j.pin("docker://a/b", "latest", d(2))
j.image_done("k:latest@x", d(3))
os._exit(0)
"""


def test_journal_round_trip_torn_line_and_other_job(tmp_path):
    p = str(tmp_path / "j")
    # a run killed after three records (no finish record, no clean close): a child process that exits at once
    subprocess.run([sys.executable, "-c", KILLED_RUN, p], check=True)
    with open(p, "a") as f:
        f.write('{"t":"blob","key":"k","dig')  # killed mid-write
    j2 = Journal.open(p, "job1")
    assert j2.prior_blobs == {("k", _d(1))} and j2.pins == {("docker://a/b", "latest"): _d(2)}
    assert j2.images == {"k:latest@x": _d(3)} and j2.runs == 2
    j2.finish(ok=False)
    with pytest.raises(UsageError, match="journal of another mirror job"):
        Journal.open(p, "job2")
    j3 = Journal.open(p, "job1")
    j3.finish(ok=True)
    assert not (tmp_path / "j").exists()
    (tmp_path / "bad").write_text("garbage\n{}\n{}\n")
    with pytest.raises(UsageError, match="not a mirror journal line"):
        Journal.open(str(tmp_path / "bad"), "job1")


MAPPING = [
    {"repository": "quay.io/openshift-examples/multi-arch", "path": "openshift-examples/multi-arch", "tag": "multi",
     "digest": str(_d(1)), "sourceDigest": str(_d(1))},
    {"repository": "quay.io/openshift-examples/multi-arch", "path": "openshift-examples/multi-arch",
     "tag": None, "digest": str(_d(2)), "sourceDigest": str(_d(2))},
    {"repository": "registry.example:5000/library/httpd", "path": "library/httpd", "tag": "2.4.48",
     "digest": str(_d(3)), "sourceDigest": str(_d(3))},
    {"repository": "/tmp/layout", "path": "layout", "tag": "x", "digest": str(_d(4)), "sourceDigest": str(_d(4))},
]


def mirror(path: str) -> str:
    return f"mirror.local:5000/ocp/{path}"


def test_outputs_parse_and_name_every_repository(tmp_path):
    pairs = repository_pairs(MAPPING, mirror)
    assert pairs == [("quay.io/openshift-examples/multi-arch", "mirror.local:5000/ocp/openshift-examples/multi-arch"),
                     ("registry.example:5000/library/httpd", "mirror.local:5000/ocp/library/httpd")]
    idms = yaml.safe_load(image_digest_mirror_set(pairs))
    assert idms["kind"] == "ImageDigestMirrorSet" and idms["apiVersion"] == "config.openshift.io/v1"
    assert idms["spec"]["imageDigestMirrors"] == [{"mirrors": [d], "source": s} for s, d in pairs]
    itms = yaml.safe_load(image_tag_mirror_set(pairs))
    assert itms["kind"] == "ImageTagMirrorSet" and len(itms["spec"]["imageTagMirrors"]) == 2
    icsp = yaml.safe_load(image_content_source_policy(pairs))
    assert icsp["apiVersion"] == "operator.openshift.io/v1alpha1"
    assert icsp["spec"]["repositoryDigestMirrors"][1]["source"] == "registry.example:5000/library/httpd"
    import tomllib
    conf = tomllib.loads(registries_conf(pairs, insecure=True))
    assert conf["registry"][0]["prefix"] == "quay.io/openshift-examples/multi-arch"
    assert conf["registry"][0]["mirror"] == [{"location": pairs[0][1], "insecure": True}]
    lines = mapping_txt(MAPPING, mirror).splitlines()
    assert f"quay.io/openshift-examples/multi-arch@{_d(1)}=mirror.local:5000/ocp/openshift-examples/multi-arch:multi" \
        in lines
    assert f"quay.io/openshift-examples/multi-arch@{_d(2)}=mirror.local:5000/ocp/openshift-examples/multi-arch@{_d(2)}" \
        in lines
    written = write_outputs(str(tmp_path / "out"), MAPPING, mirror)
    assert sorted(p.rsplit("/", 1)[1] for p in written) == sorted(
        ["registries.conf", "imagedigestmirrorset.yaml", "imagetagmirrorset.yaml", "imagecontentsourcepolicy.yaml",
         "mapping.txt"])
