"""List every key whose value differs between two `make run` output trees (a refactor must print nothing).

    python benchmarks/compare_metrics.py OLD_OUTPUTS NEW_OUTPUTS [--with-provenance] [--tolerance 0]

Reads every ``metrics.json`` under OLD and NEW (matched by their path below the folder) and
prints one line per differing key, as ``path: key: old -> new``: a value that changed, a key
only on one side (``<missing>``), a ``metrics.json`` only on one side. Nested ``config``
dictionaries are compared key by key (``config.lr``). Values must be equal exactly (bit for bit
for floats, as JSON stores them) unless ``--tolerance`` allows a relative difference.

Provenance that differs between any two runs by design (``git_commit``, timings measured in
seconds of wall clock, ``config.out_dir``) is skipped unless ``--with-provenance``.
Exit status: 0 when nothing differs, 1 otherwise, 2 for a bad folder.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

# differ between two identical runs: when and where a run happened, not what it computed
# (every config.*.out_dir is skipped by is_provenance as well)
PROVENANCE = ("git_commit", "config.threads")
# wall-clock measurements: train_seconds_lstm, eval_seconds, total_seconds, ours_fwd_ms, fwd_bwd_time_ratio, ...
TIMING = re.compile(r"(train|eval|total|cpu)_seconds|_ms$|time_ratio")


def flatten(obj, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists stay values."""
    out = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def is_provenance(key: str) -> bool:
    return key in PROVENANCE or key.startswith("config.") and key.endswith(".out_dir") or bool(TIMING.search(key))


def same(a, b, tolerance: float) -> bool:
    if isinstance(a, float) and isinstance(b, float) and tolerance > 0:
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=0.0)
    return a == b and type(a) is type(b)


def compare(old_root: Path, new_root: Path, *, with_provenance: bool = False, tolerance: float = 0.0) -> list[str]:
    """The differing keys, one line each (empty when the two trees agree)."""
    old = {p.relative_to(old_root): p for p in old_root.rglob("metrics.json")}
    new = {p.relative_to(new_root): p for p in new_root.rglob("metrics.json")}
    lines = []
    for rel in sorted(set(old) | set(new)):
        if rel not in new or rel not in old:
            lines.append(f"{rel}: only in {'OLD' if rel in old else 'NEW'}")
            continue
        a, b = (flatten(json.loads(p.read_text())) for p in (old[rel], new[rel]))
        for key in sorted(set(a) | set(b)):
            if not with_provenance and is_provenance(key):
                continue
            va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
            if not same(va, vb, tolerance):
                lines.append(f"{rel}: {key}: {va!r} -> {vb!r}")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--with-provenance", action="store_true", help="compare git_commit, timings and out_dir too")
    p.add_argument("--tolerance", type=float, default=0.0, help="relative tolerance for floats (default 0: exact)")
    args = p.parse_args(argv)
    for root in (args.old, args.new):
        if not root.is_dir():
            print(f"error: {root} is not a folder", file=sys.stderr)
            return 2
    lines = compare(args.old, args.new, with_provenance=args.with_provenance, tolerance=args.tolerance)
    print("\n".join(lines))
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
