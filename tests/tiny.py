"""Tiny tokenizers and randomly initialised models, built locally in a fraction of a second."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedTokenizerFast

SAMPLE = Path(__file__).resolve().parents[1] / "transplant" / "data" / "de_sample.txt"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
ROLES = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>"}


@lru_cache(maxsize=None)
def lines(start: int = 0, count: int = 600) -> tuple[str, ...]:
    text = SAMPLE.read_text(encoding="utf-8").splitlines()
    return tuple(text[start : start + count])


def byte_level_bpe(vocab_size: int = 600, start: int = 0, chat: bool = True) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(lines(start), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **ROLES)
    if chat:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def sentencepiece_bpe(vocab_size: int = 700, start: int = 600) -> PreTrainedTokenizerFast:
    """Llama-2 style: ▁ for spaces, byte fallback, no ByteLevel alphabet."""
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tokenizer = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="\u2581", prepend_scheme="first")])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens], show_progress=False)
    tokenizer.train_from_iterator(lines(start), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def wordpiece(vocab_size: int = 600, start: int = 1200) -> PreTrainedTokenizerFast:
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(lines(start), trainer=trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False))
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )


def permuted(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> tuple[PreTrainedTokenizerFast, list[int]]:
    """The same tokenizer with its non-special ids shuffled; returns it and new_id -> old_id."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    special_ids = {t["id"] for t in spec["added_tokens"]}
    movable = sorted(i for i in vocab.values() if i not in special_ids)
    order = torch.randperm(len(movable), generator=torch.Generator().manual_seed(seed)).tolist()
    old_to_new = {old: movable[order[k]] for k, old in enumerate(movable)}
    spec["model"]["vocab"] = {token: old_to_new.get(i, i) for token, i in vocab.items()}
    shuffled = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **_roles(tokenizer))
    shuffled.chat_template = tokenizer.chat_template
    new_to_old = list(range(len(tokenizer)))
    for old, new in old_to_new.items():
        new_to_old[new] = old
    return shuffled, new_to_old


def _roles(tokenizer) -> dict:
    return {f"{r}_token": getattr(tokenizer, f"{r}_token") for r in ("bos", "eos", "unk", "pad") if getattr(tokenizer, f"{r}_token", None)}


ARCHITECTURES = {
    # name: (config kwargs, tied)
    "llama": dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    "qwen2": dict(model_type="qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False),
    "gpt2": dict(model_type="gpt2", n_embd=32, n_layer=2, n_head=4, n_positions=512),
    "gemma": dict(model_type="gemma", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8),
    "bert": dict(model_type="bert", hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512),
}


def tiny_model(directory: Path, tokenizer, architecture: str = "llama", seed: int = 0) -> Path:
    """Save a randomly initialised model of ``architecture`` sized for ``tokenizer`` to ``directory``."""
    kwargs = dict(ARCHITECTURES[architecture])
    model_type = kwargs.pop("model_type")
    ids = {f"{r}_token_id": getattr(tokenizer, f"{r}_token_id") for r in ("bos", "eos", "pad") if getattr(tokenizer, f"{r}_token_id", None) is not None}
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), **kwargs, **ids)
    torch.manual_seed(seed)
    auto = AutoModelForMaskedLM if model_type == "bert" else AutoModelForCausalLM
    model = auto.from_config(config)
    if model_type == "bert":  # a random bias makes the bias-remapping observable
        model.get_output_embeddings().bias.data.normal_()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
