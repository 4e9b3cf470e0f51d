"""The code passes ruff (pyflakes, pycodestyle, bugbear; settings in pyproject.toml), so CI runs it
with the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    command = [shutil.which("ruff")] if shutil.which("ruff") else [sys.executable, "-m", "ruff"]
    result = subprocess.run([*command, "check", "--no-cache", "transplant", "hypernet", "tests", "bench", "recipes"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_bench_script_hides_a_package():
    """A script directory is first on sys.path, so bench/hypernet.py once made `import hypernet`
    in a bench's child process find the script instead of the package (and bench/multiprocess.py
    hid a dependency of datasets). Bench scripts take names no package of ours or our dependencies has."""
    import importlib.util

    clashes = []
    for script in sorted((ROOT / "bench").glob("*.py")):
        spec = importlib.util.find_spec(script.stem)
        if spec is not None and Path(spec.origin or "").resolve() != script.resolve():
            clashes.append(f"{script.name} hides {spec.origin}")
    assert clashes == []
