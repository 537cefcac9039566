"""Air-gapped mirroring: config -> plan -> transfer (registry or disk bundle) -> verify -> cluster outputs.

- :mod:`.config` — the YAML mirror configuration and tag selection (pure);
- :mod:`.semver` — versions in tags and version ranges (pure);
- :mod:`.places` — targets (registry prefix, layout tree, bundle) and sources, per-registry limits;
- :mod:`.plan` — image jobs, graph walks through the copy engine, blob dedupe across the job;
- :mod:`.execute` — parallel transfer of the plan, continue-on-error, the report;
- :mod:`.journal` — the job journal a killed run resumes from;
- :mod:`.bundle` — the disk bundle (one OCI layout + metadata + checksums);
- :mod:`.volumes` — splitting a bundle into tar volumes and reading them back;
- :mod:`.verify` — ``mirror verify``;
- :mod:`.outputs` — registries.conf, IDMS/ITMS/ICSP YAML, mapping.txt;
- :mod:`.run` — a job end to end (what the CLI calls).
"""

from .mirror_config import MirrorConfig, load_config, parse_config
from .execute import MirrorReport
from .run import MirrorJob, execute, prepare, run_mirror
from .verify import VerifyReport, verify_plan

__all__ = ["MirrorConfig", "MirrorJob", "MirrorReport", "VerifyReport", "execute", "load_config", "parse_config",
           "prepare", "run_mirror", "verify_plan"]
