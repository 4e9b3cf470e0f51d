"""Files at the bottom of everything: the cache, and the one discipline every output follows.

Every command that writes an output directory goes through :class:`OutputClaim`:

- the output may not equal, contain or lie inside any input (a model, a tokenizer, a corpus);
- an exclusive lock on the output path is held for the whole run, so two runs never race for it;
- the result is written into a hidden ``.NAME.partial-PID-XXXX`` directory beside the output and
  renamed into place at the end, only if the output is still absent (or, with ``overwrite``, is
  still the very directory that was there when the run started): nothing that appeared at the
  output meanwhile is ever replaced;
- partial directories left by a killed run (their pid is gone) are removed by the next run.

Single cache files go through :func:`atomic_file` (written beside, then renamed).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import TransplantError

_PARTIAL = re.compile(r"\.(?P<name>.+)\.(?:partial|old)-(?P<pid>\d+)-[^/]*$")


def cache_dir() -> Path:
    """Where converted GGUF files, fastText models, downloads and hub text are kept."""
    return Path(os.environ.get("TRANSPLANT_CACHE", Path.home() / ".cache" / "transplant"))


def absolute(path: str | os.PathLike) -> Path:
    """The absolute path with symbolic links followed (``-o .`` becomes the directory's real name)."""
    return Path(os.path.realpath(os.path.expanduser(str(path))))


# ---------------------------------------------------------------------------------------------
# Outputs never touch inputs


def refuse_overlap(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Raise if ``output`` equals, contains or lies inside any input that exists on disk.

    Inputs that are not local paths (hub ids, in-memory objects, None) are ignored.
    """
    out = absolute(output)
    for given in inputs:
        if given is None or not isinstance(given, (str, os.PathLike)) or not os.path.exists(given):
            continue
        source = absolute(given)
        if out == source:
            raise TransplantError(f"output {output} is the input {given}; choose another output path")
        if out in source.parents:
            raise TransplantError(f"output {output} contains the input {given}; choose another output path")
        if source in out.parents:
            raise TransplantError(f"output {output} lies inside the input {given}; choose another output path")


# ---------------------------------------------------------------------------------------------
# Renames that never clobber (Linux renameat2; a check-then-rename fallback elsewhere)

_RENAME_NOREPLACE, _RENAME_EXCHANGE, _AT_FDCWD = 1, 2, -100


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """True when the kernel did it; False when renameat2 (or the flag) is unavailable here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return False
    result = call(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), ctypes.c_uint(flags))
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(target))


