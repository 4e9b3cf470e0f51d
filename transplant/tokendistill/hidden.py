"""Hidden states of a decoder at one layer, running the model only as far as that layer.

Token Distillation compares hidden states at one layer; the layers above it cannot change the
loss, so the forward pass stops there (on a CPU most of a step's time is the layers). Layer -1
is the model's final output (after its last norm), as in the paper; layer k >= 1 is the output
of the k-th decoder block (``hidden_states[k]`` in transformers' numbering).
"""

from __future__ import annotations

import torch

from ..errors import TransplantError


class _Stop(Exception):
    """Raised by the hook once the wanted layer has run."""


def decoder_layers(body) -> torch.nn.ModuleList:
    """The decoder blocks of a transformers base model: the ModuleList as long as its layer count."""
    count = getattr(body.config, "num_hidden_layers", None)
    for module in body.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise TransplantError(f"cannot find the decoder layers of {type(body).__name__}")


def resolve_layer(body, layer: int) -> int:
    """-1 (final output) or the 1-based block index that ``layer`` names (negative from the top)."""
    count = body.config.num_hidden_layers
    if layer == -1:
        return -1
    index = count + 1 + layer if layer < 0 else layer
    if not 1 <= index <= count:
        raise TransplantError(f"--distill-layer must be -1 (output) or name a layer 1..{count} (or -2..-{count}), not {layer}")
    return -1 if index == count and layer < 0 else index


def hidden_states(body, layer: int, final: bool = False, **inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(hidden states at ``layer``, final output if ``final``), stopping early when it can."""
    if layer == -1:
        out = body(**inputs).last_hidden_state
        return out, out
    captured = {}

    def hook(_module, _args, output):
        captured["hidden"] = output[0] if isinstance(output, tuple) else output
        if not final:
            raise _Stop

    handle = decoder_layers(body)[layer - 1].register_forward_hook(hook)
    try:
        last = body(**inputs).last_hidden_state
    except _Stop:
        last = None
    finally:
        handle.remove()
    return captured["hidden"], last
