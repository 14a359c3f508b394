"""The rules of docs/ARCHITECTURE.md ("Layout") that a change can break without any other test noticing."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = ["q1_generate.py", "q1_plot.py", "q1_train_lstm.py", "q2_ctc.py", "q2_compare.py", "q2_multitask.py",
           "hw_cnn1d.py", "hw_cnn2d.py", "vae_bss.py", "speechcommands_rnn.py"]
TASK_MODULES = ["ctc.py", "ctc_decode.py", "hw_denoise.py", "kws_models.py", "vae_bss_models.py"]
MAX_SCRIPT_LINES, MAX_MODULE_LINES = 700, 550   # "no script over ~700 lines, no library module over ~500"


def tracked(pattern: str) -> list[Path]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", pattern], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [REPO / p for p in out.stdout.split()]


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (``import a.b`` and ``from a.b import c`` give ``a``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_library_never_imports_a_script():
    scripts = {Path(s).stem for s in SCRIPTS + TASK_MODULES}
    offenders = {str(p.relative_to(REPO)): sorted(imported_modules(p) & scripts) for p in tracked("audiolab/*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("limit, paths", [(MAX_SCRIPT_LINES, SCRIPTS + TASK_MODULES), (MAX_MODULE_LINES, None)])
def test_files_stay_readable_sizes(limit, paths):
    files = [REPO / p for p in paths] if paths else tracked("audiolab/*.py")
    too_long = {str(p.relative_to(REPO)): n for p in files if p.exists()
                for n in [len(p.read_text().splitlines())] if n > limit}
    assert too_long == {}, f"over {limit} lines: split by concern (docs/ARCHITECTURE.md, Layout)"


def test_nothing_edits_sys_path_and_nothing_cites_the_old_design_doc():
    """The project is installed (pip install -e .), so no file needs sys.path edits; the old design doc is replaced."""
    edits = ("sys.path." + "insert", "sys.path." + "append")     # spelt apart so that git grep finds no file
    design = ("(" + 'DESIGN "', "DESIGN" + ".md")
    bad = []
    for p in tracked("*.py"):
        text = p.read_text()
        if any(e in text for e in edits):
            bad.append(f"{p.relative_to(REPO)}: sys.path edit")
        if any(d in text for d in design):
            bad.append(f"{p.relative_to(REPO)}: cites DESIGN")
    assert bad == []


def test_library_layers_point_one_way():
    """core imports nothing else of the library; augment imports only core; data may import both."""
    allowed = {"core": {"core"}, "augment": {"core", "augment"}, "report": {"core", "report"}}
    bad = {}
    for p in tracked("audiolab/*/*.py"):
        layer = p.parent.name
        if layer not in allowed:
            continue
        uses = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("audiolab."):
                uses.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                uses |= {a.name.split(".")[1] for a in node.names if a.name.startswith("audiolab.")}
        if uses - allowed[layer]:
            bad[str(p.relative_to(REPO))] = sorted(uses - allowed[layer])
    assert bad == {}
