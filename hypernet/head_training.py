"""Training a hypernetwork's head predictor for a tied model, on next-token features.

A tied model moved onto a new tokenizer loses most where its head does: the new tokens' output
rows (Token Distillation's head fit, README). The LM objective of training.py runs the whole
model at every step; this one runs it only to collect features, before training. The features
are the frozen model's final hidden states, what its head multiplies, and come in two kinds:

- ``spelled`` (the default): for each sampled tokenizer, a window of text in that tokenizer's
  tokens, each written as its source pieces (as Token Distillation's head fit does); the state
  after a token's last piece should predict the next token. Every token of the text gives an
  example, and the context looks like what the moved model reads. One forward pass per
  tokenizer.
- ``source``: the model reads each corpus once in its own tokenization; for a sampled tokenizer,
  every place where one of its tokens starts where a base token starts (spaces skipped) gives an
  example. One forward pass per corpus, but tokens that start inside a base token never get one.

The head predictor, the hypernetwork's "output" kind with an encoder of its own, is then trained
by softmax regression of those examples. Copied tokens keep the base rows, new tokens get predicted rows.
The softmax sees every copied token, the batch's new tokens and a uniform sample of the other new
tokens, whose logits get log(others / sampled) so that the sample stands for all of them.

The input kind is not touched: its predictions are what they were before.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from transplant.errors import TransplantError
from transplant.files import OutputClaim, atomic_directory, input_fingerprint, refuse_other_inputs, refuse_overlap, remember_inputs
from transplant.training import step_generator
from transplant.vocab import Vocabulary, VocabMapping, build_mapping
from .model import Hypernet, fingerprint, fvt_base, piece_matrix
from .sampler import UnigramSampler

LOG_FILE = "head_log.jsonl"
INPUTS_FILE = "inputs.json"  # what a resume must match: model, corpora, tokenizers, starting hypernetwork, settings
TASKS_DIR = "tasks"  # the sampled tokenizers and their examples, computed once
CHUNK = 512  # base tokens per forward pass when the features are computed


@dataclass
class HeadTrainConfig:
    steps: int = 400
    tasks_per_step: int = 4  # (tokenizer, corpus) pairs per step: one language per step diverged (README)
    batch_size: int = 512  # examples per task
    sampled_others: int = 1024  # new tokens in each task's softmax beside the batch's own
    learning_rate: float = 3e-4  # 1e-3 diverged on SmolLM2 (README)
    warmup_steps: int = 20
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    features: str = "spelled"  # "spelled" or "source": see the module's docstring
    # tokens of text read for features: target tokens per tokenizer (spelled), base tokens per corpus
    # (source); None: DEFAULT_FEATURE_TOKENS of the kind
    feature_tokens: int | None = None
    tokenizers_per_corpus: int = 6
    sampled_vocab_size: int = 16384
    tokenizer_text_bytes: int = 65536
    families: tuple[str, ...] | None = None  # None: every family the vocabulary layer builds
    checkpoint_every: int = 100
    seed: int = 0


@dataclass
class Features:
    """The base model's final hidden states over ``text`` and, for each, the place of the token it
    predicts (see ``_place``)."""

    text: str
    hidden: torch.Tensor  # [positions, width], float16
    predicts: torch.Tensor  # [positions] character offsets


def _place(text: str, start: int, end: int) -> int:
    """Where a token at ``text[start:end]`` starts, comparable across families: its first
    non-space character (families differ in whether a word's token holds the space before it).
    A token of whitespace only keeps its own place, as a negative number, so it is not mistaken
    for the word after it."""
    if not text[start:end].strip():
        return -1 - start
    while text[start].isspace():
        start += 1
    return start


@torch.no_grad()
def base_features(model, tokenizer, text: str, max_tokens: int, progress: bool = True) -> Features:
    """The frozen model's features over the first ``max_tokens`` base tokens of ``text``,
    ``CHUNK`` tokens per pass (each pass starts without context)."""
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    ids, offsets = encoded["input_ids"][: max_tokens + 1], encoded["offset_mapping"][: max_tokens + 1]
    if len(ids) < 2:
        raise TransplantError("a corpus holds fewer than two tokens: nothing to learn a head from")
    text = text[: offsets[-1][1]]
    body = model.base_model
    device = next(model.parameters()).device
    hidden, predicts = [], []
    for start in tqdm(range(0, len(ids) - 1, CHUNK), desc="head features", unit="pass", disable=not progress):
        window = ids[start : start + CHUNK + 1]
        out = body(input_ids=torch.tensor([window[:-1]], device=device)).last_hidden_state[0]
        hidden.append(out.to(torch.float16).cpu())
        predicts += [_place(text, *offsets[start + i + 1]) for i in range(len(window) - 1)]
    return Features(text, torch.cat(hidden), torch.tensor(predicts))


def examples(tokenizer, features: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """(feature positions, labels): where a token of ``tokenizer`` starts at an offset that a
    feature predicts, that feature and that token."""
    encoded = tokenizer(features.text, return_offsets_mapping=True, add_special_tokens=False)
    first: dict[int, int] = {}
    for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"]):
        if end > start:
            first.setdefault(_place(features.text, start, end), token)
    predicts = features.predicts.tolist()
    positions = [i for i, offset in enumerate(predicts) if offset in first]
    return torch.tensor(positions, dtype=torch.long), torch.tensor([first[predicts[i]] for i in positions], dtype=torch.long)


DEFAULT_FEATURE_TOKENS = {"spelled": 12_000, "source": 40_000}  # spelled: one model pass per tokenizer, so fewer
FEATURE_KINDS = tuple(DEFAULT_FEATURE_TOKENS)


@torch.no_grad()
def spelled_examples(model, base_tokenizer, tokenizer, mapping: VocabMapping, text: str, max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [n, width] float16, labels [n]): ``text`` in ``tokenizer``'s tokens, each written
    as its source pieces after the base model's start token; the frozen model's final state after
    each token's last piece, and the token that follows (up to ``max_tokens`` of them)."""
    from transplant.tokendistill.headfit import next_token_features
    from transplant.tokendistill.snippets import TokenizedText, source_spelling, start_of_text

    spelling = source_spelling(mapping, model.get_input_embeddings().weight.shape[0])
    max_positions = getattr(model.config, "max_position_embeddings", None)
    tokenized = TokenizedText.from_text(text, tokenizer, progress=False)
    features, labels = next_token_features(model.base_model, tokenized, spelling, start_of_text(base_tokenizer), max_tokens, max_positions, progress=False)
    return features.to(torch.float16), labels


class HeadTask:
    """One sampled tokenizer with its examples (``hidden[positions]`` should predict ``labels``):
    which rows are copied, which predicted."""

    def __init__(self, mapping: VocabMapping, source_rows: int, corpus: int, hidden: torch.Tensor, positions: torch.Tensor, labels: torch.Tensor, tokenizer=None):
        self.corpus, self.tokenizer = corpus, tokenizer
        self.mapping = mapping
        self.hidden, self.positions, self.labels = hidden, positions, labels
        matches, pieces = mapping.matches, mapping.pieces
        self.size = len(matches)
        self.copied = torch.tensor([t for t in range(self.size) if matches[t] >= 0], dtype=torch.long)
        self.copied_from = torch.tensor([matches[t] for t in self.copied.tolist()], dtype=torch.long)
        self.new = torch.tensor([t for t in range(self.size) if matches[t] < 0 and any(p < source_rows for p in pieces[t])], dtype=torch.long)
        self.is_new = torch.zeros(self.size, dtype=torch.bool)
        self.is_new[self.new] = True

    @classmethod
    def from_source_features(cls, tokenizer, base_vocab: Vocabulary, source_rows: int, corpus: int, features: Features) -> "HeadTask":
        positions, labels = examples(tokenizer, features)
        return cls(build_mapping(base_vocab, Vocabulary.from_tokenizer(tokenizer), progress=False), source_rows, corpus, features.hidden, positions, labels, tokenizer)

    @classmethod
    def from_spelled_text(cls, tokenizer, base_tokenizer, base_vocab: Vocabulary, model, corpus: int, text: str, max_tokens: int) -> "HeadTask":
        mapping = build_mapping(base_vocab, Vocabulary.from_tokenizer(tokenizer), progress=False)
        hidden, labels = spelled_examples(model, base_tokenizer, tokenizer, mapping, text, max_tokens)
        return cls(mapping, model.get_input_embeddings().weight.shape[0], corpus, hidden, torch.arange(len(labels)), labels, tokenizer)

    def logits(self, hypernet: Hypernet, source: torch.Tensor, base_vocab: Vocabulary, fallback: torch.Tensor,
               features: torch.Tensor, labels: torch.Tensor, others: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of a batch over the copied tokens, the batch's new labels and
        ``others`` sampled new tokens; examples whose label is neither copied nor spelled drop out."""
        wanted = torch.unique(labels[self.is_new[labels]])
        rest = self.new[~torch.isin(self.new, wanted)]
        sampled = rest[torch.randperm(len(rest), generator=generator)[:others]]
        chosen = torch.cat([wanted, sampled])
        decompositions = [self.mapping.pieces[t] for t in chosen.tolist()]
        base = fvt_base(hypernet, base_vocab, decompositions, source, fallback)
        pieces = piece_matrix(decompositions, hypernet.config.max_pieces, len(source))
        rows = torch.cat([source[self.copied_from], base + hypernet.residual(pieces, source, "output")])
        stands_for = math.log(max(len(rest), 1) / max(len(sampled), 1))
        correction = torch.cat([torch.zeros(len(self.copied) + len(wanted)), torch.full((len(sampled),), stands_for)])
        column = torch.full((self.size,), -1, dtype=torch.long)
        column[torch.cat([self.copied, chosen])] = torch.arange(len(self.copied) + len(chosen))
        keep = column[labels] >= 0
        return features[keep] @ rows.T + correction, column[labels[keep]]


def _window(text: str, size: int, generator: torch.Generator) -> str:
    """``size`` characters of ``text`` from a random start (all of it if it is shorter)."""
    start = int(torch.randint(max(1, len(text) - size), (), generator=generator))
    return text[start : start + size]


def _learning_rate_factor(step: int, config: HeadTrainConfig) -> float:
    """Linear warm-up, then a cosine to zero at the last step: the per-language losses pull in
    different directions, and a decaying rate lets the last steps settle between them."""
    warmup = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    return warmup * 0.5 * (1.0 + math.cos(math.pi * min(step / config.steps, 1.0)))


def with_tied_head(hypernet: Hypernet, source: torch.Tensor, seed: int = 0) -> Hypernet:
    """A copy of ``hypernet`` (trained for a tied model's input rows) that also predicts a head of
    its own, with an encoder of its own; untrained, the head is fvt's (as the tied head was)."""
    config = hypernet.config
    if "output" in config.kinds:
        if not config.tied_head:
            raise TransplantError("this hypernetwork already predicts an untied model's head; a head predictor is for tied models")
        return hypernet
    new_config = dataclasses.replace(
        config, kinds=[*config.kinds, "output"], tied_head=True, own_encoders=[*config.own_encoders, "output"],
        fingerprints={**config.fingerprints, "output": fingerprint(source)},
    )
    with torch.random.fork_rng(devices=[]):  # the head part's start depends on the seed alone, not on earlier draws
        torch.manual_seed(seed)
        extended = Hypernet(new_config)
    missing, unexpected = extended.load_state_dict(hypernet.state_dict(), strict=False)
    assert not unexpected and all("output" in name for name in missing), (missing, unexpected)
    extended.set_scale("output", source)
    return extended


def is_head_part(name: str) -> bool:
    """Whether a state-dict entry belongs to the "output" kind (the head part)."""
    return "output" in name.split(".") or name in ("mean_output", "std_output")


def with_head_of(hypernet: Hypernet, donor: Hypernet) -> Hypernet:
    """``hypernet``'s input part with ``donor``'s head part: both parts read the same tied rows
    through encoders of their own, so a head part trained on one input part serves any other of
    the same base model and shape (an input part retrained later keeps the head already trained)."""
    mine, theirs = hypernet.config, donor.config
    if not theirs.tied_head or "output" not in theirs.own_encoders:
        raise TransplantError("the donor hypernetwork has no head predictor for a tied model")
    shape = ("embedding_dim", "source_rows", "max_pieces", "width", "layers", "heads", "weighting")
    if mine.fingerprints.get("input") != theirs.fingerprints.get("input") or any(getattr(mine, k) != getattr(theirs, k) for k in shape):
        raise TransplantError("the two hypernetworks belong to different base models or differ in shape")
    input_part = {name: tensor for name, tensor in hypernet.state_dict().items() if not is_head_part(name)}
    head_part = {name: tensor for name, tensor in donor.state_dict().items() if is_head_part(name)}
    config = dataclasses.replace(
        mine, kinds=[k for k in mine.kinds if k != "output"] + ["output"], tied_head=True,
        own_encoders=[k for k in mine.own_encoders if k != "output"] + ["output"],
        fingerprints={**mine.fingerprints, "output": theirs.fingerprints["output"]},
        base_model=f"{mine.base_model.split(';')[0]};{theirs.base_model.split(';', 1)[1]}" if ";" in theirs.base_model else mine.base_model,
    )
    combined = Hypernet(config)
    combined.load_state_dict({**input_part, **head_part})
    return combined.eval()


def train_head(
    model: str | Path, corpora: list[str | Path], out: str | Path, *, hypernet: str | Path | Hypernet | None = None,
    tokenizers: list | None = None, examples_from: list[str | Path] | None = None, resume: bool = False, overwrite: bool = False,
    progress: bool = True, callback: Callable[[int, dict], None] | None = None, **options,
) -> Path:
    """Give the hypernetwork of a tied ``model`` a head predictor trained on ``corpora`` and write it
    to ``out``. ``hypernet``: the one to extend (a directory, a loaded one, or None: the built-in
    one that matches the model, else an untrained one, i.e. fvt for the input rows).
    ``tokenizers``: real tokenizers (paths, hub names or loaded ones) trained on beside the
    sampled ones, each with every corpus. The examples and checkpoints live in ``OUT.run/``;
    ``resume`` continues from its last checkpoint with the examples kept there (no model pass).
    ``examples_from``: run directories (``OUT.run`` of earlier runs on the same model) whose kept
    examples are trained on too, without a model pass: e.g. one run's spelled and another's source
    features mixed in one head part. ``corpora`` may then be empty.
    ``callback(step, record)`` is called after every step."""
    known = {f.name for f in dataclasses.fields(HeadTrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TransplantError(f"unknown head training option {', '.join(unknown)} (options: {', '.join(sorted(known))})")
    config = HeadTrainConfig(**options)
    if config.features not in FEATURE_KINDS:
        raise TransplantError(f"features must be one of {', '.join(FEATURE_KINDS)}, not {config.features!r}")
    if config.feature_tokens is None:
        config = dataclasses.replace(config, feature_tokens=DEFAULT_FEATURE_TOKENS[config.features])
    if min(config.steps, config.batch_size, config.tasks_per_step, config.tokenizers_per_corpus, config.checkpoint_every) < 1 or config.feature_tokens < 2:
        raise TransplantError("steps, batch size, tasks per step, tokenizers per corpus and checkpoint interval must be at least 1, feature tokens at least 2")
    tokenizers, examples_from = list(tokenizers or []), [Path(d) for d in examples_from or []]
    if not corpora and not examples_from:
        raise TransplantError("nothing to learn from: give a corpus, or an earlier run's examples (--examples-from)")
    inputs = [model, *corpora, *examples_from, *(t for t in tokenizers if isinstance(t, (str, Path)))] + ([hypernet] if isinstance(hypernet, (str, Path)) else [])
    run_dir = Path(out).with_name(Path(out).name + ".run")
    refuse_overlap(run_dir, inputs)  # it is deleted on a fresh start
    if run_dir.exists() and not resume and not overwrite:
        raise TransplantError(f"{run_dir} holds an earlier run; pass --resume to continue it or --overwrite to start over")
    with OutputClaim(out, inputs=inputs, overwrite=overwrite) as output:
        return _train_head(model, [Path(c) for c in corpora], tokenizers, examples_from, output, hypernet, config, run_dir, resume, progress, callback)


def _train_head(model, corpora: list[Path], given_tokenizers: list, examples_from: list[Path], output: OutputClaim, given, config: HeadTrainConfig,
                run_dir: Path, resume: bool, progress: bool, callback) -> Path:
    from transplant.loading import load_model, load_tokenizer
    from transplant.training import JsonlLog, latest_checkpoint, load_checkpoint, make_accelerator, save_checkpoint
    from .io import check_base, load, save

    base_tokenizer = load_tokenizer(model)
    real_tokenizers = [load_tokenizer(t) if isinstance(t, (str, Path)) else t for t in given_tokenizers]
    base_model = load_model(model, causal_for="the head predictor")
    base_model.eval()
    embeddings, head = base_model.get_input_embeddings(), base_model.get_output_embeddings()
    if head is None or head.weight is not embeddings.weight:
        raise TransplantError(f"{model} has an untied head: `transplant hypernet train` already predicts it; a head predictor is for tied models")
    source = embeddings.weight.detach().float()
    base_vocab = Vocabulary.from_tokenizer(base_tokenizer)
    given = _starting_point(given, model, source)
    hypernet = copy.deepcopy(given) if isinstance(given, Hypernet) else load(given)  # the caller's stays as it was
    check_base(hypernet, source, "input")
    hypernet = with_tied_head(hypernet, source, config.seed)
    token_ids = [i for i, key in enumerate(base_vocab.canonical) if key is not None and i < len(source)]
    fallback = source[token_ids].mean(0)

    borrowed_records = {directory: _kept_examples_record(directory, model) for directory in examples_from}
    fingerprints = {
        "model": input_fingerprint(model),
        "corpora": [input_fingerprint(c) for c in corpora],
        "tokenizers": [input_fingerprint(t) if isinstance(t, (str, Path)) else "in memory" for t in given_tokenizers],
        "examples_from": [input_fingerprint(directory / INPUTS_FILE) for directory in borrowed_records],
        "hypernet": input_fingerprint(given) if isinstance(given, (str, Path)) else "in memory",
        "settings": asdict(config),
    }
    checkpoint = latest_checkpoint(run_dir) if resume else None
    started = time.perf_counter()
    # the examples are kept as soon as they are computed: a resume reuses them even before the first checkpoint
    if resume and (run_dir / INPUTS_FILE).is_file() and (run_dir / TASKS_DIR).is_dir():
        refuse_other_inputs(run_dir / INPUTS_FILE, fingerprints)
        tasks = _load_tasks(run_dir / TASKS_DIR, base_vocab, len(source))
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        tasks = _build_tasks(base_model, base_tokenizer, base_vocab, corpora, real_tokenizers, config, progress) if corpora else []
        _save_tasks(tasks, run_dir / TASKS_DIR)  # only this run's own: the borrowed ones stay where they are
        remember_inputs(run_dir / INPUTS_FILE, fingerprints)  # last: a run directory without it is started over
    corpus_offset = len(corpora)  # a borrowed task's corpus is numbered after this run's corpora and earlier runs' ones
    for directory, record in borrowed_records.items():
        borrowed = _load_tasks(directory / TASKS_DIR, base_vocab, len(source))
        for task in borrowed:
            task.corpus += corpus_offset
        corpus_offset += len(record["corpora"])
        tasks += borrowed
    if not tasks:
        raise TransplantError("the runs given with --examples-from hold no examples of their own to train on")
    del base_model, embeddings, head  # only the examples and embedding rows are needed from here on

    trained = [p for name, p in hypernet.named_parameters() if is_head_part(name)]
    for name, parameter in hypernet.named_parameters():
        parameter.requires_grad_(is_head_part(name))
    accelerator = make_accelerator(config.seed, "no")
    optimizer = torch.optim.AdamW(trained, lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _learning_rate_factor(step, config))
    prepared, optimizer, schedule = accelerator.prepare(hypernet, optimizer, schedule)
    hypernet = accelerator.unwrap_model(prepared)
    log = JsonlLog(run_dir / LOG_FILE)
    step = load_checkpoint(accelerator, checkpoint)["step"] if checkpoint is not None else 0
    log.truncate_after(step)  # steps logged after the last checkpoint are run again
    hypernet.train()
    bar = tqdm(total=config.steps, initial=step, desc="training head", disable=not progress)
    try:
        while step < config.steps:
            step_random = step_generator(config.seed, step)
            loss, corpora_seen = 0.0, []
            for _ in range(config.tasks_per_step):  # the step's gradient averages over several tokenizers and languages
                task = tasks[int(torch.randint(len(tasks), (), generator=step_random))]
                pick = torch.randint(len(task.labels), (config.batch_size,), generator=step_random)
                batch = task.hidden[task.positions[pick]].float()
                logits, labels = task.logits(hypernet, source, base_vocab, fallback, batch, task.labels[pick], config.sampled_others, step_random)
                loss = loss + F.cross_entropy(logits, labels) / config.tasks_per_step
                corpora_seen.append(task.corpus)
            if not torch.isfinite(loss):
                raise TransplantError(f"the head predictor's loss is {loss.item()} at step {step + 1}: lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, config.max_grad_norm)
            optimizer.step()
            schedule.step()
            step += 1
            record = {"step": step, "loss": loss.item(), "corpora": corpora_seen, "seconds": round(time.perf_counter() - started, 2)}
            log.write(**record)
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(accelerator, run_dir, step, {})
            bar.update(1)
            if callback is not None:
                callback(step, record)
    except KeyboardInterrupt:
        raise TransplantError(f"interrupted at step {step}; run again with --resume to continue from {latest_checkpoint(run_dir) or 'step 0 with the examples kept'}") from None
    finally:
        bar.close()
    hypernet.eval()
    trained_on = [p.name for p in corpora] + [f"the examples of {d.name}" for d in examples_from]
    hypernet.config = dataclasses.replace(hypernet.config, base_model=f"{hypernet.config.base_model}; head predictor trained on {', '.join(trained_on)}")
    real = [getattr(t, "name_or_path", "in memory") for t in real_tokenizers]
    training = {"model": str(model), "corpora": [str(c) for c in corpora], "tokenizers": real, "examples_from": [str(d) for d in examples_from], **asdict(config)}
    extra = {LOG_FILE: (run_dir / LOG_FILE).read_text(), "head_training.json": json.dumps(training, indent=1) + "\n"}
    return save(hypernet, output, extra_files=extra)


def _starting_point(given, model, source: torch.Tensor):
    """The hypernetwork to extend: the given one, else the built-in one for these rows, else an
    untrained one (fvt's input rows)."""
    if given is not None:
        return given
    from .builtin import matching_builtin
    from .training import TrainConfig, _new_hypernet

    try:
        return matching_builtin(source).directory
    except TransplantError:
        return _new_hypernet(str(model), {"input": source}, TrainConfig())


def _build_tasks(base_model, base_tokenizer, base_vocab: Vocabulary, corpora: list[Path], real_tokenizers: list, config: HeadTrainConfig, progress: bool) -> list[HeadTask]:
    """Every (tokenizer, corpus) task with its examples: the only part that runs the model."""
    from transplant.evaluate import read_text
    from transplant.vocab.families import FAMILIES

    source_rows = base_model.get_input_embeddings().weight.shape[0]
    texts = [read_text(path, config.feature_tokens * 16) for path in corpora]
    if config.features == "source":
        features = [base_features(base_model, base_tokenizer, text, config.feature_tokens, progress) for text in texts]
        texts = [corpus_features.text for corpus_features in features]
    sampler = UnigramSampler(base_tokenizer, config.sampled_vocab_size, families=tuple(config.families or FAMILIES))
    generator = torch.Generator().manual_seed(config.seed)
    tasks = []
    per_corpus = config.tokenizers_per_corpus + len(real_tokenizers)
    with tqdm(total=len(texts) * per_corpus, desc=f"head tokenizers ({config.features} features)", unit="tokenizer", disable=not progress) as bar:
        for corpus, text in enumerate(texts):
            for index in range(per_corpus):
                if index < len(real_tokenizers):
                    tokenizer = real_tokenizers[index]
                else:
                    tokenizer = sampler.sample(_window(text, config.tokenizer_text_bytes, generator), generator)
                if config.features == "source":
                    task = HeadTask.from_source_features(tokenizer, base_vocab, source_rows, corpus, features[corpus])
                else:  # a window of its own per tokenizer: the contexts differ from one tokenizer to the next
                    window = _window(text, config.feature_tokens * 8, generator)
                    task = HeadTask.from_spelled_text(tokenizer, base_tokenizer, base_vocab, base_model, corpus, window, config.feature_tokens)
                if len(task.labels) and len(task.new):  # a tokenizer without new tokens has nothing to teach the head part
                    tasks.append(task)
                bar.update()
    if not tasks:
        raise TransplantError("no tokenizer has a new token with an example in this text: give more text")
    return tasks


def _kept_examples_record(directory: Path, model) -> dict:
    """An earlier run's inputs record, after checking that its examples are complete and come from
    the same model (the features are that model's hidden states). The record is written after
    the examples and determines them (model, corpora, tokenizers, settings), so its fingerprint
    stands for theirs without reading them twice."""
    record = directory / INPUTS_FILE
    if not record.is_file() or not (directory / TASKS_DIR / "examples.pt").is_file():
        raise TransplantError(f"{directory} holds no finished examples of a `hypernet train-head` run (OUT.run/ with {INPUTS_FILE} and {TASKS_DIR}/)")
    try:
        started = json.loads(record.read_text())
        damaged = not isinstance(started.get("corpora"), list)
    except (ValueError, AttributeError):
        damaged = True
    if damaged:
        raise TransplantError(f"{record} is damaged: it is not a `hypernet train-head` run's record")
    if started.get("model") != input_fingerprint(model):
        raise TransplantError(f"the examples in {directory} come from another model than {model}: their features would not fit it")
    return started


def _save_tasks(tasks: list[HeadTask], directory: Path) -> None:
    """The tasks' tokenizers and examples, so that a resumed run needs no model pass (features
    shared by several tasks are stored once)."""
    with atomic_directory(directory, overwrite=True) as tmp:
        for index, task in enumerate(tasks):
            task.tokenizer.save_pretrained(tmp / f"tokenizer-{index}")
        examples = [{"corpus": task.corpus, "hidden": task.hidden, "positions": task.positions, "labels": task.labels} for task in tasks]
        torch.save(examples, tmp / "examples.pt")


def _load_tasks(directory: Path, base_vocab: Vocabulary, source_rows: int) -> list[HeadTask]:
    from transplant.loading import load_tokenizer

    try:
        saved_tasks = torch.load(directory / "examples.pt", weights_only=True)
    except Exception as error:  # noqa: BLE001 - missing, truncated or foreign files raise many types
        raise TransplantError(f"cannot read the run's examples in {directory} ({str(error).splitlines()[0][:200]}); pass --overwrite to start over") from None
    tasks = []
    for index, saved in enumerate(saved_tasks):
        tokenizer = load_tokenizer(directory / f"tokenizer-{index}")
        mapping = build_mapping(base_vocab, Vocabulary.from_tokenizer(tokenizer), progress=False)
        tasks.append(HeadTask(mapping, source_rows, saved["corpus"], saved["hidden"], saved["positions"], saved["labels"], tokenizer))
    return tasks
