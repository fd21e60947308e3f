"""One-off migration to artifact version 2: every config field is in the config and its hash.

Before version 2, ``RunConfig.to_dict`` left out the fields added after the first artifacts when
they held their default (``ADDED_SPEC_FIELDS``, ``ADDED_RUN_FIELDS``), so that adding an option
kept the older hashes valid. Version 2 drops that shim: this script writes the missing fields
with the defaults they had into every artifact's ``config`` (and every ``.failed.json``),
rewrites ``sources`` ("experiment/name@hash") to the sources' new hashes, and stores the new
``config_hash``. Logits, weights, metrics and provenance are not touched: nothing retrains.

``python tools/migrate_config_hashes.py DIR ...`` (idempotent: a migrated artifact is left as it is).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

#: the defaults the version-1 hash left out (kdlib.recipes, up to version 1)
SPEC_DEFAULTS = {"warmup_epochs": 0, "precision": "float32", "schedule": "cosine",
                 "lr_decay": 1.0, "momentum_final": None, "momentum_epochs": 0,
                 "init_std": None, "max_norm_output": True, "max_grad_norm": None,
                 "optimizer": "sgd"}
RUN_DEFAULTS = {"teacher_epochs": None, "protocol": 1}
VERSION = 2


def fingerprint(obj) -> str:  # kdlib.spec.fingerprint
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def migrated(config: dict, new_hashes: dict) -> dict:
    config = dict(config, spec={**SPEC_DEFAULTS, **config["spec"]})
    for name, default in RUN_DEFAULTS.items():
        config.setdefault(name, default)
    if "sources" in config:
        config["sources"] = [_source(s, new_hashes) for s in config["sources"]]
    return config


def version1_hash(config: dict) -> str:
    """The hash a migrated config of a run without sources had under version 1."""
    config = dict(config, spec={k: v for k, v in config["spec"].items()
                                if k not in SPEC_DEFAULTS or v != SPEC_DEFAULTS[k]})
    for name, default in RUN_DEFAULTS.items():
        if config.get(name, default) == default:
            config.pop(name, None)
    return fingerprint({"config": config, "artifact_version": 1})


def _source(ref: str, new_hashes: dict) -> str:
    what, old = ref.rsplit("@", 1)
    return f"{what}@{new_hashes.get(old, old)}"


def _write(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")  # kdlib.io.write_json
    os.replace(tmp, path)


def main(dirs) -> int:
    docs = {}
    for d in dirs:
        for path in sorted(Path(d).rglob("*.json")):
            doc = json.loads(path.read_text())
            if isinstance(doc, dict) and "config" in doc and "config_hash" in doc:
                docs[path] = doc
    new_hashes: dict = {}
    # sources first: a run's hash depends on its sources' hashes (teachers have no sources)
    for path, doc in sorted(docs.items(), key=lambda kv: "sources" in kv[1]["config"]):
        config = migrated(doc["config"], new_hashes)
        new = fingerprint({"config": config, "artifact_version": VERSION})
        new_hashes[doc["config_hash"]] = new
        if "sources" not in config:  # runs made before their sources were migrated name the old hash
            new_hashes[version1_hash(config)] = new
        if config != doc["config"] or new != doc["config_hash"]:
            _write(path, {**doc, "config": config, "config_hash": new})
    changed = sum(old != new for old, new in new_hashes.items())
    print(f"{len(docs)} artifacts, {changed} migrated to version {VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["results", "benchmarks/results"]))
