"""The transplant itself: new vocabulary tensors for a new tokenizer, in memory or on disk."""

from __future__ import annotations

import collections
import copy
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import init as initializers
from .checkpoint import open_checkpoint, read_tensor, write_checkpoint
from .errors import TransplantError
from .loading import load_model, load_tokenizer
from .vocab import Vocabulary, VocabMapping, add_missing_special_tokens, build_mapping

# Where an untied head goes in a checkpoint whose head was tied (every causal LM class here names it so)
UNTIED_HEAD_KEY = "lm_head.weight"
TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "decoder_start_token_id", "sep_token_id", "cls_token_id", "mask_token_id")
REPORT_FILE = "transplant_report.json"


@dataclass
class TransplantReport:
    method: str
    options: dict
    mapping: dict  # VocabMapping.summary()
    rules: dict[str, dict[str, int]]  # tensor role -> rule -> count
    token_rules: list[str]  # rule that set each new token's input embedding
    seconds: float = 0.0
    added_special_tokens: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # what the method measured (Initializer.report)

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "options": self.options,
            "vocabulary": self.mapping,
            "rules": self.rules,
            "added_special_tokens": self.added_special_tokens,
            "seconds": round(self.seconds, 2),
            "details": self.details,
            "token_rules": self.token_rules,
        }


def plan(source_tokenizer, target_tokenizer, add_missing: bool = False, progress: bool = True):
    """Map the target vocabulary onto the source one, checking the special tokens first."""
    source = Vocabulary.from_tokenizer(source_tokenizer)
    added = add_missing_special_tokens(source, target_tokenizer) if add_missing else []
    target = Vocabulary.from_tokenizer(target_tokenizer)
    mapping = build_mapping(source, target, progress=progress)
    if mapping.missing_special:
        described = ", ".join(f"{source.special[i]} ({_why_required(source, i)})" for i in mapping.missing_special)
        raise TransplantError(
            f"the new tokenizer lacks the model's special tokens {described}; train it with "
            "`transplant train-tokenizer --like MODEL` or pass --add-missing-special-tokens"
        )
    return mapping, target_tokenizer, added


def _why_required(source: Vocabulary, index: int) -> str:
    reasons = [source.role_of(index)] if source.role_of(index) else []
    if index in source.template_markers:
        reasons.append("chat template")
    return ", ".join(reasons)


