"""Reading Hugging Face checkpoints, finding their vocabulary tensors, and writing new ones.

Only the vocabulary-sized tensors are ever held in memory whole; every other tensor is streamed
from the source files (safetensors are memory-mapped) into output shards of bounded size.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from .errors import TransplantError
from .files import OutputClaim, cache_dir
from .remote_code import is_remote_code_refusal, remote_code_allowed, remote_code_error

SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_INDEX = "pytorch_model.bin.index.json"

@dataclass
class Checkpoint:
    """A model directory on disk and where its vocabulary tensors live."""

    directory: Path
    config: dict
    tensor_files: dict[str, Path]  # tensor name -> file holding it
    input_key: str
    output_key: str | None  # None when the head is tied and not stored
    output_bias_key: str | None  # e.g. BERT's MLM decoder bias
    tied: bool
    auto_class: str  # AutoModelForCausalLM / AutoModelForMaskedLM / AutoModelForSeq2SeqLM / AutoModel
    vocab_rows: int = 0
    # Other stored tensors with a vocabulary axis (BART's final_logits_bias [1, vocab], an untied
    # BART's encoder and decoder embeddings): tensor name -> the axis that runs over the vocabulary.
    other_vocab_axes: dict[str, int] = field(default_factory=dict)

    @property
    def vocab_keys(self) -> dict[str, str]:
        """Role -> tensor name, for the vocabulary tensors stored on disk: "input", "output",
        "output_bias", and ``OTHER_ROLE + name`` for each other vocabulary-sized tensor."""
        keys = {"input": self.input_key}
        if self.output_key:
            keys["output"] = self.output_key
        if self.output_bias_key:
            keys["output_bias"] = self.output_bias_key
        keys.update({OTHER_ROLE + name: name for name in self.other_vocab_axes})
        return keys

    def vocab_axis(self, key: str) -> int:
        """The axis of tensor ``key`` that runs over the vocabulary (0 for embeddings and heads)."""
        return self.other_vocab_axes.get(key, 0)


OTHER_ROLE = "other:"  # role prefix of vocabulary tensors that are neither embedding nor head


# ---------------------------------------------------------------------------------------------
# Resolving what the user named to a directory


def resolve_model_dir(spec: str | os.PathLike) -> Path:
    """A local model directory for ``spec``: a directory, a ``.gguf`` file, or a hub id."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".gguf":
        return gguf_to_directory(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise TransplantError(f"{path} is not a model directory: it has no config.json")
        return path
    if path.exists():
        raise TransplantError(f"{path} is neither a model directory nor a .gguf file")
    if looks_like_hub_id(spec):
        return _download(str(spec))
    raise TransplantError(f"model not found: {spec}")


def looks_like_hub_id(spec: str | os.PathLike) -> bool:
    """``owner/name`` that is not a local path: ``models/typo`` under an existing ``models/`` is
    a mistyped path, not a hub id (which would spend a minute retrying the network)."""
    text = str(spec)
    if text.count("/") != 1 or text.startswith((".", "/", "~")) or text.endswith("/"):
        return False
    return not os.path.isdir(text.split("/")[0])


def _download(repo_id: str) -> Path:
    """Fetch a model from the Hugging Face hub (needs internet; every test runs from local files)."""
    try:
        from huggingface_hub import snapshot_download

        patterns = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"]
        if remote_code_allowed():  # the repository's own code is fetched only when it may run
            patterns.append("*.py")
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as error:  # noqa: BLE001 - any hub failure becomes one line for the user
        raise TransplantError(f"could not load '{repo_id}' from the hub ({type(error).__name__}); pass a local directory") from None


def gguf_to_directory(gguf: Path) -> Path:
    """Convert a GGUF file once to a safetensors directory in the cache (loading GGUF takes ~25 s)."""
    stat = gguf.stat()
    digest = hashlib.sha1(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "gguf" / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file():
        return target
    # another process converting the same file: wait for it, then use its result
    with OutputClaim(target, overwrite=True, wait=True) as claim:
        if (target / "config.json").is_file():
            return target
        return _convert_gguf(gguf, claim)


def _convert_gguf(gguf: Path, claim: OutputClaim) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as error:  # noqa: BLE001
        raise TransplantError(f"could not read GGUF file {gguf}: {error}") from None
    if getattr(model, "hf_quantizer", None) is not None:
        # GGUF weights are dequantised to plain fp32 on load; only the marker remains.
        model.hf_quantizer.remove_quantization_config(model)
    with claim.partial() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return claim.target


@contextmanager
def quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # a bar per weight file is noise next to our own
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------------------------------
# Opening a checkpoint


def open_checkpoint(spec: str | os.PathLike) -> Checkpoint:
    directory = resolve_model_dir(spec)
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise TransplantError(f"cannot read {directory / 'config.json'}: {error}") from None
    tensor_files = _tensor_files(directory)
    names = list(tensor_files)
    module_keys, auto_class, other_axes = _vocab_module_keys(directory, names)
    input_key = _find_key(module_keys["input"], names)
    if input_key is None:
        raise TransplantError(f"{directory}: no input embedding tensor found (looked for {module_keys['input']})")
    output_key = None
    if module_keys.get("output") and input_key not in module_keys["output"]:
        output_key = _find_key(module_keys["output"], names)
    bias_key = _find_key(module_keys.get("output_bias"), names)
    tied = output_key is None
    rows = _tensor_shape(tensor_files[input_key], input_key)[0]
    known = {input_key, output_key, bias_key}
    others = {}
    for aliases, axis in other_axes:
        key = _find_key(aliases, names)
        if key is not None and key not in known:  # not stored (a non-persistent buffer): nothing to remap
            others[key] = axis
    checkpoint = Checkpoint(
        directory, config, tensor_files, input_key, output_key, bias_key, tied, auto_class, vocab_rows=rows, other_vocab_axes=others
    )
    _check_no_other_vocab_tensors(checkpoint)
    return checkpoint


def _tensor_files(directory: Path) -> dict[str, Path]:
    for index_name in (SAFETENSORS_INDEX, TORCH_INDEX):
        index = directory / index_name
        if index.is_file():
            weight_map = json.loads(index.read_text())["weight_map"]
            missing = {f for f in weight_map.values() if not (directory / f).is_file()}
            if missing:
                raise TransplantError(f"{directory}: shard(s) listed in {index_name} are missing: {', '.join(sorted(missing))}")
            return {name: directory / f for name, f in weight_map.items()}
    for single in ("model.safetensors", "pytorch_model.bin"):
        path = directory / single
        if path.is_file():
            return {name: path for name in _keys_in_file(path)}
    raise TransplantError(f"{directory}: no weights found (model.safetensors, sharded safetensors or pytorch_model.bin)")


def _keys_in_file(path: Path) -> list[str]:
    try:
        if path.suffix == ".safetensors":
            with safe_open(path, framework="pt") as handle:
                return list(handle.keys())
        return list(torch.load(path, map_location="meta", weights_only=True, mmap=True).keys())
    except Exception as error:  # noqa: BLE001
        raise TransplantError(f"cannot read weights {path}: {error}") from None


def _tensor_shape(path: Path, key: str) -> tuple[int, ...]:
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as handle:
            return tuple(handle.get_slice(key).get_shape())
    return tuple(torch.load(path, map_location="meta", weights_only=True, mmap=True)[key].shape)


# Head classes in the order they are tried for a config whose architecture none of them names.
_AUTO_CLASSES = {
    "AutoModelForCausalLM": "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES",
    "AutoModelForMaskedLM": "MODEL_FOR_MASKED_LM_MAPPING_NAMES",
    "AutoModelForSeq2SeqLM": "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES",
    "AutoModel": "MODEL_MAPPING_NAMES",
}


def _auto_class_order(config) -> list[str]:
    """The Auto classes to build ``config`` with: first the one whose mapping names the
    checkpoint's own architecture (T5ForConditionalGeneration -> AutoModelForSeq2SeqLM)."""
    from transformers.models.auto import modeling_auto

    architectures = getattr(config, "architectures", None) or []
    order = list(_AUTO_CLASSES)
    for auto_name, mapping_name in _AUTO_CLASSES.items():
        named = getattr(modeling_auto, mapping_name).get(config.model_type)
        named = named if isinstance(named, (list, tuple)) else [named]
        if any(architecture in named for architecture in architectures):
            order.remove(auto_name)
            return [auto_name, *order]
    if architectures and not any(a.endswith(("ForCausalLM", "LMHeadModel", "ForMaskedLM")) for a in architectures):
        return ["AutoModel", *order[:-1]]
    return order


def _vocab_module_keys(directory: Path, stored: list[str]) -> tuple[dict[str, list[str]], str, list[tuple[list[str], int]]]:
    """Build the model on the meta device and ask it which parameters hold the vocabulary.

    This is generic: whatever the architecture, ``get_input_embeddings`` and
    ``get_output_embeddings`` name the modules, so no per-model table is needed; every other
    tensor whose shape follows ``vocab_size`` is returned too (aliases, vocabulary axis). Each
    alias list also holds the ``stored`` names that transformers renames to one of its names on
    loading (GPT-NeoX stores its head as ``embed_out`` and loads it as ``lm_head``).
    """
    import transformers
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(directory, trust_remote_code=remote_code_allowed())
    except Exception as error:  # noqa: BLE001
        if is_remote_code_refusal(error):
            raise remote_code_error(f"model {directory}") from None
        raise TransplantError(f"{directory}: unreadable config.json ({error})") from None
    for auto_name in _auto_class_order(config):
        try:
            with torch.device("meta"), quiet_transformers():
                model = getattr(transformers, auto_name).from_config(config, trust_remote_code=remote_code_allowed())
        except (ValueError, KeyError):
            continue
        # A parameter can have several names (tied weights, BERT's decoder bias); keep them all
        # and let the checkpoint's own key names decide which one is stored.
        aliases: dict[int, list[str]] = {}
        for name, tensor in _named_tensors(model):
            aliases.setdefault(id(tensor), []).append(name)
        legacy = _legacy_names(model, stored)
        for names in aliases.values():
            names.extend(legacy[name] for name in list(names) if name in legacy)
        keys = {"input": aliases[id(model.get_input_embeddings().weight)]}
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is not None:
            keys["output"] = aliases[id(head.weight)]
            bias = getattr(head, "bias", None)
            if bias is not None and bias.dim() == 1:
                keys["output_bias"] = aliases[id(bias)]
        claimed = {name for names in keys.values() for name in names}
        by_name = dict(_named_tensors(model))
        others = [
            (aliases[id(by_name[name])], axis)
            for name, axis in vocabulary_axes(model).items()
            if name not in claimed and name == aliases[id(by_name[name])][0]
        ]
        return keys, auto_name, others
    raise TransplantError(f"{directory}: transformers cannot build model type '{config.model_type}'")


def _legacy_names(model, stored: list[str]) -> dict[str, str]:
    """Model name -> stored name for the checkpoint keys that transformers renames on loading
    (its per-architecture conversion mapping). Only plain renamings count: a tensor that is
    split or merged on loading is not a vocabulary tensor of any model transplant handles."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key

        transforms = get_model_conversion_mapping(model)
        renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
        converters = [t for t in transforms if isinstance(t, WeightConverter)]
        renamed = {name: rename_source_key(name, renamings, converters)[0] for name in stored}
    except (ImportError, AttributeError, TypeError):  # a transformers without conversion mappings
        return {}
    return {new: old for old, new in renamed.items() if new != old}


def _named_tensors(model):
    """Every parameter and buffer under each of its names (tied ones repeat)."""
    yield from model.named_parameters(remove_duplicate=False)
    yield from model.named_buffers(remove_duplicate=False)


def vocabulary_axes(model) -> dict[str, int]:
    """Name -> vocabulary axis of every parameter and buffer of ``model`` whose shape follows
    its config's ``vocab_size``: found by building the same class on the meta device with one
    more token and comparing shapes, so no list of architectures (or of names such as
    ``final_logits_bias``) is needed."""
    import copy

    config = copy.deepcopy(model.config)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    size = getattr(text_config, "vocab_size", None)
    if size is None:
        return {}
    for holder in {id(config): config, id(text_config): text_config}.values():
        if getattr(holder, "vocab_size", None) is not None:
            holder.vocab_size = size + 1
    with torch.device("meta"), quiet_transformers():
        grown = type(model)._from_config(config)
    grown_shapes = {name: tuple(tensor.shape) for name, tensor in _named_tensors(grown)}
    axes = {}
    for name, tensor in _named_tensors(model):
        other = grown_shapes.get(name)
        if other is not None and other != tuple(tensor.shape) and len(other) == tensor.dim():
            axes[name] = next(axis for axis, (a, b) in enumerate(zip(tensor.shape, other)) if a != b)
    return axes


def _find_key(aliases: list[str] | None, names: list[str]) -> str | None:
    """The checkpoint tensor for a parameter; checkpoints may drop or add a module prefix."""
    for alias in aliases or []:
        if alias in names:
            return alias
    for alias in aliases or []:
        parts = alias.split(".")
        for start in range(len(parts)):  # the whole alias under a prefix first, then shorter tails
            suffix = ".".join(parts[start:])
            hits = [n for n in names if n == suffix or n.endswith("." + suffix)]
            if len(hits) == 1:
                return hits[0]
    return None


def _check_no_other_vocab_tensors(checkpoint: Checkpoint) -> None:
    """A safety net for tensors the model class does not know (so ``vocabulary_axes`` cannot
    see them) that look like vocabulary tensors: refuse rather than copy them unchanged."""
    known = set(checkpoint.vocab_keys.values())
    rows = checkpoint.vocab_rows
    by_file: dict[Path, list[str]] = {}
    for name, path in checkpoint.tensor_files.items():
        if name not in known and path.suffix == ".safetensors":
            by_file.setdefault(path, []).append(name)
    for path, names in by_file.items():
        with safe_open(path, framework="pt") as handle:
            for name in names:
                shape = handle.get_slice(name).get_shape()
                if len(shape) >= 1 and shape[0] == rows and "embed" in name and "position" not in name:
                    raise TransplantError(f"{checkpoint.directory}: vocabulary-sized tensor '{name}' has no known role; transplant cannot remap it")


def read_tensor(checkpoint: Checkpoint, key: str) -> torch.Tensor:
    path = checkpoint.tensor_files[key]
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as handle:
            return handle.get_tensor(key)
    return torch.load(path, map_location="cpu", weights_only=True, mmap=True)[key].clone()


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass
class ShardWriter:
    """Collects tensors into safetensors shards of at most ``max_bytes`` and writes the index."""

    directory: Path
    max_bytes: int
    _pending: dict[str, torch.Tensor] = field(default_factory=dict)
    _pending_bytes: int = 0
    _shards: list[list[str]] = field(default_factory=list)

    def add(self, name: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self._pending and self._pending_bytes + size > self.max_bytes:
            self._flush()
        self._pending[name] = tensor.contiguous()
        self._pending_bytes += size

    def _flush(self) -> None:
        index = len(self._shards)
        save_file(self._pending, self.directory / f"shard-{index:05d}.tmp", metadata={"format": "pt"})
        self._shards.append(list(self._pending))
        self._pending, self._pending_bytes = {}, 0

    def close(self) -> None:
        if self._pending or not self._shards:
            self._flush()
        count = len(self._shards)
        if count == 1:
            os.replace(self.directory / "shard-00000.tmp", self.directory / "model.safetensors")
            return
        weight_map, total = {}, 0
        for index, names in enumerate(self._shards):
            name = f"model-{index + 1:05d}-of-{count:05d}.safetensors"
            os.replace(self.directory / f"shard-{index:05d}.tmp", self.directory / name)
            weight_map.update({n: name for n in names})
            total += (self.directory / name).stat().st_size
        index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (self.directory / SAFETENSORS_INDEX).write_text(json.dumps(index_doc, indent=2))


def stream_tensors(checkpoint: Checkpoint, skip: set[str], progress: bool = True):
    """Yield ``(name, tensor)`` for every stored tensor except ``skip``, one at a time."""
    by_file: dict[Path, list[str]] = {}
    for name, path in checkpoint.tensor_files.items():
        if name not in skip:
            by_file.setdefault(path, []).append(name)
    total = sum(len(v) for v in by_file.values())
    bar = tqdm(total=total, desc="copying tensors", unit="tensor", disable=not progress)
    for path, names in by_file.items():
        if path.suffix == ".safetensors":
            for name in names:
                # One handle per tensor: every tensor from a handle keeps that handle's memory map
                # of the whole file alive, and each page read through it stays resident while it
                # lives, so a handle per file held a whole source shard (an unsharded model: all of
                # it) in RSS. A map per tensor is unmapped once the shard holding it is written.
                with safe_open(path, framework="pt") as handle:
                    tensor = handle.get_tensor(name)
                yield name, tensor
                del tensor
                bar.update()
        else:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            for name in names:
                yield name, state[name]
                bar.update()
            del state
    bar.close()


def write_checkpoint(
    checkpoint: Checkpoint,
    output: OutputClaim,
    vocab_tensors: dict[str, torch.Tensor],
    config: dict,
    generation_config: dict | None,
    save_tokenizer,
    extra_json: dict[str, dict],
    max_shard_bytes: int = 1 << 30,
    progress: bool = True,
) -> None:
    """Write a loadable model directory: new vocabulary tensors, every other tensor copied as is."""
    with output.partial() as tmp:
        writer = ShardWriter(tmp, max_shard_bytes)
        for name, tensor in vocab_tensors.items():
            writer.add(name, tensor)
        for name, tensor in stream_tensors(checkpoint, skip=set(vocab_tensors), progress=progress):
            writer.add(name, tensor)
        writer.close()
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        if generation_config is not None:
            (tmp / "generation_config.json").write_text(json.dumps(generation_config, indent=2) + "\n")
        save_tokenizer(tmp)
        for name, document in extra_json.items():
            (tmp / name).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
