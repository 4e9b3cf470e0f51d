"""``topk`` and ``tokenadapt``: neighbour-based initialisers in the model's own embedding space,
checked against brute-force cosine similarities and TokenAdapt's formulas written out by hand."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from tiny import tiny_model, wordpiece

import transplant
from transplant import init as initializers
from transplant.checkpoint import open_checkpoint, read_tensor
from transplant.cli import main
from transplant.errors import TransplantError

EMBED = "model.embed_tokens.weight"


@pytest.fixture(scope="module")
def old(llama):
    return read_tensor(open_checkpoint(llama), EMBED).float()


def _initialize(mapping, source, method, **options):
    inputs = initializers.InitInputs(mapping, source, "input", torch.Generator().manual_seed(0))
    return initializers.get(method, **options).initialize(inputs, len(mapping.target))


def _candidates(mapping, rows):
    """Source ids of real tokens: no special tokens, nothing beyond the matrix."""
    return torch.tensor([i for i, key in enumerate(mapping.source.canonical) if key is not None and i < len(rows)])


def _fvt(mapping, rows, target_id):
    """The query: fvt's default estimate, pieces weighted by their byte length."""
    pieces = mapping.pieces[target_id]
    lengths = torch.tensor([float(max(len(mapping.source.surface(p)), 1)) for p in pieces])
    return (rows[pieces] * lengths[:, None]).sum(0) / lengths.sum()


def _cosine_to_candidates(mapping, rows, query):
    ids = _candidates(mapping, rows)
    sims = torch.nn.functional.normalize(rows[ids], dim=-1) @ torch.nn.functional.normalize(query, dim=0)
    return sims, ids


def _brute_topk(mapping, rows, target_id, k):
    sims, ids = _cosine_to_candidates(mapping, rows, _fvt(mapping, rows, target_id))
    best = sims.topk(k)
    return best.values, ids[best.indices]


def test_topk_with_k1_copies_the_nearest_source_row(mapping, old):
    new, rules = _initialize(mapping, old, "topk", k=1, temperature=1e-4)
    checked = 0
    for target_id, rule in enumerate(rules):
        if rule != "topk":
            continue
        sims, ids = _cosine_to_candidates(mapping, old, _fvt(mapping, old, target_id))
        best = ids[sims.argmax()]
        if not torch.equal(new[target_id], old[best]):  # a near tie may pick the runner-up
            chosen = [i for i in ids.tolist() if torch.equal(new[target_id], old[i])]
            assert chosen and sims[ids.tolist().index(chosen[0])] >= sims.max() - 1e-5
        checked += 1
    assert checked > 200
    specials = [i for i, key in enumerate(mapping.source.canonical) if key is None]
    assert specials and not any(torch.equal(new[t], old[s]) for t, r in enumerate(rules) if r == "topk" for s in specials)


def test_topk_rows_are_convex_combinations_of_their_neighbours(mapping, old):
    k, temperature = 5, 0.1
    new, rules = _initialize(mapping, old, "topk", k=k, temperature=temperature)
    targets = [t for t, rule in enumerate(rules) if rule == "topk"][:60]
    assert len(targets) == 60
    for target_id in targets:
        sims, neighbours = _brute_topk(mapping, old, target_id, k)
        # recover the weights from the row itself: least squares over the k neighbour rows
        # (k < width, so they are unique), then compare with softmax(similarity / T)
        basis = old[neighbours].T.double()
        weights = torch.linalg.lstsq(basis, new[target_id].double().unsqueeze(1)).solution.squeeze(1)
        assert torch.allclose((basis @ weights).float(), new[target_id], atol=1e-5)
        assert weights.sum().item() == pytest.approx(1.0, abs=1e-4)
        assert (weights >= -1e-5).all()
        expected = torch.softmax(sims.double() / temperature, dim=0)
        assert torch.allclose(weights, expected, atol=1e-3)


def _local_by_hand(mapping, rows, target_id, temperature):
    """TokenAdapt's local heuristic with the FVT estimate as the "full token" vector:
    w = softmax(((softmax(cos(piece, full)) + bytes(piece) / bytes(token)) / 2) / T)."""
    pieces = mapping.pieces[target_id]
    full = _fvt(mapping, rows, target_id)
    sims = torch.stack([torch.nn.functional.cosine_similarity(rows[p], full, dim=0) for p in pieces])
    lengths = torch.tensor([float(len(mapping.source.surface(p))) for p in pieces])
    share = lengths / lengths.sum()
    weights = torch.softmax(((torch.softmax(sims, 0) + share) / 2) / temperature, 0)
    return (weights[:, None] * rows[pieces]).sum(0)