def new_vocab_tensors(
    mapping: VocabMapping,
    tensors: dict[str, torch.Tensor],
    method: str | initializers.Initializer,
    options: dict,
    seed: int = 0,
    progress: bool = True,
    model: initializers.ModelAccess | None = None,
    tied: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Rebuild each vocabulary tensor (role -> tensor) for the target vocabulary with ``method``.

    ``model`` gives methods that run the model (tokendistill) the model and both tokenizers.
    When ``tied`` and the method unties the head, the result also has an "output" role, built
    from the tied matrix: the caller then stores a head of its own.
    """
    initializer = method if isinstance(method, initializers.Initializer) else initializers.get(method, **options)
    size = len(mapping.target)
    if tied and "output" not in tensors and initializer.unties_head():
        tensors = {**tensors, "output": tensors["input"]}  # the tied head is the input matrix
    out, rules = {}, {}
    for role, tensor in tensors.items():
        generator = torch.Generator().manual_seed(seed)
        source = tensor.float().reshape(tensor.shape[0], -1)
        inputs = initializers.InitInputs(mapping, source, role, generator, progress, model)
        chosen = initializer if role != "output_bias" or initializer.handles_bias else initializers.get("fvt")
        matrix, names = chosen.initialize(inputs, size)
        out[role] = matrix.reshape(size, *tensor.shape[1:]).to(tensor.dtype)
        rules[role] = names
    return out, rules


def _report(method, options, mapping, rules, seconds, added, details=None) -> TransplantReport:
    counts = {role: dict(collections.Counter(names)) for role, names in rules.items()}
    plain = {key: _plain(value) for key, value in options.items()}  # JSON-ready
    return TransplantReport(method, plain, mapping.summary(), counts, rules["input"], seconds, added, details or {})


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def remap_config(config: dict, mapping: VocabMapping) -> dict:
    """Config with the new vocabulary size and special-token ids pointing into the new vocabulary."""
    config = copy.deepcopy(config)
    if "vocab_size" in config:
        config["vocab_size"] = len(mapping.target)
    for sub in ("text_config", "decoder"):
        if isinstance(config.get(sub), dict) and "vocab_size" in config[sub]:
            config[sub]["vocab_size"] = len(mapping.target)
    for key in TOKEN_ID_KEYS:
        if key in config and config[key] is not None:
            config[key] = _remap_ids(config[key], mapping, key)
    return config


def _remap_ids(value, mapping: VocabMapping, key: str):
    if isinstance(value, list):
        mapped = [_remap_ids(v, mapping, key) for v in value]
        return [v for v in mapped if v is not None] or None
    candidates = [t for t, s in enumerate(mapping.matches) if s == value and mapping.match_kind[t] == "special"]
    # The same token (same text) first: it is what the model learned to emit, e.g. <|im_end|>
    # rather than a new tokenizer's own </s> that was matched to it only by role.
    content = mapping.source.special.get(value)
    candidates.sort(key=lambda t: mapping.target.special.get(t) != content)
    if candidates:
        return candidates[0]
    role = key.removesuffix("_token_id")
    return mapping.target.roles.get(role)


# ---------------------------------------------------------------------------------------------
# On disk: stream a checkpoint into a new directory


def convert(
    model: str | Path,
    new_tokenizer,
    out_dir: str | Path,
    method: str = "fvt",
    *,
    overwrite: bool = False,
    add_missing_special_tokens: bool = False,
    seed: int = 0,
    max_shard_bytes: int = 1 << 30,
    progress: bool = True,
    **options,
) -> TransplantReport:
    """Write ``out_dir``: ``model`` moved onto ``new_tokenizer``. Only vocabulary tensors are loaded
    (the whole model only for a method that runs it, such as tokendistill)."""
    started = time.perf_counter()
    initializer = initializers.get(method, **options)  # fail on a bad method or option before any heavy work
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise TransplantError(f"output {out_dir} exists; pass --overwrite to replace it")
    if overwrite and not options.get("resume"):
        shutil.rmtree(run_directory(out_dir), ignore_errors=True)  # start over, as --overwrite says
    checkpoint = open_checkpoint(model)
    source_tokenizer = load_tokenizer(checkpoint.directory)
    target_tokenizer = load_tokenizer(new_tokenizer) if not isinstance(new_tokenizer, PreTrainedTokenizerBase) else new_tokenizer
    mapping, target_tokenizer, added = plan(source_tokenizer, target_tokenizer, add_missing_special_tokens, progress)
    stored = {role: read_tensor(checkpoint, key) for role, key in checkpoint.vocab_keys.items()}
    access = initializers.ModelAccess(lambda: load_model(checkpoint.directory), source_tokenizer, target_tokenizer, run_directory(out_dir))
    tensors, rules = new_vocab_tensors(mapping, stored, initializer, options, seed, progress, access, checkpoint.tied)
    del stored  # the source rows are no longer needed; free them before copying the rest
    report = _report(method, options, mapping, rules, time.perf_counter() - started, added, initializer.report())
    config = remap_config(checkpoint.config, mapping)
    keys = dict(checkpoint.vocab_keys)
    if checkpoint.tied and "output" in tensors:  # the method untied the head: store it
        keys["output"] = UNTIED_HEAD_KEY
        config["tie_word_embeddings"] = False
    generation = _read_json(checkpoint.directory / "generation_config.json")
    _carry_model_conventions(source_tokenizer, target_tokenizer)
    write_checkpoint(
        checkpoint,
        out_dir,
        {keys[role]: tensor for role, tensor in tensors.items()},
        config,
        remap_config(generation, mapping) if generation is not None else None,
        target_tokenizer.save_pretrained,
        {REPORT_FILE: report.to_json()},
        overwrite=overwrite,
        max_shard_bytes=max_shard_bytes,
        progress=progress,
    )
    report.seconds = time.perf_counter() - started
    shutil.rmtree(access.run_dir, ignore_errors=True)  # the output is complete: its resume state is spent
    return report


def run_directory(out_dir: Path) -> Path:
    """Where a resumable method keeps its checkpoints while ``out_dir`` is being made."""
    return out_dir.parent / f".{out_dir.name}.convert-run"


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _carry_model_conventions(source_tokenizer, target_tokenizer) -> None:
    """What the model expects of its tokenizer: its chat template and the inputs it accepts.

    The template keeps working because its special tokens exist in the new vocabulary (checked
    by ``plan``); input names matter when e.g. a BERT tokenizer would add ``token_type_ids``
    that a causal LM rejects.
    """
    template = getattr(source_tokenizer, "chat_template", None)
    if template and not getattr(target_tokenizer, "chat_template", None):
        target_tokenizer.chat_template = template
    names = list(source_tokenizer.model_input_names)
    target_tokenizer.model_input_names = names
    target_tokenizer.init_kwargs["model_input_names"] = names  # what save_pretrained writes


# ---------------------------------------------------------------------------------------------
# In memory: the Python API for pipelines


def transplant(
    model: PreTrainedModel | str | Path,
    new_tokenizer,
    method: str = "fvt",
    *,
    source_tokenizer: PreTrainedTokenizerBase | None = None,
    add_missing_special_tokens: bool = False,
    seed: int = 0,
    progress: bool = True,
    **options,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, TransplantReport]:
    """Move ``model`` onto ``new_tokenizer`` in memory; returns (model, tokenizer, report).

    ``model`` is a loaded transformers model (then pass ``source_tokenizer``) or a path/hub id.
    """
    started = time.perf_counter()
    initializer = initializers.get(method, **options)
    if not isinstance(model, PreTrainedModel):
        source_tokenizer = source_tokenizer or load_tokenizer(model)
        model = load_model(model)
    if source_tokenizer is None:
        raise TransplantError("pass source_tokenizer= with an in-memory model")
    target_tokenizer = load_tokenizer(new_tokenizer) if not isinstance(new_tokenizer, PreTrainedTokenizerBase) else new_tokenizer
    mapping, target_tokenizer, added = plan(source_tokenizer, target_tokenizer, add_missing_special_tokens, progress)
    embeddings = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is embeddings.weight
    stored = {"input": embeddings.weight.detach()}
    if head is not None and not tied:
        stored["output"] = head.weight.detach()
    if head is not None and getattr(head, "bias", None) is not None:
        stored["output_bias"] = head.bias.detach()
    access = initializers.ModelAccess(lambda: copy.deepcopy(model), source_tokenizer, target_tokenizer)
    tensors, rules = new_vocab_tensors(mapping, stored, initializer, options, seed, progress, access, tied)
    if tied and "output" in tensors:  # the method untied the head
        tied = False
        model.config.tie_word_embeddings = False
    install_vocab_tensors(model, tensors, tied)
    for key, value in remap_config(model.config.to_dict(), mapping).items():
        if key == "vocab_size" or key in TOKEN_ID_KEYS:
            setattr(model.config, key, value)
    if getattr(model, "generation_config", None) is not None:
        for key in TOKEN_ID_KEYS:
            value = getattr(model.generation_config, key, None)
            if value is not None:
                setattr(model.generation_config, key, _remap_ids(value, mapping, key))
    _carry_model_conventions(source_tokenizer, target_tokenizer)
    report = _report(method, options, mapping, rules, time.perf_counter() - started, added, initializer.report())
    return model, target_tokenizer, report


def install_vocab_tensors(model: PreTrainedModel, tensors: dict[str, torch.Tensor], tied: bool) -> None:
    """Swap the vocabulary weights in place, keeping the modules (and subclasses like Gemma's)."""
    embeddings = model.get_input_embeddings()
    embeddings.weight = torch.nn.Parameter(tensors["input"].clone())
    embeddings.num_embeddings = tensors["input"].shape[0]
    if getattr(embeddings, "padding_idx", None) is not None:
        embeddings.padding_idx = None  # the old pad id means nothing in the new vocabulary
    head = model.get_output_embeddings()
    if head is None:
        return
    head.weight = embeddings.weight if tied else torch.nn.Parameter(tensors["output"].clone())
    if "output_bias" in tensors:
        head.bias = torch.nn.Parameter(tensors["output_bias"].clone())
    head.out_features = tensors["input"].shape[0]


def save(model: PreTrainedModel, tokenizer, out_dir: str | Path, report: TransplantReport | None = None, overwrite: bool = False) -> Path:
    """Save a transplanted model and its tokenizer atomically (never a half-written directory)."""
    from .checkpoint import atomic_directory

    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if report is not None:
            (tmp / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    return out_dir
