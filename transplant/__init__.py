"""transplant: move a pretrained language model onto a new tokenizer.

    import transplant
    model, tokenizer, report = transplant.transplant("path/to/model", "path/to/tokenizer", method="fvt")
    transplant.save(model, tokenizer, "out/")
    transplant.convert("path/to/model", "path/to/tokenizer", "out/", method="fvt")  # streaming, on disk
"""

from .core import TransplantReport, convert, save, transplant
from .errors import TransplantError
from .init import available as available_methods
from .loading import load_model, load_tokenizer
from .remote_code import trusting_remote_code

__all__ = [
    "TransplantError",
    "TransplantReport",
    "available_methods",
    "convert",
    "load_model",
    "load_tokenizer",
    "save",
    "transplant",
    "trusting_remote_code",
]
__version__ = "0.1.0"