def _global_by_hand(mapping, rows, target_id, k, temperature, threshold):
    """Top-k neighbours of the FVT estimate, softmax(sim / T), neighbours below the threshold dropped."""
    sims, neighbours = _brute_topk(mapping, rows, target_id, k)
    keep = sims >= threshold
    weights = torch.softmax(sims[keep] / temperature, 0)
    return (weights[:, None] * rows[neighbours[keep]]).sum(0)


def test_tokenadapt_is_the_local_and_global_estimates_mixed(mapping, old):
    k, temperature = 3, 0.3
    local, local_rules = _initialize(mapping, old, "tokenadapt", weight=0.0, threshold=-1.0)
    global_, _ = _initialize(mapping, old, "tokenadapt", weight=1.0, threshold=-1.0)
    hybrid, _ = _initialize(mapping, old, "tokenadapt", threshold=-1.0)  # weight 0.3
    multi = [t for t, rule in enumerate(local_rules) if rule == "tokenadapt" and len(mapping.pieces[t]) > 2]
    assert len(multi) >= 8
    for target_id in multi[:8]:
        by_hand_local = _local_by_hand(mapping, old, target_id, temperature)
        by_hand_global = _global_by_hand(mapping, old, target_id, k, temperature, -1.0)
        assert torch.allclose(local[target_id], by_hand_local, atol=1e-6)
        assert torch.allclose(global_[target_id], by_hand_global, atol=1e-6)
        assert torch.allclose(hybrid[target_id], 0.7 * by_hand_local + 0.3 * by_hand_global, atol=1e-6)
        # the local weights are not the plain FVT mean
        assert not torch.allclose(by_hand_local, _fvt(mapping, old, target_id), atol=1e-6)


def test_tokenadapt_threshold_masks_neighbours(mapping, old):
    # the FVT estimate of two random pieces lies at cosine ~0.7 to each: some tokens keep
    # neighbours above 0.7, others have none left and use the local estimate alone
    hybrid, rules = _initialize(mapping, old, "tokenadapt", threshold=0.7)
    assert rules.count("tokenadapt-local") > 20 and rules.count("tokenadapt") > 20
    for target_id in [t for t, rule in enumerate(rules) if rule == "tokenadapt"][:5]:
        expected = 0.7 * _local_by_hand(mapping, old, target_id, 0.3) + 0.3 * _global_by_hand(mapping, old, target_id, 3, 0.3, 0.7)
        assert torch.allclose(hybrid[target_id], expected, atol=1e-6)
    for target_id in [t for t, rule in enumerate(rules) if rule == "tokenadapt-local"][:5]:
        assert torch.allclose(hybrid[target_id], _local_by_hand(mapping, old, target_id, 0.3), atol=1e-6)


@pytest.mark.parametrize("method", ["topk", "tokenadapt"])
def test_convert_copies_exact_matches_and_counts_rules(tmp_path, llama, target_tokenizer, mapping, old, method):
    report = transplant.convert(llama, target_tokenizer, tmp_path / "out", method=method, progress=False)
    new = read_tensor(open_checkpoint(tmp_path / "out"), EMBED)
    counts = report.rules["input"]
    assert sum(counts.values()) == len(target_tokenizer)
    assert counts["special"] == 3 and counts["exact"] > 100 and counts[method] > 200
    assert set(counts) <= {"special", "exact", method, "mean"}
    for target_id, rule in enumerate(report.token_rules):
        if rule in ("exact", "special"):
            assert torch.equal(new[target_id], old[mapping.matches[target_id]])
    saved = json.loads((tmp_path / "out" / "transplant_report.json").read_text())
    assert saved["method"] == method and saved["rules"]["input"] == counts


