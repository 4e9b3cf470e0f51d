"""Recipes: a model adapted to one language end to end, each step cached and resumable.

A recipe (``transplant/recipes/languages/de.py`` and friends) is its parameters plus the six steps of :class:`Recipe`:

1. :meth:`Recipe.text`: local files (``--corpus``, default the shared corpus) or a hub dataset
   (``--hub``, streamed with a byte budget); lines deduplicated; a held-out file (``--held-out``)
   or the last lines (:func:`transplant.text.held_out_tail`); held-out lines never reach training.
2. :meth:`Recipe.tokenizer`: ``train-tokenizer`` in the model's style (or ``--tokenizer DIR``);
   bytes per token of both tokenizers on the held-out text.
3. :meth:`Recipe.static_vectors`: fastText trained on the local text (or the published
   ``cc.LANG.300`` vectors, ``--vectors cc``) and a bilingual dictionary (a file, or ``muse``),
   only when a chosen method needs them.
4. :meth:`Recipe.transplant`: ``convert`` with the default method and the comparison methods,
   each scored in bits per byte on the held-out text (the original model too).
5. :meth:`Recipe.distill`: optional (``--distill-tokens N``), through ``transplant distill``.
6. :meth:`Recipe.report`: ``OUT/`` with the final checkpoint, ``report.md``, ``results.json`` and
   PNG plots, written through a temporary directory and renamed into place.

Every step builds into its own directory under the work directory (``OUT.work/``) through
:func:`~transplant.files.atomic_directory` and writes ``step.json`` with the parameters it
was built from. A step whose ``step.json`` matches its parameters is reused, so a re-run is cheap
and an interrupted run resumes at the first unfinished step; ``--force`` rebuilds everything.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from transplant.errors import TransplantError
from transplant.files import atomic_directory, refuse_overlap
from transplant.hub_text import hub_lines
from transplant.text import dedupe, held_out_tail, read_lines, take_bytes
from transplant.recipes.spec import QUICK, RecipeSpec, shared_dir
from transplant.recipes.steps import Step, file_id, link_tree, run_step, text_slice
from transplant.recipes.downloads import download_muse_dictionary, published_vectors
from transplant.recipes.report import command_line, fewer_tokens, plot_results, render_report


# What a recipe can prepare for a method (keys of transplant.init.NEEDS): it trains fastText on its
# own text, finds or downloads a dictionary, and has target text and the model. A donor model or a
# trained hypernetwork it cannot make, so --all-methods leaves out the methods that need them.
RECIPE_PROVIDES = frozenset({"static_vectors", "dictionary", "target_text", "model"})


@dataclass
class Model:
    """One row of the results: a checkpoint and its score."""

    label: str
    method: str | None
    path: Path
    convert: Step | None
    score: Step
    distilled: bool = False


def methods_needing(need: str, methods) -> list[str]:
    from transplant.init import method_class

    return [m for m in methods if need in method_class(m).needs]


def unprovided_needs(method: str) -> list[str]:
    from transplant.init import method_class

    return [need for need in method_class(method).needs if need not in RECIPE_PROVIDES]


class Recipe:
    """One run of a recipe: its options, work directory, and the steps done so far."""

    def __init__(self, spec: RecipeSpec, args: argparse.Namespace, recipe_file: str | Path, argv: list[str], invoked_as: list[str] | None = None):
        self.spec, self.args = spec, args
        self.language = args.language
        self.name = spec.name or args.language
        self.out = Path(args.out)
        self.work = Path(args.work_dir) if args.work_dir else self.out.with_name(self.out.name + ".work")
        self.shared = shared_dir(recipe_file)
        self.command = command_line([*(invoked_as or [sys.executable.rsplit("/", 1)[-1], os.path.relpath(recipe_file)]), *argv])
        self.progress = not args.quiet
        self.steps: list[Step] = []
        self.commands: list[str] = []
        self.models: list[Model] = []
        self.started = time.perf_counter()
        self.methods = [spec.method if args.method is None else args.method]
        self.methods += [m for m in args.compare if m not in self.methods]
        self._model_dir = None
        self.check_inputs()

    # --- command line ------------------------------------------------------------------------

    @classmethod
    def from_options(cls, spec: RecipeSpec, args: argparse.Namespace, recipe_file: str | Path, argv: list[str], invoked_as: list[str] | None = None) -> Recipe:
        """A recipe run from its parsed command-line options (:mod:`transplant.recipes.options`):
        the spec's defaults filled in, the methods checked, before any step runs."""
        from transplant.init import NEEDS, available, method_class

        if args.language is None:
            raise TransplantError("no language: pass --language CODE (e.g. sw)")
        if args.all_methods:  # every method whose inputs the recipe can prepare, except those that train
            args.compare = [m for m in available() if not unprovided_needs(m) and "model" not in method_class(m).needs]
        else:
            args.compare = [m.strip() for m in (args.compare if args.compare is not None else ",".join(spec.compare)).split(",") if m.strip()]
        for method in [args.method or spec.method, *args.compare]:
            if method not in available():
                raise TransplantError(f"unknown method '{method}' (--method / --compare take: {', '.join(available())})")
            missing = unprovided_needs(method)
            if missing:
                raise TransplantError(f"a recipe cannot prepare what method '{method}' needs: {'; '.join(NEEDS[need] for need in missing)}; convert with it yourself")
        if args.quick:
            for key, value in QUICK.items():
                if getattr(args, key) is None:
                    setattr(args, key, value)
        args.vocab_size = args.vocab_size or spec.vocab_size
        args.eval_bytes = args.eval_bytes or spec.eval_bytes
        args.hub_bytes = args.hub_bytes or spec.hub_bytes
        if args.out is None:
            args.out = Path("recipe-out") / (args.language + ("-quick" if args.quick else ""))
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        return cls(spec, args, recipe_file, argv, invoked_as)

    def check_inputs(self) -> None:
        """Every input that can be missing, checked before any long step, each naming its option."""
        a = self.args
        inputs = [*self.corpus_files(), a.held_out, a.tokenizer, a.model, a.source_corpus, a.dictionary]
        refuse_overlap(self.out, inputs)
        refuse_overlap(self.work, inputs)
        if self.out.exists() and not (self.out / "report.md").is_file():
            raise TransplantError(f"{self.out} exists and is not a report of an earlier recipe run; choose another -o")
        if importlib.util.find_spec("matplotlib") is None:
            raise TransplantError("the report's plots need matplotlib: pip install 'transplant[recipes]'")
        if a.hub is None:
            for path in self.corpus_files():
                if not path.is_file():
                    what = f"text not found: {path}" if a.corpus else f"no {self.name} text at {path} (the default)"
                    hub = f"--hub to stream {self.hub_label()}" if self.spec.hub_config else "--hub DATASET:CONFIG to stream a Hugging Face dataset"
                    raise TransplantError(f"{what}: pass --corpus PATH (UTF-8, one paragraph per line) or {hub} from the Hugging Face hub")
        else:
            if importlib.util.find_spec("datasets") is None:
                raise TransplantError("--hub needs the datasets package: pip install 'transplant[hub]'; or give local text with --corpus PATH")
            dataset, config = self.hub_source()
            if dataset == RecipeSpec.hub_dataset and config is None:
                raise TransplantError(f"{dataset} needs a language subset: pass --hub {dataset}:CONFIG (e.g. deu_Latn, swh_Latn)")
        if a.held_out is not None and not Path(a.held_out).is_file():
            raise TransplantError(f"held-out text not found: {a.held_out}; pass --held-out PATH, or leave it out to hold out {self.spec.held_out_fraction:.0%} of the lines")
        if a.tokenizer is not None and not Path(a.tokenizer).exists():
            raise TransplantError(f"tokenizer not found: {a.tokenizer}; pass --tokenizer DIR, or leave it out to train one")
        if methods_needing("static_vectors", self.methods):
            if a.vectors == "local" and not self.source_corpus().is_file():
                raise TransplantError(
                    f"no {a.source_language} text to train source fastText vectors on at {self.source_corpus()}: pass --source-corpus PATH, "
                    "or --vectors cc to download the published cc.*.300 vectors"
                )
            if methods_needing("dictionary", self.methods) and a.dictionary != "muse" and not self.dictionary_path().is_file():
                raise TransplantError(
                    f"bilingual dictionary not found: {self.dictionary_path()}; pass --dictionary PATH (`{a.source_language}<TAB>{self.language}` word pairs), "
                    f"--dictionary muse to download the MUSE {a.source_language}-{self.language} dictionary, or --compare without wechsel"
                )

    def hub_label(self) -> str:
        dataset, config = self.hub_source()
        return dataset + (f":{config}" if config else "")

    def hub_source(self) -> tuple[str, str | None]:
        value = self.args.hub if self.args.hub not in (None, "default") else None
        if value is None:
            return self.spec.hub_dataset, self.spec.hub_config
        dataset, _, config = value.partition(":")
        return dataset, config or None

    def corpus_files(self) -> list[Path]:
        if self.args.corpus:
            return [Path(p) for p in self.args.corpus]
        return [self.shared / "corpus" / f"{self.language}.train.txt"]

    def default_held_out(self) -> Path | None:
        if self.args.held_out is not None:
            return Path(self.args.held_out)
        if self.args.corpus or self.args.hub is not None:
            return None  # the user's text is split
        path = self.shared / "corpus" / f"{self.language}.test.txt"
        return path if path.is_file() else None

    def source_corpus(self) -> Path:
        return Path(self.args.source_corpus) if self.args.source_corpus else self.shared / "corpus" / f"{self.args.source_language}.train.txt"

    def dictionary_path(self) -> Path:
        if self.args.dictionary:
            return Path(self.args.dictionary)
        return self.shared / "dict" / f"{self.args.source_language}-{self.language}.tsv"

    def model_dir(self) -> Path:
        if self._model_dir is None:
            from transplant.checkpoint import resolve_model_dir
            from transplant.demo import smollm2_gguf

            spec = self.args.model or self.spec.model
            self._model_dir = resolve_model_dir(spec if spec else smollm2_gguf())
        return self._model_dir

    def model_label(self) -> str:
        return self.args.model or self.spec.model or "SmolLM2-135M"

    # --- steps -------------------------------------------------------------------------------

    def header(self, number: int, text: str) -> None:
        print(f"[{number}/6] {text}", flush=True)

    def step(self, name: str, params: dict, build) -> Step:
        step = run_step(self.work, name, params, build, force=self.args.force, echo=print)
        self.steps.append(step)
        return step

    def text(self) -> Step:
        """Step 1: training text and held-out text, deduplicated; held-out lines never in training."""
        a = self.args
        held_out_file = self.default_held_out()
        if a.hub is not None:
            dataset, config = self.hub_source()
            source = {"hub": dataset, "config": config, "bytes": a.hub_bytes}
        else:
            source = {"files": [file_id(p) for p in self.corpus_files()]}
        params = {
            "source": source, "held_out": file_id(held_out_file) if held_out_file else None, "fraction": self.spec.held_out_fraction,
            "train_bytes": a.train_bytes, "eval_bytes": a.eval_bytes, "version": 1,
        }
        where = f"{self.hub_label()} (hub)" if a.hub is not None else ", ".join(str(p) for p in self.corpus_files())
        self.header(1, f"text: {where}")

        def build(tmp: Path) -> dict:
            if a.hub is not None:
                raw = hub_lines(*self.hub_source(), budget=a.hub_bytes, progress=self.progress)
            else:
                raw = [line for path in self.corpus_files() for line in read_lines(path, "pass --corpus PATH")]
            lines, repeats = dedupe(raw)
            if held_out_file is not None:
                held, _ = dedupe(read_lines(held_out_file, "pass --held-out PATH"))
                held_set = set(held)
                train = [line for line in lines if line not in held_set]
                split = f"held-out file {held_out_file}"
            else:
                train, held = held_out_tail(lines, fraction=self.spec.held_out_fraction)
                split = f"the last {self.spec.held_out_fraction:.0%} of lines"
            leaked = len(lines) - len(train) if held_out_file is not None else 0
            if not train:
                raise TransplantError("no training text left after deduplication; pass --corpus PATH with more text")
            train_cut = take_bytes(train, a.train_bytes)
            held = take_bytes(held, a.eval_bytes)
            if not held:
                raise TransplantError("no held-out text to score; pass --held-out PATH")
            unchanged = a.hub is None and len(self.corpus_files()) == 1 and not repeats and not leaked and len(train_cut) == len(train)
            if unchanged:
                train_file = self.corpus_files()[0].resolve()  # as it is: keeps fastText's cache for this file
            else:
                train_file = self.work / "text" / "train.txt"
                (tmp / "train.txt").write_text("\n".join(train_cut) + "\n", encoding="utf-8")
            (tmp / "held_out.txt").write_text("\n".join(held) + "\n", encoding="utf-8")
            info = {
                "train_file": str(train_file), "held_out_file": str(self.work / "text" / "held_out.txt"),
                "train_lines": len(train_cut), "train_bytes": sum(len(line.encode()) + 1 for line in train_cut),
                "held_out_lines": len(held), "held_out_bytes": sum(len(line.encode()) + 1 for line in held),
                "repeated_lines_removed": repeats, "held_out_lines_removed_from_train": leaked, "split": split, "source": where,
            }
            return info

        step = self.text_step = self.step("text", params, build)
        i = step.info
        print(f"  train: {i['train_lines']:,} lines, {i['train_bytes']:,} bytes ({i['repeated_lines_removed']} repeats removed); "
              f"held out: {i['held_out_lines']:,} lines, {i['held_out_bytes']:,} bytes ({i['split']})")
        return step

    def tokenizer(self, text: Step) -> Step:
        """Step 2: the target tokenizer, trained in the model's style (or --tokenizer); bytes per token."""
        from transplant.evaluate import read_text, tokenizer_stats
        from transplant.loading import load_tokenizer

        a = self.args
        train_file, held_out = Path(text.info["train_file"]), Path(text.info["held_out_file"])
        given = Path(a.tokenizer) if a.tokenizer else None
        kind = a.tokenizer_type
        transition = (a.transition or a.vocab_size // 2) if kind == "superbpe" else None
        trained = f"{a.vocab_size:,}-token {'SuperBPE (transition ' + format(transition, ',') + ')' if transition else 'BPE'}"
        self.header(2, f"tokenizer: {'given ' + str(given) if given else trained + ' trained like ' + self.model_label()}")
        model_dir = self.model_dir()
        params = {"text": text.id, "model": str(model_dir), "vocab_size": a.vocab_size, "given": file_id(given) if given else None,
                  "type": kind, "transition": transition, "version": 2}
        out = self.work / "tokenizer"
        if given is None:
            superbpe = ["--type", kind, "--transition", transition] if transition else []
            self.commands.append(command_line(["transplant", "train-tokenizer", "--like", model_dir, "--corpus", train_file, "--vocab-size", a.vocab_size, *superbpe, "-o", out / "tokenizer"]))
        self.commands.append(command_line(["transplant", "tokenizer-report", model_dir, out / "tokenizer", "--text", held_out]))

        def build(tmp: Path) -> dict:
            from transplant.tokenizer_report import measure
            from transplant.tokenizer_training import corpus_lines, train_tokenizer

            source = load_tokenizer(model_dir)
            if given is not None:
                tokenizer = load_tokenizer(given)
            else:
                tokenizer = train_tokenizer(source, corpus_lines([train_file]), a.vocab_size, kind, progress=self.progress, transition=transition)
            tokenizer.save_pretrained(tmp / "tokenizer")
            sample = read_text(held_out)
            quality = [measure(t, sample, label=label, name=held_out.name).to_json() for label, t in (("original", source), ("new", tokenizer))]
            return {"vocab": len(tokenizer), "source_vocab": len(source), "original": tokenizer_stats(source, sample), "new": tokenizer_stats(tokenizer, sample),
                    "quality": quality, "type": "given" if given else kind}

        step = self.step("tokenizer", params, build)
        i = step.info
        print(f"  {i['vocab']:,} tokens; bytes per token on the held-out text: {i['original']['bytes_per_token']:.3f} (original, {i['source_vocab']:,} tokens)"
              f" -> {i['new']['bytes_per_token']:.3f} (new), {fewer_tokens(i['original']['tokens'], i['new']['tokens'])}")
        step.info["path"] = str(out / "tokenizer")
        return step

    def static_vectors(self, text: Step, tokenizer: Step) -> Step | None:
        """Step 3: fastText vectors and the bilingual dictionary, for the methods that use them."""
        a = self.args
        static_methods = methods_needing("static_vectors", self.methods)
        if not static_methods:
            self.header(3, "static vectors: not needed by " + ", ".join(self.methods))
            return None
        from transplant.init import get

        train_file = Path(text.info["train_file"])
        self.header(3, f"static vectors ({a.vectors}) and dictionary for {', '.join(static_methods)}")
        source_corpus = self.source_corpus()
        params = {
            "text": text.id, "tokenizer": tokenizer.id, "vectors": a.vectors, "methods": sorted(static_methods),
            "source_corpus": file_id(source_corpus) if a.vectors == "local" and "wechsel" in self.methods else None, "source_bytes": a.source_bytes,
            "dictionary": a.dictionary if a.dictionary == "muse" or "wechsel" not in self.methods else file_id(self.dictionary_path()),
            "languages": [a.source_language, self.language], "version": 1,
        }

        def build(tmp: Path) -> dict:
            from transplant.loading import load_tokenizer
            from transplant.static import train_fasttext

            info = {}
            if "wechsel" in self.methods:
                if a.dictionary == "muse":
                    info["dictionary"] = str(download_muse_dictionary(a.source_language, self.language))
                else:
                    info["dictionary"] = str(self.dictionary_path().resolve())
                if a.vectors == "cc":
                    for side, lang in (("source", a.source_language), ("target", self.language)):
                        info[f"wechsel_{side}_vectors"] = str(published_vectors(lang))
                else:
                    source = source_corpus if a.source_bytes is None else text_slice(source_corpus, a.source_bytes)  # --quick: a slice
                    # the parameters wechsel trains with itself (with --quick, 100k n-gram buckets: 40 MB models, not 800 MB)
                    params_ft = get("wechsel", dictionary=info["dictionary"], source_corpus=str(source), target_corpus=str(train_file)).fasttext_params()
                    params_ft = dataclasses.replace(params_ft, bucket=100_000) if a.quick else params_ft
                    for side, corpus in (("source", source), ("target", train_file)):
                        print(f"  fastText {side} ({corpus.name}): training or cached", flush=True)
                        info[f"wechsel_{side}_vectors"] = str(train_fasttext(corpus, params_ft, words="split-punctuation", threads=a.threads))
            if "focus" in self.methods:
                print("  fastText token-level target vectors (focus): training or cached", flush=True)
                tok = load_tokenizer(tokenizer.info["path"])
                params_ft = get("focus", target_corpus=str(train_file)).fasttext_params()
                params_ft = dataclasses.replace(params_ft, bucket=100_000) if a.quick else params_ft
                info["focus_target_vectors"] = str(train_fasttext(train_file, params_ft, tokenizer=tok, threads=a.threads))
            return info

        step = self.step("vectors", params, build)
        for key, value in step.info.items():
            print(f"  {key}: {value}")
        return step

    def method_options(self, method: str, static: Step | None) -> dict:
        from transplant.init import method_class

        info = static.info if static else {}
        threads = {"threads": self.args.threads} if self.args.threads else {}
        if "target_text" in method_class(method).needs:
            return {"target_corpus": self.text_step.info["train_file"]}
        if method == "wechsel":
            return {"source_vectors": info["wechsel_source_vectors"], "target_vectors": info["wechsel_target_vectors"], "dictionary": info["dictionary"], **threads}
        if method == "focus":
            return {"target_vectors": info["focus_target_vectors"], **threads}
        return {}

    def transplant(self, tokenizer: Step, static: Step | None) -> list[Model]:
        """Step 4: the original model scored, then each method converted and scored."""
        from transplant.core import convert

        model_dir = self.model_dir()
        self.header(4, f"transplant: {self.methods[0]} (default)" + (f", compared with {', '.join(self.methods[1:])}" if self.methods[1:] else ""))
        held_out = Path(self.text_step.info["held_out_file"])
        self.models.append(Model("original", None, model_dir, None, self.score("original", "original", model_dir)))
        self.commands.append(command_line(["transplant", "eval", model_dir, "--text", held_out]))
        for method in self.methods:
            options = self.method_options(method, static)
            params = {"model": str(model_dir), "tokenizer": tokenizer.id, "method": method, "options": options, "seed": 0, "version": 1}
            flags = [item for key, value in options.items() if key != "threads" for item in (f"--{key.replace('_', '-')}", value)]
            self.commands.append(command_line(["transplant", "convert", model_dir, tokenizer.info["path"], "-o", self.work / f"convert-{method}" / "model", "--method", method, *flags, "--add-missing-special-tokens"]))

            def build(tmp: Path, method=method, options=options) -> dict:
                report = convert(model_dir, tokenizer.info["path"], tmp / "model", method=method, add_missing_special_tokens=True, progress=self.progress, **options)
                return {"rules": report.rules["input"], "mapping": report.mapping, "seconds": report.seconds}

            converted = self.step(f"convert-{method}", params, build)
            path = converted.directory / "model"
            print(f"  {method}: " + ", ".join(f"{k} {v}" for k, v in sorted(converted.info["rules"].items(), key=lambda kv: -kv[1])))
            self.models.append(Model(method, method, path, converted, self.score(method, method, path, converted)))
            self.commands.append(command_line(["transplant", "eval", path, "--text", held_out]))
        return self.models

    def score(self, name: str, label: str, path: Path, built: Step | None = None) -> Step:
        from transplant.evaluate import bits_per_byte, read_text
        from transplant.loading import load_model, load_tokenizer

        held_out = Path(self.text_step.info["held_out_file"])
        params = {"model": str(path), "built": built.id if built else None, "held_out": self.text_step.id, "version": 1}

        def build(tmp: Path) -> dict:
            result = bits_per_byte(load_model(path).eval(), load_tokenizer(path), read_text(held_out), label=label, file=held_out.name, progress=self.progress)
            return result.to_json()

        step = self.step(f"score-{name}", params, build)
        print(f"  {label}: {step.info['bits_per_byte']:.4f} bits/byte, {step.info['bytes_per_token']:.3f} bytes/token ({step.info['seconds']:.0f} s to score)", flush=True)
        return step

    def distill(self, text: Step) -> Model:
        """Step 5 (--distill-tokens N): distil the default method's model from the original one."""
        a = self.args
        final = self.models[1]
        if not a.distill_tokens:
            self.header(5, "distillation: skipped (--distill-tokens N to run it)")
            return final
        from transplant.distill import DistillConfig
        from transplant.distill import distill as run_distill

        self.header(5, f"distillation: {a.distill_tokens:,} tokens into {final.label}")
        params = {"student": final.convert.id, "tokens": a.distill_tokens, "text": text.id, "version": 1}
        self.commands.append(command_line(["transplant", "distill", "--teacher", self.model_dir(), "--student", final.path, "--text", text.info["train_file"], "-o", self.work / "distill" / "model", "--max-tokens", a.distill_tokens]))

        def build(tmp: Path) -> dict:
            config = DistillConfig(max_tokens=a.distill_tokens)  # the library's measured defaults
            result = run_distill(self.model_dir(), final.path, [text.info["train_file"]], tmp / "model", config, eval_text=text.info["held_out_file"], progress=self.progress)
            return {"result": {"steps": result.steps, "student_tokens": result.student_tokens, "seconds": result.seconds,
                               "bits_per_byte_before": result.bits_per_byte_before, "bits_per_byte_after": result.bits_per_byte_after}}

        step = self.step("distill", params, build)
        label = f"{final.label} + distill {a.distill_tokens:,} tokens"
        model = Model(label, final.method, step.directory / "model", step, self.score(f"{final.method}-distilled", label, step.directory / "model", step), distilled=True)
        self.models.append(model)
        return model

    # --- report ------------------------------------------------------------------------------

    def report(self, final: Model) -> Path:
        """Step 6: OUT/ with the final checkpoint, report.md, results.json and plots, renamed into place."""
        self.header(6, f"report: {self.out}")
        with atomic_directory(self.out, overwrite=True) as tmp:
            link_tree(final.path, tmp / "model")
            results = self.results(final)
            (tmp / "results.json").write_text(json.dumps(results, indent=1, default=str))
            plot_results(results, tmp)
            (tmp / "report.md").write_text(render_report(results))
        print((self.out / "report.md").read_text().split("## Results", 1)[1].split("##", 1)[0].strip())
        print(f"\nwrote {self.out}/ (report.md, model/, plots); finished steps are kept in {self.work}/ for re-runs")
        return self.out

    def results(self, final: Model) -> dict:
        tok = next(s for s in self.steps if s.name == "tokenizer")
        original = self.models[0].score.info
        rows = []
        for m in self.models:
            s = m.score.info
            rows.append({
                "model": m.label, "method": m.method, "default": m.method == self.methods[0] and not m.distilled, "final": m is final,
                "bits_per_byte": s["bits_per_byte"], "delta": s["bits_per_byte"] - original["bits_per_byte"],
                "bytes_per_token": s["bytes_per_token"], "tokens": s["tokens"], "bytes": s["bytes"],
                "convert_s": m.convert.info.get("seconds", m.convert.seconds) if m.convert else None, "score_s": s["seconds"],
                "rules": m.convert.info.get("rules") if m.convert and not m.distilled else None,
            })
        a = self.args
        return {
            "language": self.language, "name": self.name, "model": self.model_label(), "quick": a.quick,
            "command": self.command, "commands": self.commands, "text": self.text_step.info, "text_note": self.spec.text_note if not (a.corpus or a.hub) else "",
            "tokenizer": {"vocab": tok.info["vocab"], "source_vocab": tok.info["source_vocab"], "original": tok.info["original"], "new": tok.info["new"], "given": a.tokenizer,
                          "quality": tok.info.get("quality"), "type": tok.info.get("type", "bpe")},
            "methods": self.methods, "default_method": self.methods[0], "rows": rows,
            "steps": [{"step": s.name, "seconds": s.seconds, "reused": s.reused} for s in self.steps],
            "threads": a.threads, "wall_s": time.perf_counter() - self.started, "work_dir": str(self.work),
        }
