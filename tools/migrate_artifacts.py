"""One-off: migrate every committed artifact from artifact version 2 to 3 (issue 24).

Version 3 drops two fields from ``RunConfig``: ``protocol`` (the student recipe's number) and
``teacher_epochs`` (the first recipe's short teachers). Nothing retrains and no file moves:
logits and weights stay as they are, each JSON is rewritten in place.

* A run the code still builds (a current config's ``artifact_path``): its stored config, less
  the two fields, must equal the config built now field by field (a study's ``sources`` name
  their runs by the new hashes); it gets the new config and hash.
* Any other run must be listed in ``results/history/superseded_runs.csv`` (a run of an earlier
  recipe): its config stays as trained, its hash is recomputed under version 3.

Every rewritten JSON records ``migrated: {artifact_version: 2, config_hash: <old>}``.
``--check`` only reports. Run: ``python tools/migrate_artifacts.py [--check]``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kdlib import ARTIFACT_VERSION
from kdlib.core.io import write_json
from kdlib.core.spec import fingerprint
from kdlib.runs import history
from kdlib.runs.catalogue import EXPERIMENTS, configs_for
from kdlib.runs.experiments import artifact_path
from kdlib.runs.search import search_configs

ROOT = Path(__file__).resolve().parents[1]
DROPPED = ("protocol", "teacher_epochs")


def built_configs(results: Path) -> dict[Path, object]:
    out = {}
    for validation in (False, True):
        for name in EXPERIMENTS:
            for cfg in configs_for(name, "full", range(10), validation):
                out[artifact_path(cfg, results)] = cfg
    for cfg in search_configs("full"):
        out[artifact_path(cfg, results)] = cfg
    return out


def without_sources_hashes(d: dict) -> dict:
    d = json.loads(json.dumps(d))
    if "sources" in d:
        d["sources"] = [s.split("@")[0] for s in d["sources"]]
    return d


def migrate(path: Path, built: dict, superseded: set, check: bool) -> str:
    doc = json.loads(path.read_text())
    if "migrated" in doc:
        return "already"
    old = doc["config"]
    json_path = path.with_name(path.name.replace(".failed.json", ".json"))
    if json_path in built:
        cfg = built[json_path]
        stripped = {k: v for k, v in old.items() if k not in DROPPED}
        if without_sources_hashes(stripped) != without_sources_hashes(cfg.to_dict()):
            raise SystemExit(f"{path}: stored config differs from the config built now")
        new_config, new_hash, kind = cfg.to_dict(), cfg.hash, "current"
    elif path.relative_to(ROOT).as_posix() in superseded:
        new_config, kind = old, "superseded"
        new_hash = fingerprint({"config": old, "artifact_version": ARTIFACT_VERSION})
    elif "benchmarks" in path.parts:  # benchmarks/parity.py's runs: this code's configs, varied
        new_config, kind = {k: v for k, v in old.items() if k not in DROPPED}, "benchmark"
        new_hash = fingerprint({"config": new_config, "artifact_version": ARTIFACT_VERSION})
    else:
        raise SystemExit(f"{path}: neither built by the code nor listed as superseded")
    if not check:
        doc.update(config=new_config, config_hash=new_hash,
                   migrated={"artifact_version": 2, "config_hash": doc["config_hash"]})
        write_json(path, doc)
    return kind


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    results = ROOT / "results"
    built = built_configs(results)
    superseded = {r["path"] for r in history.superseded_runs()}
    paths = sorted(p for p in results.rglob("*.json") if p.parent.name != "checkpoints"
                   and "studies" not in p.relative_to(results).parts[:1])
    # benchmark parity runs: made by benchmarks/parity.py from configs of this code
    paths += sorted((ROOT / "benchmarks/results/parity").rglob("*.json"))
    counts: dict[str, int] = {}
    for p in paths:
        kind = migrate(p, built, superseded, args.check)
        counts[kind] = counts.get(kind, 0) + 1
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
