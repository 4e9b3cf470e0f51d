"""Recipe steps that are built once and reused: each builds into its own directory under the
work directory through :func:`~transplant.files.atomic_directory` and records the parameters it was
built from in ``step.json``; a step whose record matches is reused (``--force`` rebuilds)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from transplant.files import atomic_directory, atomic_file, cache_dir
from transplant.text import read_lines, take_bytes


STEP_FILE = "step.json"


def fingerprint(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_id(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class Step:
    name: str
    directory: Path
    params: dict
    info: dict
    seconds: float
    reused: bool
    built_at: float | None = None  # when it was built: a rebuilt step gets a new id

    @property
    def id(self) -> str:
        """What later steps record about this one: its parameters and when it was built, so
        rebuilding a step (a removed directory, --force) rebuilds every step that used it."""
        return fingerprint(self.params if self.built_at is None else [self.params, self.built_at])


def run_step(work: Path, name: str, params: dict, build, force: bool = False, echo=print) -> Step:
    """Reuse ``work/name`` when its ``step.json`` records ``params``; else build it atomically.

    ``build(tmp)`` fills the temporary directory and returns a JSON-able ``info`` dict.
    """
    directory = work / name
    record = directory / STEP_FILE
    if not force and record.is_file():
        try:
            saved = json.loads(record.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("params") == json.loads(json.dumps(params, default=str)):
            echo(f"  {name}: done before, reused ({saved['seconds']:.1f} s then)")
            return Step(name, directory, params, saved["info"], saved["seconds"], True, saved.get("built_at"))
    started = time.perf_counter()
    with atomic_directory(directory, overwrite=True) as tmp:
        info = build(tmp) or {}
        seconds = time.perf_counter() - started
        record = {"params": params, "info": info, "seconds": seconds, "built_at": time.time()}
        (tmp / STEP_FILE).write_text(json.dumps(record, indent=1, default=str))
    saved = json.loads((directory / STEP_FILE).read_text())  # info as JSON gives it back, as a reused step would
    return Step(name, directory, params, saved["info"], seconds, False, saved["built_at"])


def text_slice(path: Path, budget: int) -> Path:
    """The leading lines of ``path`` within ``budget`` bytes, as a file in the cache that keeps its
    name and modification time (so fastText trained on it stays cached across runs)."""
    key = fingerprint([file_id(path), budget])
    target = cache_dir() / "recipes" / f"{path.stem}-{budget}-{key}.txt"
    if not target.is_file():
        with atomic_file(target) as partial:
            partial.write_text("\n".join(take_bytes(read_lines(path, "pass --source-corpus PATH"), budget)) + "\n", encoding="utf-8")
    return target


def link_tree(source: Path, target: Path) -> None:
    """``target`` as a copy of ``source`` made of hard links where the filesystem allows (no 500 MB copies)."""
    target.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        dest = target / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(exist_ok=True)
            continue
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)
