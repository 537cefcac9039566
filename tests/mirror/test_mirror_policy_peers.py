"""``mirror --policy``: an image the policy rejects is reported and nothing of it is written; the
accepted ones are mirrored (issue 19: "a copy or mirror under a policy writes nothing for an image
that fails it")."""

from __future__ import annotations

import json

from helpers.cli import run_ocikit
from helpers.servers import start_ocikit_serve
from helpers.trust import push_image


def _tags(host: str, repo: str) -> list[str]:
    r = run_ocikit("list-tags", f"docker://{host}/{repo}", check=False, text=True)
    return sorted(json.loads(r.stdout).get("Tags") or []) if r.returncode == 0 and r.stdout.strip() else []


def test_a_rejected_image_writes_nothing_and_the_signed_one_is_mirrored(tmp_path):
    pf = tmp_path / "pass"
    pf.write_text("mirror-policy\n")
    run_ocikit("generate-key", str(tmp_path / "k"), "--passphrase-file", str(pf))
    key, pub = str(tmp_path / "k.key"), str(tmp_path / "k.pub")
    with start_ocikit_serve(str(tmp_path / "a")) as a, start_ocikit_serve(str(tmp_path / "b")) as b:
        push_image(str(tmp_path / "l1"), f"docker://{a.host}/team/signed:v1", seed=1)
        push_image(str(tmp_path / "l2"), f"docker://{a.host}/team/plain:v1", seed=2)
        run_ocikit("sign", "--key", key, "--passphrase-file", str(pf), f"docker://{a.host}/team/signed:v1")
        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "reject"}], "transports": {"docker": {
            f"{a.host}/team": [{"type": "sigstoreSigned", "keyPath": pub,
                                "signedIdentity": {"type": "matchRepository"}}]}}}))
        cfg = tmp_path / "m.yaml"
        cfg.write_text(f"images:\n  - source: docker://{a.host}/team/signed:v1\n"
                       f"  - source: docker://{a.host}/team/plain:v1\n")
        r = run_ocikit("--format", "json", "mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m",
                       "--policy", str(policy), "--journal", "", "--state", "", check=False, text=True)
        assert r.returncode != 0
        assert "team/plain:v1" in r.stdout + r.stderr and "rejected by" in r.stdout + r.stderr
        assert _catalog(b.host) == ["m/team/signed"]  # nothing of the rejected image: no repository, no tag
        assert "v1" in _tags(b.host, "m/team/signed")
        # the accepted image arrived with its signature, which verifies at the target (it names the source)
        run_ocikit("verify", "--key", pub, "--identity", f"{a.host}/team/signed:v1",
                   f"docker://{b.host}/m/team/signed:v1")
        # without a policy both are mirrored
        run_ocikit("mirror", "--config", str(cfg), "--to", f"docker://{b.host}/m", "--journal", "", "--state", "")
        assert any("plain" in x for x in _catalog(b.host))


def _catalog(host: str) -> list[str]:
    import urllib.request
    with urllib.request.urlopen(f"http://{host}/v2/_catalog") as resp:
        return json.loads(resp.read())["repositories"]
