"""One JSON record per run: where it lives, written atomically, read and checked against the declaration.
Chapter 03."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from posebook._io import atomic_write
from posebook.results import ROOT
from posebook.study.declarations import ENV_VAR, FORMAT, RECORD_KEYS, Claim, Variant, _plain


def studies_root(root: str | os.PathLike | None = None) -> Path:
    """Where records live: ``root``, else ``$POSEBOOK_STUDIES``, else ``book/results/studies`` of the checkout.
    Chapter 03."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(ENV_VAR) or ROOT / "book" / "results" / "studies")


def record_path(root, profile: str, chapter: str, claim: str, variant: str, seed: int) -> Path:
    """``<root>/<profile>/<chapter>/<claim>/<variant>-seed<k>.json``. Chapter 03."""
    return studies_root(root) / profile / chapter / claim / f"{variant}-seed{seed}.json"


def write_record(path: str | os.PathLike, record: dict) -> Path:
    """Write one run's record atomically (temporary file, then os.replace): it is whole or absent. Chapter 03."""
    text = json.dumps(_plain(record), indent=1, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_record(path: str | os.PathLike, claim: Claim | None = None, variant: Variant | None = None,
                profile: str | None = None, seed: int | None = None) -> dict:
    """Load and check one record; a malformed one (or one made for another declaration) raises naming its file.
    Chapter 03."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"study record {path}: cannot be read as JSON ({err})") from None
    if not isinstance(record, dict):
        raise ValueError(f"study record {path}: expected a JSON object, got {type(record).__name__}")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing or record["format"] != FORMAT:
        raise ValueError(f"study record {path}: expected format {FORMAT!r} with keys {RECORD_KEYS}; missing "
                         f"{missing}, format {record.get('format')!r}")
    if not isinstance(record["final"], dict) or not isinstance(record["curves"], list):
        raise ValueError(f"study record {path}: 'final' must be an object and 'curves' a list")
    bad = [k for k, v in record["final"].items() if v is not None and not _number(v)]
    if bad:
        raise ValueError(f"study record {path}: final metrics {bad} are not numbers")
    expected = {"claim": claim and claim.name, "variant": variant and variant.name, "profile": profile,
                "seed": seed, "kind": variant and variant.kind, "chapter": claim and claim.chapter}
    wrong = {k: (record[k], v) for k, v in expected.items() if v is not None and record[k] != v}
    if wrong:
        raise ValueError(f"study record {path}: does not belong here (found, expected): {wrong}")
    if variant is not None and _plain(variant.config) != record["config"]:
        changed = sorted(k for k in set(record["config"]) | set(_plain(variant.config))
                         if record["config"].get(k) != _plain(variant.config).get(k))
        raise ValueError(f"study record {path}: made with another config than the chapter now declares (differs "
                         f"in {changed}); delete the record to rerun it, or restore the declaration")
    if claim is not None and claim.protocol > 1 and "declaration" not in record:
        raise ValueError(f"study record {path}: made before declarations were stored, but {claim.chapter}/"
                         f"{claim.name} is declared under protocol {claim.protocol}; no verdict is given from it. "
                         f"Delete the claim's records to rerun it")
    if claim is not None and "declaration" in record and record["declaration"] != claim.digest:
        raise ValueError(f"study record {path}: made under another declaration of {claim.chapter}/{claim.name} "
                         f"(digest {record['declaration']}, the chapter now declares {claim.digest}: its variants, "
                         f"metric, seeds or rule changed); no verdict is given from it. Delete the claim's records "
                         f"to rerun it, or restore the declaration")
    return record


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _value(record: dict, key: str, path: Path) -> float:
    value = record["final"].get(key)
    if not _number(value):
        raise ValueError(f"study record {path}: final metric {key!r} is missing or not a finite number "
                         f"(has {sorted(record['final'])})")
    return float(value)
