"""What a recipe may fetch for users online: MUSE dictionaries and the published fastText vectors,
each with an error that names the offline alternative."""

from __future__ import annotations

import shutil
from pathlib import Path

from transplant.errors import TransplantError
from transplant.files import atomic_file, cache_dir


MUSE_URL = "https://dl.fbaipublicfiles.com/arrival/dictionaries/{source}-{target}.txt"


def download_muse_dictionary(source: str, target: str, timeout: float = 20.0) -> Path:
    """The MUSE ``source-target`` dictionary (``word translation`` lines), cached."""
    from transplant.static.download import open_url

    directory = cache_dir() / "dictionaries"
    path = directory / f"muse-{source}-{target}.txt"
    if path.is_file():
        return path
    url = MUSE_URL.format(source=source, target=target)
    try:
        with atomic_file(path) as partial:
            response = open_url(url, timeout)
            with response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise TransplantError(f"could not download the MUSE dictionary {url} ({reason}); offline, pass --dictionary PATH (`{source}<TAB>{target}` word pairs)") from None
    return path


def published_vectors(language: str) -> Path:
    """The published ``cc.LANG.300.bin`` fastText model, downloaded once into the cache."""
    from transplant.static import download_fasttext_vectors

    try:
        return download_fasttext_vectors(language)
    except TransplantError as error:
        raise TransplantError(f"{error}; or use --vectors local to train fastText on the recipe's text") from None
