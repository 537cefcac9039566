"""The mirror config (pure): the minimal form exactly, every entry option, every bad input."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, strategies as st

from ocikit.core.errors import UsageError
from ocikit.mirror.mirror_config import RewriteRule, destination_path, load_config, parse_config, select_tags
from ocikit.mirror.semver import parse_range, parse_version

MINIMAL = """\
images:
  - source: docker://quay.io/openshift-examples/multi-arch:multi
  - source: docker://registry.example:5000/library/httpd:2.4.48
"""


def cfg(text: str):
    return parse_config(yaml.safe_load(text), "m.yaml")


def test_minimal_form_exactly(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(MINIMAL)
    c = load_config(str(p))
    assert len(c.images) == 2
    a, b = c.images
    assert a.repository == "quay.io/openshift-examples/multi-arch"
    assert a.explicit_selectors == ["multi"]
    assert a.platforms == () and a.platform_mode is None and a.referrers is True
    assert destination_path(a, c.rewrite) == "openshift-examples/multi-arch"
    assert b.repository == "registry.example:5000/library/httpd"
    assert b.explicit_selectors == ["2.4.48"]
    assert destination_path(b, c.rewrite) == "library/httpd"


def test_untagged_source_means_latest_and_tags_replace_it():
    c = cfg("images:\n- source: docker://quay.io/a/b\n- source: docker://quay.io/a/c\n  tags: [x, y]\n"
            "- source: docker://quay.io/a/d:z\n  tags: [x]\n")
    assert c.images[0].explicit_selectors == ["latest"]
    assert c.images[1].explicit_selectors == ["x", "y"]
    assert c.images[2].explicit_selectors == ["z", "x"]


def test_digest_entries():
    d = "sha256:" + "a" * 64
    c = cfg(f"images:\n- source: docker://quay.io/a/b@{d}\n- source: docker://quay.io/a/c\n  digest: {d}\n")
    assert c.images[0].explicit_selectors == [d]
    assert c.images[1].explicit_selectors == [d]


def test_every_option_parses():
    c = cfg("""
images:
  - source: docker://quay.io/org/app
    all-tags: true
    include: ['^v?1\\.']
    exclude: [rc]
    semver: ">=1.2 <2"
    newest: 2
    platforms: [linux/amd64, linux/arm64]
    platform-mode: sparse
    referrers: false
    destination: apps/app
rewrite:
  - from: quay.io/org
    to: mirrored