def rename_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; FileExistsError if anything is at ``target`` (even an empty dir)."""
    if _renameat2(source, target, _RENAME_NOREPLACE):
        return
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "exists", str(target))
    os.rename(source, target)


def exchange(first: Path, second: Path) -> None:
    """Swap two paths atomically where the kernel can; else move ``second`` aside and back."""
    if _renameat2(first, second, _RENAME_EXCHANGE):
        return
    aside = second.with_name(f".{second.name}.old-{os.getpid()}-swap")  # hidden; a killed run's is cleaned
    os.rename(second, aside)
    os.rename(first, second)
    os.rename(aside, first)


# ---------------------------------------------------------------------------------------------
# Claiming an output for a run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.lstat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def leftovers(target: str | os.PathLike) -> list[Path]:
    """Hidden partial (and moved-aside) directories of ``target`` whose owning process is gone."""
    target = absolute(target)
    if not target.parent.is_dir():
        return []
    found = []
    for entry in target.parent.iterdir():
        match = _PARTIAL.fullmatch(entry.name)
        if match and match["name"] == target.name and not _pid_alive(int(match["pid"])):
            found.append(entry)
    return sorted(found)


class OutputClaim:
    """The output of one run: checked against the inputs, locked, written aside, renamed at the end.

    Use as ``with OutputClaim(out, inputs=[...], overwrite=...) as claim:`` around the whole run,
    and ``with claim.partial() as tmp:`` around the writing. The lock is a hidden ``.NAME.lock``
    file beside the output, removed at the end.
    """

    def __init__(self, target: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False, wait: bool = False, what: str = "output"):
        self.given = Path(target)
        self.target = absolute(target)
        self.inputs = list(inputs)
        self.overwrite = overwrite
        self.what = what
        self.wait = wait  # block until another run releases the output (caches), instead of refusing
        self._lock_fd: int | None = None
        self._identity: tuple[int, int] | None = None

    # the run

    def __enter__(self) -> "OutputClaim":
        if self.target == Path(self.target.anchor):
            raise TransplantError(f"{self.what} {self.given} is a filesystem root; choose a directory to create")
        refuse_overlap(self.target, self.inputs)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            for stale in leftovers(self.target):
                shutil.rmtree(stale, ignore_errors=True)
            self._identity = _identity(self.target)
            if self._identity is not None and not self.overwrite:
                raise TransplantError(f"{self.what} {self.given} exists; pass --overwrite to replace it")
            if self._identity is not None and not self.target.is_dir():
                raise TransplantError(f"{self.what} {self.given} exists and is not a directory; remove it yourself")
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._unlock()

    @property
    def _lock_path(self) -> Path:
        return self.target.parent / f".{self.target.name}.lock"

    def _lock(self) -> None:
        lock_path = self._lock_path
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise TransplantError(f"another run (pid {holder}) is writing {self.given}; wait for it or choose another output") from None
            # the file may have been replaced between open and lock: then lock the new one
            if _identity(lock_path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            # Removed while still held: a run that opened the old file then finds, once it holds
            # the lock, that the path no longer names it, and starts over (see _lock).
            self._lock_path.unlink(missing_ok=True)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    # the writing

    @contextmanager
    def partial(self) -> Iterator[Path]:
        """Yield an empty hidden directory beside the output; on success it becomes the output."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.partial-{os.getpid()}-", dir=self.target.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the result should not be
        try:
            yield tmp
            fix_permissions(tmp, umask)
            self._publish(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; the old output after a swap

    def _publish(self, tmp: Path) -> None:
        current = _identity(self.target)
        if current is not None and current != self._identity:
            raise TransplantError(f"{self.given} appeared while this run was writing it; left it alone and kept nothing")
        if current is None:
            try:
                rename_no_replace(tmp, self.target)
            except FileExistsError:
                raise TransplantError(f"{self.given} appeared while this run was writing it; left it alone and kept nothing") from None
        else:  # --overwrite, and the output is still the directory the run started with
            exchange(tmp, self.target)


@contextmanager
def atomic_directory(target: str | os.PathLike, overwrite: bool = False, inputs: Iterable = ()) -> Iterator[Path]:
    """Claim ``target`` and yield a directory that becomes it on success (see :class:`OutputClaim`)."""
    with OutputClaim(target, inputs=inputs, overwrite=overwrite) as claim, claim.partial() as tmp:
        yield tmp


def fix_permissions(directory: Path, umask: int) -> None:
    """Files written through private temporary files (0600) get the mode the user's umask gives."""
    for root, _, names in os.walk(directory):
        for name in names:
            os.chmod(os.path.join(root, name), 0o666 & ~umask)


@contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden path beside ``target`` to write; it replaces ``target`` only on success.

    For cache entries, whose content is fixed by their name: a concurrent writer of the same
    entry writes the same bytes, so the last rename winning loses nothing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# What a resumed run checks: are these the inputs it started with?

_SAMPLE = 1 << 20


def _file_digest(path: Path) -> str:
    """Size plus a hash of the first and last MiB: cheap for multi-GB weights, and any rewrite of a
    text, any retrained tokenizer or converted model changes it."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(_SAMPLE))
        if size > 2 * _SAMPLE:
            handle.seek(-_SAMPLE, os.SEEK_END)
            digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()[:16]


def input_fingerprint(given: str | os.PathLike | None) -> str | None:
    """A short hash of a file, of a directory's files (not hidden ones, one level), or of a name
    that is not a local path (a hub id). None for None."""
    if given is None:
        return None
    path = Path(given)
    if path.is_file():
        return _file_digest(path)
    if path.is_dir():
        parts = sorted((entry.name, _file_digest(entry)) for entry in path.iterdir() if entry.is_file() and not entry.name.startswith("."))
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    return hashlib.sha256(str(given).encode()).hexdigest()[:16]


def refuse_other_inputs(record: Path, inputs: dict[str, object]) -> None:
    """On resume: refuse inputs (name -> fingerprint) other than those ``record`` remembers."""
    if not record.is_file():
        return
    started = json.loads(record.read_text())
    changed = sorted(name for name in set(started) | set(inputs) if started.get(name) != inputs.get(name))
    if changed:
        raise TransplantError(
            f"--resume with other inputs than the run started with ({', '.join(changed)}); "
            "give the original ones, or pass --overwrite to start over"
        )


def remember_inputs(record: Path, inputs: dict[str, object]) -> None:
    """At a fresh start: what a later resume must match."""
    with atomic_file(record) as partial:
        partial.write_text(json.dumps(inputs, indent=1) + "\n")


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
