"""``transplant recipe`` runs the built-in recipes (and recipe files) from any directory, and the
checkout's ``recipes/*.py`` scripts run the same specs without PYTHONPATH."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transplant.recipes import available, find_recipe

ROOT = Path(__file__).resolve().parents[1]


def run(args, cwd):
    command = [shutil.which("transplant") or "transplant", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


def test_every_recipe_script_has_a_built_in_spec():
    scripts = sorted(path.stem for path in (ROOT / "recipes").glob("*.py"))
    assert scripts == available()
    for name in scripts:
        spec, doc, _ = find_recipe(name)
        assert doc and (spec.language == name or name == "generic")


def test_recipe_help_and_errors_from_another_directory(tmp_path):
    listing = run(["recipe", "--help"], tmp_path)
    assert listing.returncode == 0 and "built-in recipes: ar, de, es, fr, generic, ja, ru, zh" in listing.stdout
    help_text = run(["recipe", "de", "--help"], tmp_path)
    assert help_text.returncode == 0 and "Usage: transplant recipe de [OPTIONS]" in help_text.stdout and "--quick" in help_text.stdout
    assert "    transplant recipe de --quick         # the same on a 300 KB slice" in help_text.stdout  # examples kept as written
    bad = run(["recipe", "de", "--vocab-size", "0"], tmp_path)  # click validates the recipe's options like any command's
    assert bad.returncode == 2 and bad.stderr.strip() == "Error: Invalid value for '--vocab-size': 0 is not in the range x>=1."
    unknown = run(["recipe", "xx"], tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.strip().splitlines() == [unknown.stderr.strip()] and "no recipe 'xx'" in unknown.stderr
    missing = run(["recipe", "de", "--corpus", tmp_path / "none.txt", "--out", tmp_path / "out"], tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith("Error: text not found") and "--corpus PATH" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_recipe_file_of_ones_own(tmp_path):
    mine = tmp_path / "swahili.py"
    mine.write_text('"""Swahili, my way."""\nfrom transplant.recipes import RecipeSpec\nSPEC = RecipeSpec(language="sw", name="Swahili")\n')
    result = run(["recipe", mine, "--out", tmp_path / "out"], tmp_path)
    assert result.returncode == 1 and "--corpus PATH" in result.stderr and "Swahili" in result.stderr
    assert not (tmp_path / "out").exists()
    nothing = tmp_path / "empty.py"
    nothing.write_text("x = 1\n")
    result = run(["recipe", nothing], tmp_path)
    assert result.returncode == 1 and "defines no SPEC" in result.stderr


@pytest.mark.parametrize("name", ["de", "generic"])
def test_checkout_scripts_run_without_pythonpath(tmp_path, name):
    result = subprocess.run([sys.executable, str(ROOT / "recipes" / f"{name}.py"), "--help"], cwd=tmp_path, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout
