"""``omp``: the solver on random sparse signals, and the transplant through a donor model whose
embedding space is a known linear map of the base model's (the case OMP recovers exactly)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from tiny import ARCHITECTURES, byte_level_bpe, permuted, tiny_model
from transformers import AutoConfig, AutoModelForCausalLM

import transplant
import transplant.checkpoint
from transplant.checkpoint import open_checkpoint, read_tensor
from transplant.cli import main
from transplant.errors import TransplantError
from transplant.init import InitInputs, get
from transplant.init.omp import omp

SPARSITY = 3  # atoms behind every new token's donor row
K = 8  # atoms OMP may use: more than SPARSITY, far fewer than the donor's width
DONOR_WIDTH = 128  # wider than the base (32), as donors may be; in 32 dimensions 512 random atoms
# are too coherent for greedy pursuit to find every 3-atom support


def _shared_and_new(mapping):
    shared = [t for t, s in enumerate(mapping.matches) if s >= 0 and mapping.match_kind[t] == "exact"]
    new = [t for t, s in enumerate(mapping.matches) if s < 0]
    return shared, new


def _donor(directory, tokenizer, architecture, seed):
    """A random model of ``architecture`` for ``tokenizer`` with DONOR_WIDTH-wide embeddings."""
    kwargs = {**ARCHITECTURES[architecture], "hidden_size": DONOR_WIDTH, "num_hidden_layers": 1}
    config = AutoConfig.for_model(kwargs.pop("model_type"), vocab_size=len(tokenizer), **kwargs)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _relate(base_dir, donor_dir, mapping, keys, seed):
    """Rewrite the donor's and base's ``keys`` (base key, donor key) so that every new token's donor
    row is a combination of SPARSITY shared donor rows, and base rows of shared tokens are the
    donor rows times a random matrix M. Returns {base key: expected new base rows (donor @ M)}."""
    generator = torch.Generator().manual_seed(seed)
    shared, new = _shared_and_new(mapping)
    base_file, donor_file = base_dir / "model.safetensors", donor_dir / "model.safetensors"
    base, donor = load_file(base_file), load_file(donor_file)
    expected = {}
    for base_key, donor_key in keys:
        rows = donor[donor_key].clone()
        picks = torch.stack([torch.randperm(len(shared), generator=generator)[:SPARSITY] for _ in new])
        signs = torch.where(torch.rand(len(new), SPARSITY, generator=generator) < 0.5, -1.0, 1.0)
        weights = (1 + torch.rand(len(new), SPARSITY, generator=generator)) * signs
        rows[new] = (weights[..., None] * rows[torch.tensor(shared)][picks]).sum(1)
        donor[donor_key] = rows
        linear = torch.randn(rows.shape[1], base[base_key].shape[1], generator=generator)
        base_rows = base[base_key].clone()
        base_rows[[mapping.matches[t] for t in shared]] = rows[shared] @ linear
        base[base_key] = base_rows
        expected[base_key] = rows @ linear
    save_file(base, base_file, metadata={"format": "pt"})
    save_file(donor, donor_file, metadata={"format": "pt"})
    return expected


@pytest.fixture(scope="module")
def related(tmp_path_factory, source_tokenizer, target_tokenizer, mapping):
    """A tied llama base and a donor built for the target tokenizer, linearly related."""
    root = tmp_path_factory.mktemp("omp")
    base = tiny_model(root / "base", source_tokenizer, "llama", seed=0)
    donor = _donor(root / "donor", target_tokenizer, "llama", seed=1)
    expected = _relate(base, donor, mapping, [("model.embed_tokens.weight", "model.embed_tokens.weight")], seed=2)
    return {"root": root, "base": base, "donor": donor, "expected": expected["model.embed_tokens.weight"]}


def _close(actual, expected, tolerance=1e-4):
    return ((actual - expected).abs().max() / expected.abs().max()).item() < tolerance


# ---------------------------------------------------------------------------------------------
# The solver


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solver_finds_support_and_least_squares_coefficients(seed):
    generator = torch.Generator().manual_seed(seed)
    atoms, width, sparsity, signals = 300, 96, 6, 40
    dictionary = torch.randn(atoms, width, generator=generator)
    support = torch.stack([torch.randperm(atoms, generator=generator)[:sparsity] for _ in range(signals)])
    signs = torch.where(torch.rand(signals, sparsity, generator=generator) < 0.5, -1.0, 1.0)
    true = (1 + torch.rand(signals, sparsity, generator=generator)) * signs
    targets = (true[..., None] * dictionary[support]).sum(1)
    targets[-1] += 0.01 * torch.randn(width, generator=generator)  # one noisy signal: least squares, not exact

    indices, coefficients = omp(dictionary, targets, sparsity, batch=16)  # three batches
    assert indices.shape == coefficients.shape == (signals, sparsity)
    for row in range(signals):
        assert set(indices[row].tolist()) == set(support[row].tolist())
        chosen = dictionary[indices[row]].double().numpy()
        expected, *_ = np.linalg.lstsq(chosen.T, targets[row].double().numpy(), rcond=None)
        np.testing.assert_allclose(coefficients[row].numpy(), expected, rtol=1e-4, atol=1e-4)
    exact = (coefficients[:-1, :, None] * dictionary[indices[:-1]]).sum(1)
    assert _close(exact, targets[:-1], 1e-5)

    # with more atoms than the signal needs: the support is among them, the extra ones get ~0
    indices, coefficients = omp(dictionary, targets[:-1], 2 * sparsity)
    for row in range(signals - 1):
        picked = dict(zip(indices[row].tolist(), coefficients[row].tolist()))
        assert set(support[row].tolist()) <= set(picked)
        assert all(abs(c) < 1e-4 for i, c in picked.items() if i not in set(support[row].tolist()))


def test_solver_survives_duplicate_zero_and_exhausted_atoms():
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(5, 16, generator=generator)
    dictionary = torch.cat([base, base[:2], torch.zeros(2, 16)])  # duplicates and zero rows
    targets = torch.cat([base[0:1] + 2 * base[3:4], torch.zeros(1, 16), torch.randn(1, 16, generator=generator)])
    indices, coefficients = omp(dictionary, targets, 9)  # more atoms than the span has
    assert torch.isfinite(coefficients).all()
    assert len(set(indices[0].tolist())) == 9  # never the same atom twice
    rebuilt = (coefficients[..., None] * dictionary[indices]).sum(1)
    assert _close(rebuilt[:2], targets[:2], 1e-5)
    assert (rebuilt[2] - targets[2]).norm() < targets[2].norm()  # a best fit in a 5-dim span
    with pytest.raises(TransplantError, match="k >= 1"):
        omp(dictionary, targets, 0)


# ---------------------------------------------------------------------------------------------
# The transplant


def test_linearly_related_donor_recovers_new_rows(tmp_path, related, target_tokenizer):
    report = transplant.convert(related["base"], target_tokenizer, tmp_path / "out", method="omp", donor=str(related["donor"]), atoms=K, progress=False)
    new = read_tensor(open_checkpoint(tmp_path / "out"), "model.embed_tokens.weight")
    rows = [t for t, rule in enumerate(report.token_rules) if rule == "omp"]
    assert len(rows) > 200
    assert _close(new[rows], related["expected"][rows])
    # the fvt rows of the same model are nowhere near: the test is not trivially satisfied
    transplant.convert(related["base"], target_tokenizer, tmp_path / "fvt", method="fvt", progress=False)
    fvt = read_tensor(open_checkpoint(tmp_path / "fvt"), "model.embed_tokens.weight")
    assert not _close(fvt[rows], related["expected"][rows], 0.1)


def test_exact_matches_copied_and_rules(tmp_path, related, mapping, target_tokenizer):
    report = transplant.convert(related["base"], target_tokenizer, tmp_path / "out", method="omp", donor=str(related["donor"]), progress=False)
    new = read_tensor(open_checkpoint(tmp_path / "out"), "model.embed_tokens.weight")
    old = read_tensor(open_checkpoint(related["base"]), "model.embed_tokens.weight")
    shared, rest = _shared_and_new(mapping)
    assert set(report.rules["input"]) == {"exact", "special", "omp"}
    assert report.rules["input"] == {"exact": len(shared), "special": 3, "omp": len(rest)}
    for index, rule in enumerate(report.token_rules):
        if rule in ("exact", "special"):
            assert torch.equal(new[index], old[mapping.matches[index]])
    assert _close(new[rest], related["expected"][rest])  # the default k=64 recovers them too


def test_fewer_shared_tokens_than_k_uses_them_all(related, mapping, target_tokenizer):
    shared, _ = _shared_and_new(mapping)
    keep = set(shared[:20])  # the model shares only these 20 tokens with the new tokenizer
    few = dataclasses.replace(
        mapping,
        matches=[s if t in keep or kind == "special" else -1 for t, (s, kind) in enumerate(zip(mapping.matches, mapping.match_kind))],
        match_kind=[kind if t in keep or kind == "special" else None for t, kind in enumerate(mapping.match_kind)],
    )
    source = read_tensor(open_checkpoint(related["base"]), "model.embed_tokens.weight")
    inputs = InitInputs(few, source, "input", torch.Generator())
    with pytest.warns(UserWarning, match="only 20 shared tokens, fewer than atoms=64; using all of them"):
        matrix, rules = get("omp", donor=str(related["donor"])).initialize(inputs, len(target_tokenizer))
    assert rules.count("omp") == len(target_tokenizer) - 23 and rules.count("exact") == 20
    # every new row is a combination of the 20 shared base rows (a 20-dim subspace of 32)
    atoms = source[[mapping.matches[t] for t in sorted(keep)]].double()
    new = matrix[[t for t, rule in enumerate(rules) if rule == "omp"]].double()
    coefficients = torch.linalg.lstsq(atoms.T, new.T).solution
    assert _close((atoms.T @ coefficients).T, new, 1e-4)


def test_untied_model_uses_the_donors_output_head(tmp_path, source_tokenizer, target_tokenizer, mapping, monkeypatch):
    base = tiny_model(tmp_path / "base", source_tokenizer, "qwen2", seed=0)
    donor = _donor(tmp_path / "donor", target_tokenizer, "qwen2", seed=1)
    keys = [("model.embed_tokens.weight", "model.embed_tokens.weight"), ("lm_head.weight", "lm_head.weight")]
    expected = _relate(base, donor, mapping, keys, seed=3)
    reads = []
    real_read = transplant.checkpoint.read_tensor

    def counting_read(checkpoint, key):
        if checkpoint.directory == donor:
            reads.append(key)
        return real_read(checkpoint, key)

    monkeypatch.setattr(transplant.checkpoint, "read_tensor", counting_read)
    report = transplant.convert(base, target_tokenizer, tmp_path / "out", method="omp", donor=str(donor), atoms=K, progress=False)
    assert sorted(reads) == ["lm_head.weight", "model.embed_tokens.weight"]  # each donor tensor read once
    out = open_checkpoint(tmp_path / "out")
    assert not out.tied
    rows = [t for t, rule in enumerate(report.token_rules) if rule == "omp"]
    assert report.rules["output"]["omp"] == len(rows) > 200
    for key in ("model.embed_tokens.weight", "lm_head.weight"):
        assert _close(read_tensor(out, key)[rows], expected[key][rows]), key


# ---------------------------------------------------------------------------------------------
# Bad input


def test_errors(tmp_path, related, mapping, source_tokenizer, target_tokenizer):
    with pytest.raises(TransplantError, match="omp needs --donor"):
        get("omp")  # a required input is checked when the method is built, before any work
    with pytest.raises(TransplantError, match="omp needs --donor: a model that already uses the new tokenizer"):
        get("omp", atoms=8)
    with pytest.raises(TransplantError, match="omp needs --donor: a model that already uses the new tokenizer"):
        transplant.convert(related["base"], target_tokenizer, tmp_path / "a", method="omp", progress=False)
    with pytest.raises(TransplantError, match="omp: atoms must be an integer >= 1, not 0"):
        get("omp", donor=str(related["donor"]), atoms=0)
    with pytest.raises(TransplantError, match="omp: atoms must be an integer >= 1, not 2.5"):
        get("omp", donor=str(related["donor"]), atoms=2.5)
    with pytest.warns(FutureWarning, match="'k' is now called 'atoms'"):  # the old name still works
        assert get("omp", donor=str(related["donor"]), k=8).options.atoms == 8
    shuffled, _ = permuted(target_tokenizer)  # the same tokens at other ids
    for name, tokenizer in [("source", source_tokenizer), ("shuffled", shuffled)]:
        wrong = tiny_model(tmp_path / name, tokenizer, "llama")
        with pytest.raises(TransplantError, match="does not use the new tokenizer") as raised:
            transplant.convert(related["base"], target_tokenizer, tmp_path / "b", method="omp", donor=str(wrong), progress=False)
        assert "\n" not in str(raised.value)
    short = tmp_path / "short"  # the right tokenizer, but fewer embedding rows than tokens
    short.mkdir()
    for item in related["donor"].iterdir():
        (short / item.name).write_bytes(item.read_bytes())
    tensors = load_file(short / "model.safetensors")
    tensors["model.embed_tokens.weight"] = tensors["model.embed_tokens.weight"][:500].clone()
    save_file(tensors, short / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TransplantError, match=f"has 500 embedding rows, fewer than the new tokenizer's {len(target_tokenizer)} tokens"):
        transplant.convert(related["base"], target_tokenizer, tmp_path / "b", method="omp", donor=str(short), progress=False)
    with pytest.raises(TransplantError, match="omp donor: model not found"):
        transplant.convert(related["base"], target_tokenizer, tmp_path / "c", method="omp", donor=str(tmp_path / "nowhere"), progress=False)
    assert not any((tmp_path / name).exists() for name in "abc")
    nothing_shared = dataclasses.replace(mapping, matches=[-1] * len(mapping.matches), match_kind=[None] * len(mapping.matches))
    inputs = InitInputs(nothing_shared, torch.zeros(len(source_tokenizer), 32), "input", torch.Generator())
    with pytest.raises(TransplantError, match="no tokens shared"):
        get("omp", donor=str(related["donor"])).initialize(inputs, len(target_tokenizer))


def test_errors_on_the_command_line(tmp_path, related, target_tokenizer):
    target_tokenizer.save_pretrained(tmp_path / "tok")
    wrong = tiny_model(tmp_path / "wrong", byte_level_bpe(600), "llama")
    cases = {
        "no donor": [],
        "other tokenizer": ["--donor", wrong],
        "atoms=0": ["--donor", related["donor"], "--atoms", "0"],
    }
    for name, extra in cases.items():
        args = ["convert", related["base"], tmp_path / "tok", "-o", tmp_path / "out", "--method", "omp", "--quiet", *extra]
        result = CliRunner().invoke(main, [str(a) for a in args])
        lines_out = [line for line in result.output.splitlines() if line.strip()]
        usage = name == "atoms=0"  # a value out of the declared range is refused by the command line itself
        assert result.exit_code == (2 if usage else 1), (name, result.output)
        assert len(lines_out) == 1 and lines_out[0].startswith("Error: " if usage else "Error: omp"), (name, result.output)
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, ["methods"])
    assert result.exit_code == 0 and "omp" in result.output, result.output
