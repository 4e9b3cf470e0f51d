"""The architecture matrix: every family of tests/tiny.py ``FAMILIES``, tied and untied, moved
onto new tokenizers by each entry point, and the checks every result must pass.

Used by tests/test_architectures.py (one test per cell and column) and by
bench/architecture_table.py (the README table), so the table shows what the tests check.

Columns:
- ``convert``: streaming ``convert`` with ``fvt`` onto a permuted copy of the family's own
  tokenizer (every token copied, so every logit must match) and with ``topk`` onto a tokenizer
  of another kind (byte-level BPE <-> SentencePiece <-> WordPiece <-> Unigram).
- ``transplant``: the in-memory ``transplant`` with the same two methods, targets swapped.
- ``hypernet``: train a hypernetwork a few steps, then ``convert --method hypernet`` (causal).
- ``distill``: a few distillation steps from the source to its fvt conversion (causal).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tiny
import torch
import transformers
from safetensors import safe_open

from transplant.checkpoint import open_checkpoint, quiet_transformers, vocabulary_axes
from transplant.core import is_token_key, convert, transplant
from transplant.errors import TransplantError
from transplant.loading import load_model, load_tokenizer
from transplant.vocab import Vocabulary, VocabMapping, build_mapping

COLUMNS = ("convert", "transplant", "hypernet", "distill")
SAMPLE = "Der Hund läuft über die Straße, 42 Äpfel!"
# Model types whose tokenizer class transformers' AutoTokenizer forces whatever tokenizer.json
# holds, rebuilding a byte-level pipeline around its vocabulary: a converted model's other-kind
# tokenizer then only loads as saved through transplant.load_tokenizer or PreTrainedTokenizerFast.
AUTO_TOKENIZER_REBUILDS = {"qwen2"}
SHARDED = {("llama", "untied"), ("bart", "untied")}  # saved in several safetensors shards
# Hypernetwork sized so that a training step takes milliseconds (as in tests/test_hypernet.py).
HYPERNET_TINY = dict(width=32, layers=1, heads=2, batch_size=2, block_size=32, sampled_vocab_size=300, tokenizer_text_bytes=3000,
                     reconstruction_tokens=64, vocab_subsample=64, eval_bytes=600, warmup_steps=1, eval_every=100)


@dataclass(frozen=True)
class Cell:
    family: str
    head: str  # "tied" or "untied"

    @property
    def spec(self) -> tiny.Family:
        return tiny.FAMILIES[self.family]

    @property
    def id(self) -> str:
        return f"{self.family}-{self.head}"


def cells() -> list[Cell]:
    return [Cell(family, head) for family, spec in tiny.FAMILIES.items() for head in spec.heads]


def refusal(cell: Cell, column: str) -> str | None:
    """The text of the one-line error a cell's column must stop with, None where it must pass:
    the hypernetwork and distillation train causal language models only, and the hypernetwork
    predicts no head bias."""
    if column in ("hypernet", "distill") and cell.spec.task != "causal":
        return "trains causal language models"
    return cell.spec.refusals.get(column)


def refused(cell: Cell, column: str) -> bool:
    return refusal(cell, column) is not None


@dataclass
class Source:
    cell: Cell
    directory: Path
    tokenizer: transformers.PreTrainedTokenizerFast
    model: transformers.PreTrainedModel


def run_checked(source: Source, column: str, out: Path, corpus: Path) -> str | None:
    """Run a cell's column; None when it passed, the one-line message when it is refused as
    expected (an unexpected outcome raises)."""
    if not refused(source.cell, column):
        run(source, column, out, corpus)
        return None
    try:
        run(source, column, out, corpus)
    except TransplantError as error:
        message = str(error)
        assert "\n" not in message and refusal(source.cell, column) in message, message
        return message
    raise AssertionError(f"{column} ran on {source.cell.id} instead of refusing it")


def build_source(directory: Path, cell: Cell) -> Source:
    tokenizer = tiny.matrix_tokenizer(cell.spec.tokenizer)
    shard = "20KB" if (cell.family, cell.head) in SHARDED else None
    model = tiny.family_model(directory, cell.family, cell.head, tokenizer, max_shard_size=shard)
    return Source(cell, directory, tokenizer, model)


def permuted_target(source: Source):
    return tiny.permuted(source.tokenizer)[0]


def other_kind_target(source: Source):
    return tiny.matrix_tokenizer(tiny.OTHER_KIND[source.cell.spec.tokenizer])


# ---------------------------------------------------------------------------------------------
# The columns


def run_convert(source: Source, out: Path) -> None:
    for method, target, name in (("fvt", permuted_target(source), "fvt-permuted"), ("topk", other_kind_target(source), "topk-other")):
        convert(source.directory, target, out / name, method, add_missing_special_tokens=True, progress=False)
        check_directory(source, out / name)


def run_transplant(source: Source, out: Path) -> None:
    for method, target in (("fvt", other_kind_target(source)), ("topk", permuted_target(source))):
        model, tokenizer, _ = transplant(load_model(source.directory), target, method, source_tokenizer=source.tokenizer,
                                         add_missing_special_tokens=True, progress=False)
        check_in_memory(source, model, tokenizer)


def run_hypernet(source: Source, out: Path, corpus: Path) -> None:
    import hypernet

    trained = hypernet.train(source.directory, [corpus], out / "hn", max_steps=2, identity_steps=1, progress=False, **HYPERNET_TINY)
    check_hypernet_logits(source)
    convert(source.directory, other_kind_target(source), out / "converted", "hypernet", hypernet=trained, add_missing_special_tokens=True, progress=False)
    check_directory(source, out / "converted")


def run_distill(source: Source, out: Path, corpus: Path) -> None:
    from transplant.distill import DistillConfig, distill

    convert(source.directory, other_kind_target(source), out / "student", "fvt", add_missing_special_tokens=True, progress=False)
    config = DistillConfig(loss="alm+ce", max_steps=2, max_tokens=10**9, batch_size=2, segment_bytes=300, max_length=64, eval_every=0, checkpoint_every=0)
    result = distill(source.directory, out / "student", [corpus], out / "distilled", config, progress=False)
    assert result.steps == 2
    log = [json.loads(line) for line in (out / "distilled" / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["alm"])) and torch.isfinite(torch.tensor(r["ce"])) for r in log if "alm" in r)
    check_directory(source, out / "distilled", trained=True)


def run(source: Source, column: str, out: Path, corpus: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if column == "convert":
        run_convert(source, out)
    elif column == "transplant":
        run_transplant(source, out)
    elif column == "hypernet":
        run_hypernet(source, out, corpus)
    else:
        run_distill(source, out, corpus)


# ---------------------------------------------------------------------------------------------
# The checks


def auto_class(source: Source):
    return getattr(transformers, tiny.AUTO_CLASSES[source.cell.spec.task])


def check_directory(source: Source, directory: Path, trained: bool = False) -> None:
    """A converted directory: right class, its tokenizer, untouched non-vocabulary tensors, then
    ``check_in_memory``. A ``trained`` model (distilled) only has to load and run."""
    with quiet_transformers():
        model = auto_class(source).from_pretrained(directory, dtype=torch.float32).eval()
    tokenizer = load_tokenizer(directory)
    assert type(model) is type(source.model)
    with quiet_transformers():
        auto = transformers.AutoTokenizer.from_pretrained(directory)
    if auto.tokenize(SAMPLE) != tokenizer.tokenize(SAMPLE):
        assert source.cell.family in AUTO_TOKENIZER_REBUILDS, f"AutoTokenizer splits {directory}'s text otherwise"
    if trained:
        _check_usable(source, model, tokenizer)
        return
    old, new = open_checkpoint(source.directory), open_checkpoint(directory)
    old_vocab, new_vocab = set(old.vocab_keys.values()), set(new.vocab_keys.values())
    assert old_vocab == new_vocab and set(old.tensor_files) == set(new.tensor_files)
    for name in set(old.tensor_files) - old_vocab:
        assert torch.equal(_stored(old.tensor_files[name], name), _stored(new.tensor_files[name], name)), name
    generation = directory / "generation_config.json"
    check_in_memory(source, model, tokenizer, json.loads(generation.read_text()) if generation.is_file() else None, compare_weights=False)


def _stored(path: Path, name: str) -> torch.Tensor:
    with safe_open(path, framework="pt") as handle:
        return handle.get_tensor(name)


def check_in_memory(source: Source, model, tokenizer, generation: dict | None = None, compare_weights: bool = True) -> None:
    """A converted model and its tokenizer: sizes, remapped special-token ids, untouched
    non-vocabulary weights, a forward pass and generate / fill-mask, and exact logits over
    copied tokens on a text both tokenizers split into the same pieces."""
    model.eval()
    mapping = build_mapping(Vocabulary.from_tokenizer(source.tokenizer), Vocabulary.from_tokenizer(tokenizer), progress=False)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    if compare_weights:
        vocabulary = set(vocabulary_axes(model))
        old = source.model.state_dict()
        for name, tensor in model.state_dict().items():
            if name not in vocabulary:
                assert torch.equal(tensor, old[name]), name
    _check_special_ids(source.model.config.to_dict(), model.config.to_dict(), mapping)
    old_generation = source.model.generation_config.to_dict() if source.model.can_generate() else None
    new_generation = generation if generation is not None else (model.generation_config.to_dict() if model.can_generate() else None)
    if old_generation is not None:
        _check_special_ids(old_generation, new_generation, mapping)
    _check_usable(source, model, tokenizer)
    _check_copied_logits(source, model, tokenizer, mapping)


def _check_special_ids(old: dict, new: dict, mapping: VocabMapping) -> None:
    """Each special-token id of the config names the new token copied from the old one or, where
    none was (a pad that is also the new tokenizer's eos), the new tokenizer's token of that role."""
    for key in [k for k in old if is_token_key(k)]:
        value = old.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            copies = [t for t, s in enumerate(mapping.matches) if s == value]
            role = key.removesuffix("_token_id")
            role = role if role in mapping.target.roles else mapping.source.role_of(value)
            expected = copies if copies else [mapping.target.roles.get(role)]
            assert new.get(key) in expected, (key, value, new.get(key), expected)
    if isinstance(old.get("text_config"), dict):
        _check_special_ids(old["text_config"], new["text_config"], mapping)


def _check_usable(source: Source, model, tokenizer) -> None:
    task = source.cell.spec.task
    text = "Der Hund läuft"
    with torch.no_grad():
        if task == "masked":
            fill = transformers.pipeline("fill-mask", model=model, tokenizer=tokenizer, device="cpu")
            guesses = fill(f"{text} {tokenizer.mask_token} heute.", top_k=3)
            assert len(guesses) == 3 and all(isinstance(g["token_str"], str) for g in guesses)
            return
        ids = tokenizer(text, return_tensors="pt")
        generated = model.generate(**ids, max_new_tokens=3, do_sample=False)
        assert generated.shape[0] == 1 and int(generated.max()) < len(tokenizer)


def _check_copied_logits(source: Source, model, tokenizer, mapping: VocabMapping) -> None:
    """On a text that both tokenizers split into the same pieces, the logits of every copied
    token equal the source model's (a wrongly remapped row, bias or scale shows here)."""
    new_ids = shared_split_ids(source.tokenizer, tokenizer, mapping)
    old_ids = [mapping.matches[t] for t in new_ids]
    assert len(new_ids) >= 8, "no shared text to compare on"
    copied = torch.tensor([t for t, s in enumerate(mapping.matches) if s >= 0])
    old_logits = _logits(source, source.model, torch.tensor([old_ids]))
    new_logits = _logits(source, model, torch.tensor([new_ids]))
    source_columns = torch.tensor([mapping.matches[t] for t in copied.tolist()])
    torch.testing.assert_close(new_logits[..., copied], old_logits[..., source_columns], rtol=1e-5, atol=1e-5)


def _logits(source: Source, model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if source.cell.spec.task == "seq2seq":
            return model(input_ids=ids, decoder_input_ids=ids).logits
        return model(input_ids=ids).logits


def shared_split_ids(old_tokenizer, new_tokenizer, mapping: VocabMapping) -> list[int]:
    """New-tokenizer ids of a text of German words (from the sample) that the old tokenizer splits
    into the same pieces. Each word is taken as it is split inside a text, after a space (a
    tokenizer without a prefix space splits a text's first word otherwise), and kept when both
    splits agree; the text is the kept words in turn."""
    ids: list[int] = []
    kept = 0
    for word in dict.fromkeys(" ".join(tiny.lines(0, 100)).split()):
        old, new = _word_ids(old_tokenizer, word), _word_ids(new_tokenizer, word)
        if old is not None and new is not None and [mapping.matches[t] for t in new] == old:
            ids += new
            kept += 1
            if kept == 24:
                break
    return ids


def _word_ids(tokenizer, word: str) -> list[int] | None:
    """``word``'s ids after a space inside a text (None where the split crosses the space)."""
    before = tokenizer("und", add_special_tokens=False)["input_ids"]
    both = tokenizer(f"und {word}", add_special_tokens=False)["input_ids"]
    return both[len(before):] if both[: len(before)] == before else None


def check_hypernet_logits(source: Source) -> None:
    """The hypernetwork's training forward pass, given the model's own rows, gives the model's own
    logits: embedding scaling (Gemma), projections (OPT) and logit soft-capping are applied."""
    from hypernet.training import lm_logits

    model = source.model
    ids = torch.tensor([source.tokenizer("Der Hund läuft heute nach Hause", add_special_tokens=False)["input_ids"]])
    rows = {"input": model.get_input_embeddings().weight.detach()}
    head = model.get_output_embeddings()
    if head.weight is not model.get_input_embeddings().weight:
        rows["output"] = head.weight.detach()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        got = lm_logits(model, rows, ids, torch.ones_like(ids))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