""")
    e = c.images[0]
    assert e.needs_tag_list and e.platform_mode == "sparse" and not e.referrers
    assert [str(p) for p in e.platforms] == ["linux/amd64", "linux/arm64/v8"]
    assert destination_path(e, c.rewrite) == "apps/app"
    assert c.rewrite == (RewriteRule("quay.io/org", "mirrored"),)


@pytest.mark.parametrize("text,where", [
    ("{}", "images"),
    ("images: []", "images"),
    ("images: [{}]", "images[0].source"),
    ("images: [{source: 'docker://Quay.io/A:b'}]", "images[0].source"),
    ("images: [{source: 'docker-archive:/x.tar'}]", "images[0].source"),
    ("images: [{source: docker://q.io/a, colour: red}]", "images[0].colour"),
    ("images: [{source: docker://q.io/a, platforms: [linux/amd64]}]", "images[0].platform-mode"),
    ("images: [{source: docker://q.io/a, platform-mode: sparse}]", "images[0].platform-mode"),
    ("images: [{source: docker://q.io/a, platforms: [linux/amd64], platform-mode: keep}]", "images[0].platform-mode"),
    ("images: [{source: docker://q.io/a, platforms: ['linux/']}]", "images[0].platforms[0]"),
    ("images: [{source: docker://q.io/a, include: ['(']}]", "images[0].include[0]"),
    ("images: [{source: docker://q.io/a, semver: '>>1'}]", "images[0].semver"),
    ("images: [{source: docker://q.io/a, newest: 0}]", "images[0].newest"),
    ("images: [{source: docker://q.io/a, newest: true}]", "images[0].newest"),
    ("images: [{source: docker://q.io/a, referrers: 'yes'}]", "images[0].referrers"),
    ("images: [{source: docker://q.io/a, digest: sha256:abc}]", "images[0].digest"),
    ("images: [{source: docker://q.io/a, tags: ['-bad']}]", "images[0].tags[0]"),
    ("images: [{source: docker://q.io/a, destination: 'UP/per'}]", "images[0].destination"),
    ("images: [{source: 'docker://q.io/a@sha256:" + "a" * 64 + "', all-tags: true}]", "images[0]"),
    ("images: [{source: docker://q.io/a}]\nrewrite: [{from: q.io}]", "rewrite[0]"),
    ("images: [{source: docker://q.io/a}]\nrewrite: [{from: q.io, to: 'Bad Name'}]", "rewrite[0].to"),
    ("images: [{source: docker://q.io/a}]\nextra: 1", "extra"),
    ("images: [{source: 'oci:/tmp/Some Dir'}]", "images[0]"),
])
def test_bad_configs_name_the_key(text, where):
    with pytest.raises(UsageError) as e:
        cfg(text)
    assert f"m.yaml: {where}" in str(e.value)


def test_bad_yaml(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("images: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(str(p))


def test_rewrite_rules_and_whole_component_prefix():
    c = cfg("images:\n- source: docker://quay.io/org/app:1\n- source: docker://quay.io/organic/x:1\n"
            "- source: docker://docker.io/library/nginx:1\n"
            "rewrite:\n- {from: quay.io/org, to: m/org}\n- {from: docker.io, to: ''}\n")
    assert destination_path(c.images[0], c.rewrite) == "m/org/app"
    assert destination_path(c.images[1], c.rewrite) == "organic/x"  # 'org' is not a prefix of 'organic'
    assert destination_path(c.images[2], c.rewrite) == "library/nginx"


def test_select_tags_filters():
    tags = ["1.0.0", "1.2.0", "1.2.5", "1.10.0", "2.0.0", "2.0.0-rc1", "v1.3", "latest", "1.2.5-debug"]
    c = cfg("images:\n- source: docker://q.io/a\n  all-tags: true\n")
    assert select_tags(c.images[0], tags) == sorted(tags)
    c = cfg("images:\n- source: docker://q.io/a\n  include: ['^1\\.2']\n  exclude: [debug]\n")
    assert select_tags(c.images[0], tags) == ["1.2.0", "1.2.5"]
    c = cfg("images:\n- source: docker://q.io/a\n  semver: '>=1.2 <2'\n")
    assert select_tags(c.images[0], tags) == sorted(["1.2.0", "1.2.5", "1.10.0", "v1.3", "1.2.5-debug"])
    c = cfg("images:\n- source: docker://q.io/a\n  semver: '^1.2'\n  newest: 2\n  exclude: [debug]\n")
    assert select_tags(c.images[0], tags) == ["1.10.0", "v1.3"]
    c = cfg("images:\n- source: docker://q.io/a\n  newest: 1\n")
    assert select_tags(c.images[0], tags) == ["2.0.0"]  # a release beats its release candidate
    c = cfg("images:\n- source: docker://q.io/a:latest\n")
    assert select_tags(c.images[0], tags) == []  # explicit only: nothing listed


@pytest.mark.parametrize("rng,yes,no", [
    (">=1.2 <2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "2.0.0-rc1"]),
    ("^1.4", ["1.4.0", "1.99.0"], ["1.3.9", "2.0.0"]),
    ("^0.3", ["0.3.1"], ["0.4.0"]),
    ("~2.4", ["2.4.0", "2.4.48"], ["2.5.0", "2.3.9"]),
    ("1.x", ["1.0.0", "1.7.3"], ["2.0.0", "0.9.0"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("<1 || >=3", ["0.9.0", "3.0.0"], ["1.0.0", "2.5.0"]),
    ("*", ["0.0.1", "9.9.9"], []),
])
def test_ranges(rng, yes, no):
    r = parse_range(rng)
    for v in yes:
        assert r.contains(parse_version(v)), (rng, v)
    for v in no:
        assert not r.contains(parse_version(v)), (rng, v)


@given(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)),
       st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)))
def test_version_order_matches_tuples(a, b):
    va, vb = parse_version("%d.%d.%d" % a), parse_version("v%d.%d.%d" % b)
    assert (va < vb) == (a < b) and (va == vb) == (a == b)
    assert parse_range(f">={vb}").contains(va) == (a >= b)


@given(st.lists(st.from_regex(r"\A[a-z0-9][a-z0-9.-]{0,12}\Z"), max_size=30, unique=True), st.integers(1, 5))
def test_newest_is_a_subset_sorted_descending(tags, n):
    c = cfg(f"images:\n- source: docker://q.io/a\n  newest: {n}\n")
    got = select_tags(c.images[0], tags)
    assert set(got) <= set(tags) and len(got) <= n
    vs = [parse_version(t) for t in got]
    assert all(v is not None for v in vs) and vs == sorted(vs, reverse=True)
