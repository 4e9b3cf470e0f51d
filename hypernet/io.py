"""A trained hypernetwork on disk: ``hypernet.json`` (config, base-model fingerprint) + safetensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from transplant.files import OutputClaim, atomic_directory
from transplant.finite import require_finite
from transplant.errors import TransplantError
from .model import Hypernet, HypernetConfig, fingerprint

CONFIG_FILE = "hypernet.json"
WEIGHTS_FILE = "hypernet.safetensors"
FORMAT = 1


def save(hypernet: Hypernet, directory: str | Path | OutputClaim, overwrite: bool = False, extra_files: dict[str, str] | None = None) -> Path:
    """Write ``directory`` atomically (never half-written); ``extra_files``: name -> text.

    ``directory`` may be an output a training run has already claimed."""
    for name, tensor in hypernet.state_dict().items():
        require_finite(tensor, f"hypernetwork weight {name}", "training diverged; lower the learning rate")
    if isinstance(directory, OutputClaim):
        with directory.partial() as tmp:
            _write(hypernet, tmp, extra_files)
        return directory.given
    directory = Path(directory)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        _write(hypernet, tmp, extra_files)
    return directory


def _write(hypernet: Hypernet, tmp: Path, extra_files: dict[str, str] | None) -> None:
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in hypernet.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS_FILE))
    (tmp / CONFIG_FILE).write_text(json.dumps({"format": FORMAT, **hypernet.config.to_json()}, indent=1) + "\n")
    for name, text in (extra_files or {}).items():
        (tmp / name).write_text(text)


def load(directory: str | Path) -> Hypernet:
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise TransplantError(f"{directory} is not a hypernetwork (no {CONFIG_FILE} and {WEIGHTS_FILE}); train one with `transplant hypernet train`")
    try:
        raw = json.loads(config_path.read_text())
        raw.pop("format", None)
        config = HypernetConfig(**raw)
    except (ValueError, TypeError) as error:
        raise TransplantError(f"{config_path} is not a valid hypernetwork config ({error})") from None
    hypernet = Hypernet(config)
    try:
        weights = load_file(str(weights_path))
        hypernet.load_state_dict(weights)
    except Exception as error:  # noqa: BLE001 - truncated file, wrong shapes
        raise TransplantError(f"cannot read {weights_path}: {str(error).splitlines()[0]}") from None
    for name, tensor in weights.items():
        require_finite(tensor, f"hypernetwork {directory} weight {name}")
    hypernet.eval()
    return hypernet


def check_base(hypernet: Hypernet, source: torch.Tensor, kind: str) -> None:
    """Refuse a base model other than the one the hypernetwork was trained for."""
    config = hypernet.config
    if kind not in config.kinds:
        raise TransplantError(f"this hypernetwork predicts {' and '.join(config.kinds)} embeddings, not {kind} (it was trained for {config.base_model})")
    if fingerprint(source) != config.fingerprints.get(kind):
        raise TransplantError(
            f"this hypernetwork was trained for {config.base_model} ({config.source_rows} x {config.embedding_dim} embeddings), "
            f"not for this model ({source.shape[0]} x {source.shape[1]})"
        )
