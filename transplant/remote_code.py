"""Whether code shipped inside a model or tokenizer directory (``auto_map``) may run: never, unless
the user asked (``--trust-remote-code``, or ``with trusting_remote_code():`` in Python).

transformers asks ``[y/N]`` on a terminal when the argument is left unset; every load here passes
it explicitly, so nothing is ever asked and nothing runs unasked.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import TransplantError

_ALLOWED = contextvars.ContextVar("transplant_trust_remote_code", default=False)


def remote_code_allowed() -> bool:
    return _ALLOWED.get()


@contextmanager
def trusting_remote_code(allowed: bool = True) -> Iterator[None]:
    """Within this block, models and tokenizers may run the code their directories ship."""
    token = _ALLOWED.set(allowed)
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def set_remote_code_allowed(allowed: bool) -> None:
    """For the CLI: the whole process follows the user's flag."""
    _ALLOWED.set(allowed)


def is_remote_code_refusal(error: BaseException) -> bool:
    return isinstance(error, ValueError) and "trust_remote_code" in str(error)


def remote_code_error(what: str) -> TransplantError:
    return TransplantError(
        f"{what} ships its own Python code (auto_map); transplant runs none unless you pass --trust-remote-code"
    )
