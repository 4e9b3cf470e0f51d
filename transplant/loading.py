"""Loading tokenizers and models from what users name: directories, files, GGUF, hub ids."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .checkpoint import looks_like_hub_id, open_checkpoint, quiet_transformers, resolve_model_dir
from .errors import TransplantError
from .remote_code import is_remote_code_refusal, remote_code_allowed, remote_code_error


def load_tokenizer(spec: str | os.PathLike):
    """A fast tokenizer from a tokenizer directory, a ``tokenizer.json``, a model dir or ``.gguf``."""
    from transformers import AutoTokenizer

    path = Path(spec)
    try:
        with quiet_transformers():
            if path.is_file() and path.suffix == ".json":
                return _from_tokenizer_json(path)
            if path.is_file() and path.suffix == ".gguf":
                path = resolve_model_dir(path)
            if path.is_dir():
                if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.txt")):
                    raise TransplantError(f"{path} holds no tokenizer (no tokenizer.json)")
                tokenizer = _as_saved(AutoTokenizer.from_pretrained(path, trust_remote_code=remote_code_allowed()), path)
            elif path.exists():
                raise TransplantError(f"{path} is not a tokenizer directory, tokenizer.json or .gguf file")
            elif looks_like_hub_id(spec):
                tokenizer = AutoTokenizer.from_pretrained(str(spec), trust_remote_code=remote_code_allowed())  # online
            else:
                raise TransplantError(f"tokenizer not found: {spec}")
    except TransplantError:
        raise
    except Exception as error:  # noqa: BLE001 - corrupt files, offline hub, ...
        if is_remote_code_refusal(error):
            raise remote_code_error(f"tokenizer {spec}") from None
        raise TransplantError(f"cannot load tokenizer {spec}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise TransplantError(f"{spec}: only fast (tokenizer.json) tokenizers are supported")
    return tokenizer


def _as_saved(tokenizer, directory: Path):
    """``tokenizer``, or the directory's ``tokenizer.json`` as saved where AutoTokenizer rebuilt
    the pipeline: for some model types (qwen2, ...) transformers forces its own tokenizer class,
    which rebuilds a byte-level pipeline around the vocabulary and would split the text of a
    transplanted SentencePiece or WordPiece tokenizer wrongly."""
    from transformers import PreTrainedTokenizerFast

    saved = directory / "tokenizer.json"
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not saved.is_file():
        return tokenizer
    expected, loaded = json.loads(saved.read_text(encoding="utf-8")), json.loads(backend.to_str())
    parts = ("normalizer", "pre_tokenizer")
    if all(expected.get(part) == loaded.get(part) for part in parts) and expected["model"].get("type") == loaded["model"].get("type"):
        return tokenizer
    return PreTrainedTokenizerFast.from_pretrained(directory)


def _from_tokenizer_json(path: Path):
    """A bare ``tokenizer.json``: roles come from a ``tokenizer_config.json`` beside it, if any."""
    from transformers import PreTrainedTokenizerFast

    config_path = path.with_name("tokenizer_config.json")
    roles = {}
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        roles = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    return PreTrainedTokenizerFast(tokenizer_file=str(path), **roles)


def require_causal(checkpoint, spec, purpose: str) -> None:
    """Refuse, in one line, a model that is not a causal language model for ``purpose``."""
    if checkpoint.auto_class != "AutoModelForCausalLM":
        kind = {"AutoModelForMaskedLM": "a masked", "AutoModelForSeq2SeqLM": "a sequence-to-sequence"}.get(checkpoint.auto_class, "not a causal")
        raise TransplantError(f"{purpose} trains causal language models; {spec} is {kind} language model ({checkpoint.config.get('model_type')})")


def load_model(spec: str | os.PathLike, dtype=None, causal_for: str | None = None):
    """A transformers model from a directory, ``.gguf`` file or hub id, with the right head class.

    ``causal_for`` names a use that needs a causal language model ("the hypernetwork"): any other
    model is refused in one line."""
    import torch
    import transformers

    checkpoint = open_checkpoint(spec)
    if causal_for is not None:
        require_causal(checkpoint, spec, causal_for)
    auto = getattr(transformers, checkpoint.auto_class)
    try:
        with quiet_transformers():
            model = auto.from_pretrained(checkpoint.directory, dtype=dtype or torch.float32, trust_remote_code=remote_code_allowed())
    except Exception as error:  # noqa: BLE001
        if is_remote_code_refusal(error):
            raise remote_code_error(f"model {spec}") from None
        raise TransplantError(f"cannot load model {spec}: {str(error).splitlines()[0]}") from None
    model.eval()
    return model
