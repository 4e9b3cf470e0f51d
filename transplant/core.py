"""The transplant itself: new vocabulary tensors for a new tokenizer, in memory or on disk."""

from __future__ import annotations

import collections
import copy
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from . import init as initializers
from .checkpoint import OTHER_ROLE, open_checkpoint, read_tensor, vocabulary_axes, write_checkpoint
from .errors import TransplantError
from .files import OutputClaim, atomic_directory, input_fingerprint, refuse_other_inputs, refuse_overlap, remember_inputs
from .finite import describe_rows, nonfinite_rows, require_finite
from .loading import load_model, load_tokenizer
from .vocab import Vocabulary, VocabMapping, add_missing_special_tokens, build_mapping

# Where an untied head goes in a checkpoint whose head was tied (every causal LM class here names it so)
UNTIED_HEAD_KEY = "lm_head.weight"
TOKEN_ID_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "decoder_start_token_id", "sep_token_id", "cls_token_id", "mask_token_id")
REPORT_FILE = "transplant_report.json"
# ids a model generates or starts from: a config that names them needs them in the new vocabulary
REQUIRED_ROLE_IDS = ("bos_token_id", "eos_token_id")


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


def plan(source_tokenizer, target_tokenizer, add_missing: bool = False, progress: bool = True, config: dict | None = None):
    """Map the target vocabulary onto the source one, checking the special tokens first
    (those ``config`` names outside the roles, such as image tokens, included)."""
    source = Vocabulary.from_tokenizer(source_tokenizer)
    source.config_markers = {i for i in config_token_ids(config or {}) if i in source.special}
    added = add_missing_special_tokens(source, target_tokenizer) if add_missing else []
    target = Vocabulary.from_tokenizer(target_tokenizer)
    target.require_ordinary_tokens("the new tokenizer")
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
    if index in source.config_markers:
        reasons.append("named by the model config")
    return ", ".join(reasons)


def is_token_key(key: str) -> bool:
    """Config keys holding a token id: the roles, and names such as ``image_token_index``."""
    return key in TOKEN_ID_KEYS or bool(re.search(r"_token_(id|index)$", key))


def config_token_ids(config: dict) -> set[int]:
    """Token ids a config (and its nested text config) names under keys outside the roles."""
    found = {v for k, v in config.items() if is_token_key(k) and k not in TOKEN_ID_KEYS and isinstance(v, int)}
    for sub in ("text_config", "decoder"):
        if isinstance(config.get(sub), dict):
            found |= config_token_ids(config[sub])
    return found


