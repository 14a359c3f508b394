"""Shared pytest fixtures.

- ``shared_data``: the real datasets (``$AUDIOLAB_DATA`` or ``../shared/data`` beside the
  repo); tests that use it are marked ``realdata`` and skip with a reason when absent.
- ``run_script``: runs a top-level script end to end in a subprocess, in a temporary
  working directory, and fails with its output when it exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_root() -> Path | None:
    """``$AUDIOLAB_DATA`` if set, else ``<repo>/../shared/data``; ``None`` if neither exists."""
    env = os.environ.get("AUDIOLAB_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture
def shared_data() -> Path:
    root = shared_data_root()
    if root is None:
        pytest.skip("real data not found: set AUDIOLAB_DATA or put the shared data at ../shared/data")
    return root


def _run(script: str, *args: str, cwd: Path, expect_rc: int | None = 0, timeout: float = 600,
         env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "AUDIOLAB_DATA"}
    full_env.update({"PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg", **(env or {})})
    proc = subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if expect_rc is not None and proc.returncode != expect_rc:
        raise AssertionError(f"{script} {' '.join(map(str, args))} exited {proc.returncode} "
                             f"(expected {expect_rc})\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n"
                             f"{proc.stderr[-4000:]}")
    return proc


@pytest.fixture
def run_script(tmp_path):
    """``run_script("q1_generate.py", "--quick", cwd=..., expect_rc=0)``; cwd defaults to tmp_path.

    ``AUDIOLAB_DATA`` is removed from the environment unless ``env`` sets it, so a script
    run in a temp folder sees only what the test gives it.
    """

    def runner(script: str, *args: str, cwd: Path | None = None, expect_rc: int | None = 0,
               timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return _run(script, *args, cwd=cwd or tmp_path, expect_rc=expect_rc, timeout=timeout, env=env)

    return runner
