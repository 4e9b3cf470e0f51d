"""How an initialiser declares its options: once, in its ``Options`` dataclass, with
:func:`option`. The declaration carries everything the rest of the toolkit needs, so nothing
outside the method's file repeats it:

- ``convert``'s flags (``--k``, ``--temperature``, ...) are generated from it;
- ``transplant methods`` lists it;
- values given to :func:`transplant.convert` or on the command line are checked against it
  (type, range, choices) with one-line errors before any heavy work.

This module and the method files must stay importable without torch: ``transplant --help``
builds the flags of every method and has to answer in well under a second.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
from dataclasses import dataclass

from ..errors import TransplantError

KINDS = ("int", "float", "text", "path", "choice", "flag", "object")  # object: Python API only, unchecked
_KEY = "transplant.option"  # where a dataclass field keeps its declaration


@dataclass(frozen=True)
class OptionInfo:
    """One declared option of one method."""

    name: str
    kind: str  # one of KINDS
    default: object
    help: str
    minimum: float | None = None
    maximum: float | None = None
    above_minimum: bool = False  # the minimum itself is not allowed (e.g. a temperature > 0)
    choices: tuple[str, ...] | None = None
    repeatable: bool = False  # a list of values (a repeated flag on the command line)
    command_line: bool = True  # False: Python API only (a loaded object, a nested dict)
    accepts_objects: bool = False  # a path option that also takes an already loaded object

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str | None:
        """The default as help shows it; None for "not given" defaults (None, off, empty)."""
        if self.default is None or self.default is False or self.default in ([], {}):
            return None
        return str(self.default)

    def describe_range(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        low = None if self.minimum is None else (f"> {self.minimum:g}" if self.above_minimum else f">= {self.minimum:g}")
        high = None if self.maximum is None else f"<= {self.maximum:g}"
        number = "an integer" if self.kind == "int" else "a number"
        return " and ".join([f"{number} {low}" if low else number, *([high] if high else [])])


def option(
    default=None,
    help: str = "",
    *,
    kind: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above_minimum: bool = False,
    choices: tuple[str, ...] | None = None,
    repeatable: bool = False,
    command_line: bool = True,
    accepts_objects: bool = False,
):
    """A field of a method's ``Options`` dataclass. ``kind`` is inferred from the default
    (bool -> flag, int, float, str -> text; ``choices`` -> choice) and must be given when the
    default is None."""
    if kind is None:
        kind = _infer_kind(default, choices)
    if kind not in KINDS:
        raise ValueError(f"option kind must be one of {KINDS}, not {kind!r}")
    if kind == "object" and command_line:
        raise ValueError("an object option has no command-line form: declare it with command_line=False")
    if not help:
        raise ValueError("every option needs help text: it is what `convert --help` shows")
    info = OptionInfo(
        name="", kind=kind, default=default, help=help, minimum=minimum, maximum=maximum, above_minimum=above_minimum,
        choices=tuple(choices) if choices else None, repeatable=repeatable, command_line=command_line, accepts_objects=accepts_objects,
    )
    metadata = {_KEY: info}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _infer_kind(default, choices) -> str:
    if choices:
        return "choice"
    if isinstance(default, bool):
        return "flag"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "text"
    raise ValueError("give kind= for an option whose default is None")


def declared(options_class: type) -> list[OptionInfo]:
    """The declared options of an ``Options`` dataclass, in field order."""
    result = []
    for field in dataclasses.fields(options_class):
        info = field.metadata.get(_KEY)
        if info is None:
            raise TypeError(f"{options_class.__name__}.{field.name} is not declared with transplant.init.option()")
        result.append(dataclasses.replace(info, name=field.name))
    return result


def checked_value(method: str, info: OptionInfo, value, command_line: bool = False):
    """``value`` as the option's type, or a one-line TransplantError naming the method and the
    option (as its flag when ``command_line``, else by its Python name)."""
    if value is None and info.default is None:
        return None
    label = info.flag if command_line else info.name
    if info.repeatable and isinstance(value, (list, tuple)):
        return [_checked_one(method, info, label, item) for item in value]
    return _checked_one(method, info, label, value)


def _checked_one(method: str, info: OptionInfo, label: str, value):
    def refuse(expected: str):
        raise TransplantError(f"{method}: {label} must be {expected}, not {value!r}")

    if info.kind == "object":
        return value
    if info.kind == "flag":
        if not isinstance(value, bool):
            refuse("true or false")
        return value
    if info.kind in ("int", "float"):
        if isinstance(value, bool):
            refuse(info.describe_range())
        try:
            number = operator.index(value) if info.kind == "int" else float(value)
        except (TypeError, ValueError):
            refuse(info.describe_range())
        if not math.isfinite(number):
            refuse(info.describe_range())
        too_low = info.minimum is not None and (number <= info.minimum if info.above_minimum else number < info.minimum)
        too_high = info.maximum is not None and number > info.maximum
        if too_low or too_high:
            refuse(info.describe_range())
        return number
    if info.kind == "choice":
        if value not in info.choices:
            refuse(info.describe_range())
        return value
    if info.kind == "path":
        if isinstance(value, (str, os.PathLike)) or info.accepts_objects:
            return value
        refuse("a path")
    if not isinstance(value, str):
        refuse("text")
    return value


@dataclass
class SharedFlag:
    """One command-line flag that stands for the same-named option of one or more methods."""

    name: str
    kind: str
    repeatable: bool
    choices: tuple[str, ...] | None
    users: list[tuple[str, OptionInfo]]  # (method, its declaration)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def common_range(self) -> tuple[float | None, float | None, bool] | None:
        """(minimum, maximum, above_minimum) when every method declares the same range."""
        ranges = {(info.minimum, info.maximum, info.above_minimum) for _, info in self.users}
        return ranges.pop() if len(ranges) == 1 else None

    def help(self) -> str:
        """Each method's help and default; methods with the same help text are named together."""
        groups: dict[str, list[tuple[str, OptionInfo]]] = {}
        for method, info in self.users:
            groups.setdefault(info.help.rstrip("."), []).append((method, info))
        parts = []
        for text, users in groups.items():
            defaults = {method: info.default_text() for method, info in users if info.default_text() is not None}
            if len(set(defaults.values())) == 1 and len(defaults) == len(users):
                text += f" (default {next(iter(defaults.values()))})"
            elif defaults:
                text += " (default " + ", ".join(f"{method} {value}" for method, value in defaults.items()) + ")"
            parts.append(f"{', '.join(method for method, _ in users)}: {text}.")
        return " ".join(parts)


def shared_flags(methods: dict[str, list[OptionInfo]]) -> list[SharedFlag]:
    """The flags for the command-line options of ``methods`` ({name: declared options}): one per
    option name. Two methods may share a name only with the same kind; the flag is repeatable
    when any of them takes a list, and a choice offers every method's choices."""
    flags: dict[str, SharedFlag] = {}
    for method, infos in sorted(methods.items()):
        for info in infos:
            if not info.command_line:
                continue
            flag = flags.get(info.name)
            if flag is None:
                flags[info.name] = SharedFlag(info.name, info.kind, info.repeatable, info.choices, [(method, info)])
                continue
            if flag.kind != info.kind:
                other = flag.users[0][0]
                raise TypeError(f"option '{info.name}' is {info.kind} in method '{method}' but {flag.kind} in '{other}': rename one of them")
            flag.repeatable = flag.repeatable or info.repeatable
            if info.choices:
                flag.choices = tuple(dict.fromkeys([*(flag.choices or ()), *info.choices]))
            flag.users.append((method, info))
    return sorted(flags.values(), key=lambda flag: flag.name)