def new_vocab_tensors(
    mapping: VocabMapping,
    tensors: dict[str, torch.Tensor],
    method: str,
    options: dict,
    seed: int = 0,
    progress: bool = True,
    model: initializers.ModelAccess | None = None,
    tied: bool = False,
    *,
    names: dict[str, str] | None = None,
    skip_nonfinite_rows: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Rebuild each vocabulary tensor (role -> tensor) for the target vocabulary with ``method``
    (a name, or an initialiser already built).

    ``model`` gives methods that run the model (tokendistill) the model and both tokenizers.
    When ``tied`` and the method unties the head, the result also has an "output" role, built
    from the tied matrix: the caller then stores a head of its own.

    A source row holding NaN or inf stops the transplant, naming the tensor (``names``: role ->
    tensor name) and the row, unless ``skip_nonfinite_rows``: then that token counts as missing
    from the source. A new row that comes out non-finite is never returned.
    """
    initializer = method if isinstance(method, initializers.Initializer) else initializers.get(method, **options)
    if tied and "output" not in tensors and initializer.unties_head(tensors["input"]):
        tensors = {**tensors, "output": tensors["input"]}  # the tied head is the input matrix
    names = names or {}
    sources = {role: tensor.float().reshape(tensor.shape[0], -1) for role, tensor in tensors.items()}
    unusable = _unusable_source_rows(sources, names, skip_nonfinite_rows)
    if unusable:
        mapping = mapping.without_source_ids(unusable)
        sources = {role: _neutralised(source, unusable, mapping) for role, source in sources.items()}
    size = len(mapping.target)
    out, rules = {}, {}
    for role, tensor in tensors.items():
        generator = torch.Generator().manual_seed(seed)
        kind = _tensor_kind(role, sources[role])
        inputs = initializers.InitInputs(mapping, sources[role], kind, generator, progress, model=model)
        chosen = initializer if kind != "output_bias" or initializer.handles_bias else initializers.get("fvt")
        matrix, rule_names = chosen.initialize(inputs, size)
        require_finite(matrix, f"the new {names.get(role, role)} built by '{chosen.name}'")
        out[role] = matrix.reshape(size, *tensor.shape[1:]).to(tensor.dtype)
        rules[role] = rule_names
    return out, rules


def _tensor_kind(role: str, rows: torch.Tensor) -> str:
    """What an initialiser is told it rebuilds: the role itself for embedding, head and head bias;
    another vocabulary tensor is a bias when it has one value per token (BART's
    final_logits_bias), an embedding otherwise (an untied BART's encoder embeddings)."""
    if not role.startswith(OTHER_ROLE):
        return role
    return "output_bias" if rows.shape[1] == 1 else "input"


def _unusable_source_rows(sources: dict[str, torch.Tensor], names: dict[str, str], skip: bool) -> set[int]:
    unusable: set[int] = set()
    for role, source in sources.items():
        bad = nonfinite_rows(source)
        if len(bad) and not skip:
            raise TransplantError(
                f"source tensor {names.get(role, role)} has non-finite values (NaN or inf) in {describe_rows(bad)}; "
                "pass --skip-nonfinite-rows to treat those tokens as missing"
            )
        unusable.update(bad.tolist())
    return unusable


def _neutralised(source: torch.Tensor, unusable: set[int], mapping: VocabMapping) -> torch.Tensor:
    """Bad rows replaced by the mean of the good token rows, so that no method that compares rows
    (neighbour search, means) ever reads a NaN; the mapping already copies nothing from them."""
    source = source.clone()
    good = [i for i, key in enumerate(mapping.source.canonical) if key is not None and i < len(source) and i not in unusable]
    if not good:
        raise TransplantError("every source embedding row is non-finite; the model is unusable")
    source[sorted(unusable)] = source[good].mean(0)
    return source


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
    for key in [k for k in config if is_token_key(k)]:
        if isinstance(config[key], (int, list)) and not isinstance(config[key], bool):
            old = config[key]
            config[key] = _remap_ids(old, mapping, key)
            if config[key] is None and key in REQUIRED_ROLE_IDS and _names_special_token(old, mapping):
                content = mapping.source.special[old if isinstance(old, int) else old[0]]
                raise TransplantError(
                    f"the model's config sets {key}={old} ({content}), which the new tokenizer lacks; train it with "
                    "`transplant train-tokenizer --like MODEL` or pass --add-missing-special-tokens"
                )
    for sub in ("text_config", "decoder"):  # a config that nests its text model (Gemma 3, ...)
        if isinstance(config.get(sub), dict):
            config[sub] = remap_config(config[sub], mapping)
    return config


def _names_special_token(value, mapping: VocabMapping) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, int) and v in mapping.source.special for v in values)


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
    if role not in mapping.target.roles:  # decoder_start: T5 starts with its pad token
        role = mapping.source.role_of(value) or role
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
    skip_nonfinite_rows: bool = False,
    seed: int = 0,
    max_shard_bytes: int = 1 << 30,
    progress: bool = True,
    **options,
) -> TransplantReport:
    """Write ``out_dir``: ``model`` moved onto ``new_tokenizer``. Only vocabulary tensors are loaded
    (the whole model only for a method that runs it, such as tokendistill).

    ``out_dir`` may not be, contain or lie inside any input; it is locked for the run and appears
    complete, or not at all.
    """
    started = time.perf_counter()
    initializer = initializers.get(method, **options)  # fail on a bad method or option before any heavy work
    inputs = [model, new_tokenizer, *_paths_in(options.values())]
    with OutputClaim(out_dir, inputs=inputs, overwrite=overwrite) as output:
        if overwrite and not options.get("resume"):
            shutil.rmtree(run_directory(out_dir), ignore_errors=True)  # start over, as --overwrite says
        checkpoint = open_checkpoint(model)
        refuse_overlap(out_dir, [checkpoint.directory])  # a .gguf's cached directory, a hub snapshot
        source_tokenizer = load_tokenizer(checkpoint.directory)
        target_tokenizer = load_tokenizer(new_tokenizer) if not isinstance(new_tokenizer, PreTrainedTokenizerBase) else new_tokenizer
        mapping, target_tokenizer, added = plan(source_tokenizer, target_tokenizer, add_missing_special_tokens, progress, checkpoint.config)
        # every vocabulary tensor with its vocabulary axis first, as the initialisers expect
        stored = {role: read_tensor(checkpoint, key).movedim(checkpoint.vocab_axis(key), 0) for role, key in checkpoint.vocab_keys.items()}
        access = initializers.ModelAccess(lambda: load_model(checkpoint.directory), source_tokenizer, target_tokenizer, run_directory(out_dir))
        resume = getattr(initializer.options, "resume", None)
        if resume is not None:  # a resumable method: a resume must see the inputs the run started with
            _check_resumable_inputs(access.run_dir, [model, new_tokenizer, *_paths_in(options.values())], bool(resume))
        tensors, rules = new_vocab_tensors(
            mapping, stored, initializer, options, seed, progress, access, checkpoint.tied,
            names=checkpoint.vocab_keys, skip_nonfinite_rows=skip_nonfinite_rows,
        )
        del stored  # the source rows are no longer needed; free them before copying the rest
        report = _report(method, options, mapping, rules, time.perf_counter() - started, added, initializer.report())
        config = remap_config(checkpoint.config, mapping)
        keys = dict(checkpoint.vocab_keys)
        if checkpoint.tied and "output" in tensors and "output" not in keys:  # the method untied the head: store it
            keys["output"] = UNTIED_HEAD_KEY
            config["tie_word_embeddings"] = False
        generation = _read_json(checkpoint.directory / "generation_config.json")
        _carry_model_conventions(source_tokenizer, target_tokenizer)
        write_checkpoint(
            checkpoint,
            output,
            {key: tensors[role].movedim(0, checkpoint.vocab_axis(key)) for role, key in keys.items()},
            config,
            remap_config(generation, mapping) if generation is not None else None,
            target_tokenizer.save_pretrained,
            {REPORT_FILE: report.to_json()},
            max_shard_bytes=max_shard_bytes,
            progress=progress,
        )
        shutil.rmtree(access.run_dir, ignore_errors=True)  # the output is complete: its resume state is spent
    report.seconds = time.perf_counter() - started
    return report