@pytest.mark.parametrize("method", ["topk", "tokenadapt"])
def test_untied_head_is_rebuilt_in_its_own_space(tmp_path, source_tokenizer, target_tokenizer, mapping, method):
    source = tiny_model(tmp_path / "src", source_tokenizer, "qwen2")
    checkpoint = open_checkpoint(source)
    assert not checkpoint.tied
    options = {"k": 1} if method == "topk" else {"weight": 1.0, "k": 1}  # one neighbour: the row is copied
    report = transplant.convert(source, target_tokenizer, tmp_path / "out", method=method, progress=False, **options)
    out = open_checkpoint(tmp_path / "out")
    old_embed, old_head = read_tensor(checkpoint, EMBED).float(), read_tensor(checkpoint, checkpoint.output_key).float()
    new_embed, new_head = read_tensor(out, EMBED), read_tensor(out, out.output_key)
    assert report.rules["output"] == report.rules["input"]
    differ = 0
    targets = [t for t, rule in enumerate(report.token_rules) if rule == method]
    for target_id in targets[:100]:
        _, head_best = _brute_topk(mapping, old_head, target_id, 1)
        _, embed_best = _brute_topk(mapping, old_embed, target_id, 1)
        assert torch.equal(new_head[target_id], old_head[head_best[0]])
        assert torch.equal(new_embed[target_id], old_embed[embed_best[0]])
        differ += int(head_best[0] != embed_best[0])
    # independent random matrices: the head's neighbours are its own (often the same piece in
    # both spaces, since the length-weighted query leans on the longest piece)
    assert differ > 10


def test_head_bias_falls_back_to_fvt(tmp_path):
    source_tokenizer, target_tokenizer = wordpiece(500), wordpiece(400, start=2500)
    source = tiny_model(tmp_path / "src", source_tokenizer, "bert")
    report = transplant.convert(source, target_tokenizer, tmp_path / "out", method="topk", progress=False)
    assert report.rules["input"]["topk"] > 50
    assert "topk" not in report.rules["output_bias"] and report.rules["output_bias"]["fvt"] > 50


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("topk", {"k": 0}, "topk: k must be an integer >= 1, not 0"),
        ("topk", {"k": 2.5}, "topk: k must be an integer >= 1, not 2.5"),
        ("topk", {"temperature": 0.0}, "topk: temperature must be a number > 0, not 0.0"),
        ("topk", {"temperature": -1}, "topk: temperature must be a number > 0, not -1"),
        ("topk", {"weight": 0.5}, "method 'topk' has no option weight (its options: k, temperature)"),
        ("tokenadapt", {"k": -3}, "tokenadapt: k must be an integer >= 1, not -3"),
        ("tokenadapt", {"temperature": float("nan")}, "tokenadapt: temperature must be a number > 0, not nan"),
        ("tokenadapt", {"weight": 1.5}, "tokenadapt: weight must be a number >= 0 and <= 1, not 1.5"),
        ("tokenadapt", {"weight": -0.1}, "tokenadapt: weight must be a number >= 0 and <= 1, not -0.1"),
        ("tokenadapt", {"threshold": 2.0}, "tokenadapt: threshold must be a number >= -1 and <= 1, not 2.0"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, method, options, message):
    with pytest.raises(TransplantError) as raised:
        transplant.convert(tmp_path / "no-model", tmp_path / "no-tokenizer", tmp_path / "out", method=method, **options)
    assert str(raised.value) == message and "\n" not in message


def test_cli_passes_weight_and_threshold(tmp_path, llama, target_tokenizer):
    target_tokenizer.save_pretrained(tmp_path / "tok")
    runner = CliRunner()
    bad = runner.invoke(main, ["convert", str(llama), str(tmp_path / "tok"), "-o", str(tmp_path / "bad"), "--method", "tokenadapt", "--weight", "2"])
    assert bad.exit_code == 2 and bad.output.strip() == "Error: Invalid value for '--weight': 2.0 is not in the range 0<=x<=1."
    good = runner.invoke(
        main,
        ["convert", str(llama), str(tmp_path / "tok"), "-o", str(tmp_path / "out"), "--method", "tokenadapt", "--weight", "0.5", "--threshold", "0.1", "--k", "4", "--quiet"],
    )
    assert good.exit_code == 0, good.output
    saved = json.loads((tmp_path / "out" / "transplant_report.json").read_text())
    assert saved["options"] == {"k": 4, "weight": 0.5, "threshold": 0.1}


@pytest.mark.parametrize("method", ["fvt", "topk", "tokenadapt"])
def test_rows_in_batches_equal_rows_at_once(mapping, old, method, monkeypatch):
    """New tokens go through ``rows`` in batches (bounded memory at a million tokens): the result,
    the rules, and the one neighbour index built for all batches are those of a single call."""
    whole, whole_rules = _initialize(mapping, old, method)
    cls = initializers.method_class(method)
    monkeypatch.setattr(cls, "row_batch", 37)
    built = []
    from transplant import neighbors

    real = neighbors.NeighborIndex

    class Counting(real):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(neighbors, "NeighborIndex", Counting)
    batched, batched_rules = _initialize(mapping, old, method)
    assert torch.equal(whole, batched) and whole_rules == batched_rules
    assert len(built) == (0 if method == "fvt" else 1)
