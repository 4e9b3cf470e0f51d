"""The published fastText Common Crawl vectors (``cc.LANG.300.bin``), downloaded once into a cache.

Each model is a ~4.5 GB download that unpacks to ~7 GB. Without internet the download fails at
once with a :class:`TransplantError` that says to pass a local file instead; it never waits long
(the connection, name lookup included, is bounded by ``timeout``).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import threading
import urllib.request
from pathlib import Path

from ..files import atomic_file, cache_dir
from ..errors import TransplantError
from .vectors import StaticVectors, load_vectors

CC_URL = "https://dl.fbaipublicfiles.com/fasttext/vectors-crawl/cc.{lang}.300.bin.gz"
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}$")


def open_url(url: str, timeout: float):
    """``urlopen`` in a daemon thread, so a name lookup that hangs cannot hold us past ``timeout``."""
    result: dict = {}

    def attempt():
        try:
            result["response"] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as error:  # noqa: BLE001 - handed to the caller below
            result["error"] = error

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 1)
    if "response" in result:
        return result["response"]
    raise ConnectionError(result.get("error") or f"no answer within {timeout:.0f} s")


def download_fasttext_vectors(lang: str, directory: Path | None = None, timeout: float = 20.0, url: str | None = None) -> Path:
    """Path of ``cc.{lang}.300.bin`` in the cache, downloading and unpacking it the first time."""
    if not LANGUAGE_CODE.match(lang):
        raise TransplantError(f"'{lang}' is not a language code (like en, de, sw)")
    directory = Path(directory) if directory is not None else cache_dir() / "fasttext"
    target = directory / f"cc.{lang}.300.bin"
    if target.is_file():
        return target
    url = url or CC_URL.format(lang=lang)
    try:
        with atomic_file(target) as partial:
            response = open_url(url, timeout)
            with response, gzip.GzipFile(fileobj=response) as unpacked, open(partial, "wb") as out:
                shutil.copyfileobj(unpacked, out, length=1 << 22)
    except (OSError, EOFError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise TransplantError(
            f"could not download {url} ({reason}); without internet, download cc.{lang}.300.bin elsewhere "
            "and pass its path to --source-vectors / --target-vectors"
        ) from None
    return target


def resolve_vectors(spec: str | os.PathLike, expected_dim: int | None = None) -> StaticVectors:
    """Vectors from a ``.bin``/``.vec`` path, or from a language code (downloads ``cc.LANG.300.bin``)."""
    path = Path(spec)
    if path.exists() or not LANGUAGE_CODE.match(str(spec)):
        return load_vectors(path, expected_dim)
    return load_vectors(download_fasttext_vectors(str(spec)), expected_dim)