def _check_resumable_inputs(run_dir: Path, inputs: list, resume: bool) -> None:
    """Remember the inputs' fingerprints when a resumable run starts; refuse others on resume."""
    from .training import latest_checkpoint

    fingerprints = {"inputs": [input_fingerprint(i) if isinstance(i, (str, Path)) else "in memory" for i in inputs]}
    record = run_dir / "inputs.json"
    if resume:
        refuse_other_inputs(record, fingerprints)
    elif latest_checkpoint(run_dir) is None:  # a fresh start (an interrupted run is refused later)
        run_dir.mkdir(parents=True, exist_ok=True)
        remember_inputs(record, fingerprints)


def run_directory(out_dir: Path) -> Path:
    """Where a resumable method keeps its checkpoints while ``out_dir`` is being made."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.convert-run"


def _paths_in(values) -> list:
    """Every str/Path among option values (lists included): vectors, corpora, donors, hypernets."""
    found = []
    for value in values:
        if isinstance(value, (list, tuple)):
            found += _paths_in(value)
        elif isinstance(value, (str, Path)):
            found.append(value)
    return found


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
    skip_nonfinite_rows: bool = False,
    seed: int = 0,
    progress: bool = True,
    **options,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, TransplantReport]:
    """Move ``model`` onto ``new_tokenizer`` in memory; returns (model, tokenizer, report).

    ``model`` is a loaded transformers model (then pass ``source_tokenizer``) or a path/hub id.
    """
    from .loading import load_model

    started = time.perf_counter()
    initializer = initializers.get(method, **options)
    if not isinstance(model, PreTrainedModel):
        source_tokenizer = source_tokenizer or load_tokenizer(model)
        model = load_model(model)
    if source_tokenizer is None:
        raise TransplantError("pass source_tokenizer= with an in-memory model")
    target_tokenizer = load_tokenizer(new_tokenizer) if not isinstance(new_tokenizer, PreTrainedTokenizerBase) else new_tokenizer
    mapping, target_tokenizer, added = plan(source_tokenizer, target_tokenizer, add_missing_special_tokens, progress, model.config.to_dict())
    embeddings = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is embeddings.weight
    stored = {"input": embeddings.weight.detach()}
    if head is not None and not tied:
        stored["output"] = head.weight.detach()
    if head is not None and getattr(head, "bias", None) is not None:
        stored["output_bias"] = head.bias.detach()
    others = other_vocab_tensors(model)
    stored.update({OTHER_ROLE + name: tensor.detach().movedim(axis, 0) for name, (tensor, axis) in others.items()})
    access = initializers.ModelAccess(lambda: copy.deepcopy(model), source_tokenizer, target_tokenizer)
    tensors, rules = new_vocab_tensors(mapping, stored, initializer, options, seed, progress, access, tied, skip_nonfinite_rows=skip_nonfinite_rows)
    if tied and "output" in tensors:  # the method untied the head
        tied = False
        model.config.tie_word_embeddings = False
    install_vocab_tensors(model, tensors, tied)
    _install_other_vocab_tensors(model, {name: tensors[OTHER_ROLE + name].movedim(0, axis) for name, (_, axis) in others.items()})
    _remap_loaded_config(model.config, mapping)
    if getattr(model, "generation_config", None) is not None:
        for key, value in remap_config(model.generation_config.to_dict(), mapping).items():
            if is_token_key(key):
                setattr(model.generation_config, key, value)
    _carry_model_conventions(source_tokenizer, target_tokenizer)
    report = _report(method, options, mapping, rules, time.perf_counter() - started, added, initializer.report())
    return model, target_tokenizer, report


def _remap_loaded_config(config, mapping: VocabMapping) -> None:
    """``remap_config`` applied to a loaded config object, nested text config included."""
    remapped = remap_config(config.to_dict(), mapping)
    for holder, values in ((config, remapped), (getattr(config, "text_config", None), remapped.get("text_config"))):
        if holder is None or not isinstance(values, dict):
            continue
        for key, value in values.items():
            if key == "vocab_size" or is_token_key(key):
                setattr(holder, key, value)


def other_vocab_tensors(model: PreTrainedModel) -> dict[str, tuple[torch.Tensor, int]]:
    """Name -> (tensor, vocabulary axis) of the model's vocabulary-sized parameters and buffers
    other than the input embedding, the head and its bias (BART's final_logits_bias, ...)."""
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    claimed = {id(embeddings.weight)}
    if head is not None:
        claimed |= {id(head.weight), id(getattr(head, "bias", None))}
    tensors = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers(remove_duplicate=False))
    found: dict[str, tuple[torch.Tensor, int]] = {}
    for name, axis in vocabulary_axes(model).items():
        tensor = tensors[name]
        if id(tensor) not in claimed:
            claimed.add(id(tensor))  # tied aliases are rebuilt once
            found[name] = (tensor, axis)
    return found


