"""Which student weights distillation trains: embeddings only, LoRA adapters (peft), or all."""

from __future__ import annotations

import torch

from ..errors import TransplantError

TRAIN_MODES = ("embeddings", "lora", "full")
DEFAULT_LEARNING_RATES = {"embeddings": 3e-4, "lora": 2e-4, "full": 3e-5}


def _embedding_weights(model) -> list[torch.nn.Parameter]:
    """Input embeddings and, when untied, the output head (and its bias): the new-vocabulary rows."""
    found = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None:
        for param in (head.weight, getattr(head, "bias", None)):
            if param is not None and all(param is not p for p in found):
                found.append(param)
    return found


def prepare_trainable(model, mode: str, lora_rank: int = 16):
    """Freeze what ``mode`` leaves alone; returns the (possibly peft-wrapped) model."""
    if mode not in TRAIN_MODES:
        raise TransplantError(f"--train must be one of {', '.join(TRAIN_MODES)}, not '{mode}'")
    if mode == "full":
        model.requires_grad_(True)
        return model
    if mode == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, lora_dropout=0.0, target_modules="all-linear")
        model = get_peft_model(model, config)
    else:
        model.requires_grad_(False)
    # the new vocabulary's rows are what a transplant changed: they are trained in every mode
    for param in _embedding_weights(model):
        param.requires_grad_(True)
    return model


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def finished_model(model):
    """A plain transformers model again: LoRA adapters merged into the weights they adapt."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model
