"""Methods describe themselves: one file declares a method's options, and `transplant methods`,
`convert --help`, `convert`'s flags and the option checks all come from that declaration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
import tiny

from transplant.errors import TransplantError
from transplant.init import available, method_class, option
from transplant.init.options import declared, shared_flags

TOY_METHOD = '''
"""``toy``: every new row is the mean source row times a constant."""

from dataclasses import dataclass

from transplant.init import Initializer, option, register


@dataclass
class ToyOptions:
    factor: float = option(2.0, "What the mean source row is multiplied by.", minimum=0, above_minimum=True)
    label: str = option("toy", "Rule name written to the conversion report.")


@register
class ToyInit(Initializer):
    name = "toy"
    Options = ToyOptions

    def rows(self, inputs, target_ids):
        mean = inputs.token_rows().mean(0) * self.options.factor
        return mean.expand(len(target_ids), -1).clone(), [self.options.label] * len(target_ids)
'''


def plugin_dir(root):
    """A directory that, on sys.path, holds a toy method module and the distribution metadata
    that registers it under the ``transplant.methods`` entry point (what `pip install` of a
    plugin package would leave behind)."""
    root.mkdir()
    (root / "toy_transplant_method.py").write_text(TOY_METHOD)
    info = root / "toy_transplant_method-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-transplant-method\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[transplant.methods]\ntoy = toy_transplant_method\n")
    return root


def transplant_cli(*args, path_dirs=(), cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path_dirs), os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "transplant.cli", *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_a_new_method_is_one_file(tmp_path):
    """A method module registered through the entry point appears in `transplant methods` and
    `convert --help`, its option becomes a flag, and a conversion uses it: cli.py is untouched."""
    plugins = plugin_dir(tmp_path / "plugins")
    listed = transplant_cli("methods", path_dirs=[plugins])
    assert listed.returncode == 0, listed.stderr
    toy_lines = [line for line in listed.stdout.splitlines() if line.startswith("toy ")]
    assert toy_lines == ["toy          every new row is the mean source row times a constant."]
    assert "--factor: What the mean source row is multiplied by (default 2.0)" in listed.stdout

    help_text = transplant_cli("convert", "--help", path_dirs=[plugins]).stdout
    assert "--factor FLOAT RANGE" in help_text and "toy: What the mean source row is multiplied by (default 2.0)." in " ".join(help_text.split())
    without = transplant_cli("convert", "--help").stdout
    assert "--factor" not in without  # the flag comes from the plugin alone

    model = tiny.tiny_model(tmp_path / "model", tiny.byte_level_bpe(300), "llama")
    target = tmp_path / "target"
    tiny.byte_level_bpe(400, start=600).save_pretrained(target)
    out = tmp_path / "out"
    done = transplant_cli("convert", model, target, "-o", out, "--method", "toy", "--factor", "3", "--label", "tripled", "--quiet", path_dirs=[plugins])
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "transplant_report.json").read_text())
    assert report["method"] == "toy" and report["options"] == {"factor": 3.0, "label": "tripled"}
    assert report["rules"]["input"].get("tripled", 0) > 0

    refused = transplant_cli("convert", model, target, "-o", tmp_path / "out2", "--method", "toy", "--factor", "0", path_dirs=[plugins])
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == ["Error: Invalid value for '--factor': 0.0 is not in the range x>0."]
    assert not (tmp_path / "out2").exists()


def test_listing_the_methods_loads_no_heavy_library():
    """Every method module is imported to build convert's flags; none may load torch,
    transformers, numpy or faiss doing so, or `--help` would take seconds."""
    probe = textwrap.dedent(
        """
        import sys
        from transplant.init import available, method_class
        for name in available():
            method_class(name).declared_options()
        import transplant.cli
        heavy = ("torch", "transformers", "numpy", "faiss", "fasttext", "entmax", "accelerate", "safetensors")
        loaded = [m for m in heavy if m in sys.modules and type(sys.modules[m]).__name__ != "_LazyModule"]
        print(",".join(loaded) or "none", len(available()))
        """
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, count = result.stdout.split()
    assert loaded == "none" and int(count) >= 10


def test_every_method_declares_options_with_help():
    for name in available():
        method = method_class(name)
        assert method.summary() and not method.summary().startswith("``"), name
        for info in method.declared_options():
            assert info.help and info.kind, (name, info.name)
    assert {flag.name for flag in shared_flags({n: method_class(n).declared_options() for n in available()})} >= {"k", "temperature", "weighting", "atoms", "anchors"}


def test_options_of_different_kinds_cannot_share_a_flag():
    @dataclass
    class Counted:
        size: int = option(3, "A count.", minimum=1)

    @dataclass
    class Named:
        size: str = option("large", "A name.")

    with pytest.raises(TypeError, match="option 'size' is text in method 'b' but int in 'a'"):
        shared_flags({"a": declared(Counted), "b": declared(Named)})


def test_a_shared_flag_explains_each_method():
    @dataclass
    class Few:
        k: int = option(3, "Neighbours mixed.", minimum=1)

    @dataclass
    class Many:
        k: int = option(10, "Neighbours mixed.", minimum=1)

    @dataclass
    class Atoms:
        k: int = option(64, "Atoms per token.", minimum=2)

    (flag,) = shared_flags({"few": declared(Few), "many": declared(Many), "atoms": declared(Atoms)})
    assert flag.help() == "atoms: Atoms per token (default 64). few, many: Neighbours mixed (default few 3, many 10)."
    assert flag.common_range() is None  # the ranges differ: the method's own check applies


def test_python_api_values_are_checked_like_flags():
    with pytest.raises(TransplantError, match=r"^fvt: weighting must be one of mean, length, not 'bytes'$"):
        method_class("fvt")(weighting="bytes")
    with pytest.raises(TransplantError, match=r"^tokendistill: snippets_per_token must be an integer >= 1, not True$"):
        method_class("tokendistill")(target_corpus="x.txt", snippets_per_token=True)
    with pytest.raises(TransplantError, match="must be a number > 0, not inf"):
        method_class("topk")(temperature=float("inf"))
