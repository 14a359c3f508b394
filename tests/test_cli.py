"""Every top-level script explains itself with --help and takes the common flags
(docs/ARCHITECTURE.md, "Data flow of one run")."""

import ast
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPTS = ["q1_generate.py", "q1_plot.py", "q1_train_lstm.py", "q2_ctc.py", "q2_compare.py", "q2_multitask.py",
           "hw_cnn1d.py", "hw_cnn2d.py", "vae_bss.py", "speechcommands_rnn.py"]
COMMON = ["--seed", "--device", "--quick", "--out-dir"]
SUBCOMMAND = {"vae_bss.py": "images"}  # scripts with subcommands: the common flags are on each subcommand


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_lists_the_common_flags(script):
    if not (REPO / script).exists():
        pytest.skip(f"{script} is not in this checkout")
    sub = [SUBCOMMAND[script]] if script in SUBCOMMAND else []
    proc = subprocess.run([sys.executable, str(REPO / script), *sub, "--help"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert len(text.splitlines()) > 10                     # a docstring, not just a usage line
    missing = [flag for flag in COMMON if flag not in text]
    assert not missing, f"{script} --help lacks {missing}"
    # usage on one line, then the docstring's first paragraph (not the whole docstring), then the flags
    lines = text.splitlines()
    assert lines[0].startswith(f"usage: {script}") and lines[1] == "", lines[:2]
    first = ast.get_docstring(ast.parse((REPO / script).read_text())).split("\n\n")[0]
    if script not in SUBCOMMAND:                           # a subcommand's help has its own one-line description
        assert "\n".join(lines[2:2 + len(first.splitlines())]) == first
    heads = [i for i, line in enumerate(lines) if line in ("options:", "positional arguments:")]
    assert heads and heads[0] <= 7, "the flags should start within the first eight lines"
