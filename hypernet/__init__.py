"""Zero-shot tokenizer transfer with a hypernetwork (ZeTT): train once per base model, then move
it onto any tokenizer with ``transplant convert ... --method hypernet --hypernet DIR``.

- :mod:`model`: the hypernetwork (residual over fvt) and batched prediction;
- :mod:`sampler`: the tokenizers it is trained on (sampled vocabularies of five families, or given ones);
- :mod:`corpora`: several languages' text, mixed per step or per row;
- :mod:`training`: the training loop (accelerate, checkpoints, exact resume);
- :mod:`head_training`: a head of its own for a tied model, learned from the model's hidden states;
- :mod:`io`: saving and loading, and the check that it meets the model it was trained for;
- :mod:`builtin`: the hypernetworks shipped in ``builtin/``, found by the model's embedding rows.

The names below are imported on first use: the method's registration (:mod:`method`, loaded
through an entry point whenever ``transplant`` lists its methods) must not load torch.
"""

import importlib

_API = {
    "Hypernet": "model", "HypernetConfig": "model", "predict": "model",
    "load": "io", "save": "io",
    "TrainConfig": "training", "create": "training", "train": "training",
    "HeadTrainConfig": "head_training", "train_head": "head_training",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'hypernet' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value