def _install_other_vocab_tensors(model: PreTrainedModel, tensors: dict[str, torch.Tensor]) -> None:
    """Put rebuilt vocabulary tensors in place, as parameters or buffers like the originals."""
    for name, tensor in tensors.items():
        owner_name, _, attribute = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        if attribute in owner._parameters:
            setattr(owner, attribute, torch.nn.Parameter(tensor.clone(), requires_grad=owner._parameters[attribute].requires_grad))
        else:
            owner._buffers[attribute] = tensor.clone()


def install_vocab_tensors(model: PreTrainedModel, tensors: dict[str, torch.Tensor], tied: bool) -> None:
    """Swap the vocabulary weights in place, keeping the modules (and subclasses like Gemma's).

    Every module sharing the old weight gets the new one: a tied BART's encoder and decoder
    embeddings are modules of their own around the shared weight."""
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    old_head = head.weight if head is not None else None
    was_tied = old_head is embeddings.weight
    new_input = torch.nn.Parameter(tensors["input"].clone())
    _replace_weight(model, embeddings.weight, new_input)  # the head too, while it shares the weight
    if head is None:
        return
    if tied:
        head.weight = new_input
    elif was_tied:  # a method untied a tied head: the head alone gets rows of its own
        head.weight = torch.nn.Parameter(tensors["output"].clone())
    else:
        _replace_weight(model, old_head, torch.nn.Parameter(tensors["output"].clone()))
    if "output_bias" in tensors:
        head.bias = torch.nn.Parameter(tensors["output_bias"].clone())
    head.out_features = tensors["input"].shape[0]


def _replace_weight(model: PreTrainedModel, old: torch.nn.Parameter, new: torch.nn.Parameter) -> None:
    for module in model.modules():
        if module._parameters.get("weight") is old:
            module.weight = new
            if isinstance(module, torch.nn.Embedding):
                module.num_embeddings = new.shape[0]
                module.padding_idx = None  # the old pad id means nothing in the new vocabulary


def save(model: PreTrainedModel, tokenizer, out_dir: str | Path, report: TransplantReport | None = None, overwrite: bool = False) -> Path:
    """Save a transplanted model and its tokenizer atomically (never a half-written directory)."""
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite, inputs=[getattr(model, "name_or_path", None)]) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if report is not None:
            (tmp / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    return out_dir
