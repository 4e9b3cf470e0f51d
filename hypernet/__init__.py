"""Zero-shot tokenizer transfer with a hypernetwork (ZeTT): train once per base model, then move
it onto any tokenizer with ``transplant convert ... --method hypernet --hypernet DIR``.

- :mod:`model`: the hypernetwork (residual over fvt) and batched prediction;
- :mod:`sampler`: the tokenizers it is trained on (sampled UnigramLM vocabularies, or given ones);
- :mod:`train`: the training loop (accelerate, checkpoints, exact resume);
- :mod:`io`: saving and loading, and the check that it meets the model it was trained for.
"""

from .io import load, save
from .model import Hypernet, HypernetConfig, predict
from .train import TrainConfig, create, train

__all__ = ["Hypernet", "HypernetConfig", "TrainConfig", "create", "load", "predict", "save", "train"]
