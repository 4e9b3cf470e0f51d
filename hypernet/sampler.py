"""Plausible tokenizers to train the hypernetwork on: a different vocabulary for every batch.

A hypernetwork trained on one tokenizer learns that tokenizer; one trained on many learns how
tokens are spelled. ``UnigramSampler`` follows ZeTT: count the substrings of words in some text,
score them by frequency x length, add noise to the log scores, keep the most frequent pieces as a UnigramLM
vocabulary (frequency-scored, not EM-trained) and wrap it in the base tokenizer's own pipeline
(normalizer, pre-tokenizer, decoder, special tokens), so only the vocabulary changes.
With ``families``, each draw also picks a tokenizer family uniformly (byte-level BPE or
Unigram, SentencePiece Unigram, SentencePiece BPE with byte fallback, WordPiece): the pieces are
counted in the vocabulary layer's canonical form (text, starts a word) and written in the family's
own notation by :func:`transplant.vocab.families.tokenizer_from_pieces`.
``FixedTokenizers`` draws from a given list of real tokenizers instead, and ``MixedTokenizers``
draws from a sampler or the real tokenizers, with a given share for the real ones.
"""

from __future__ import annotations

import collections
import json
import math
import re

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from transplant.errors import TransplantError
from transplant.vocab import Vocabulary, token_bytes
from transplant.vocab.families import FAMILIES, renumber_post_processor, tokenizer_from_pieces

_SPACED_WORD = re.compile(r" ?[^ ]+| ")


class UnigramSampler:
    """Sample UnigramLM tokenizers of ``vocab_size`` entries from the substrings of given text.

    Noise goes on the *log* scores: each tokenizer draws a noise level
    ``exp(log(noise_mean) + noise_log_std * z)`` and every piece's log score gets Gaussian noise
    of that size. ZeTT adds noise of ~1e-5 to the normalised scores instead; on the tens of
    kilobytes of text a CPU step can afford, that swamps all but the most frequent pieces and
    leaves vocabularies of near-random substrings (words spelled letter by letter). Noise on the
    log scores reshuffles the ranking while frequent pieces stay likely.
    """

    def __init__(self, base_tokenizer, vocab_size: int = 8192, max_piece_chars: int = 16, noise_mean: float = 0.5, noise_log_std: float = 0.5,
                 families: tuple[str, ...] | None = None):
        self.base = base_tokenizer
        unknown = sorted(set(families or ()) - set(FAMILIES))
        if unknown:
            raise TransplantError(f"unknown tokenizer famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)} (known: {', '.join(FAMILIES)})")
        self.families = tuple(families or ())  # empty: the base tokenizer's own pipeline, Unigram model
        self.vocabulary = Vocabulary.from_tokenizer(base_tokenizer)
        self.style = self.vocabulary.style
        self.specials = [self.vocabulary.special[i] for i in sorted(self.vocabulary.special)]
        if vocab_size <= len(self.specials) + 1:
            raise TransplantError(f"sampled vocabulary size {vocab_size} leaves no room beside {len(self.specials)} special tokens")
        self.vocab_size = vocab_size
        self.max_piece_chars = max_piece_chars
        self.noise_mean = noise_mean
        self.noise_log_std = noise_log_std
        self._spec = json.loads(base_tokenizer.backend_tokenizer.to_str())
        self._backend = base_tokenizer.backend_tokenizer

    def words(self, text: str) -> collections.Counter:
        """Pre-tokenized words as the base pipeline writes them (``Ġder`` for byte-level)."""
        normalizer, pre_tokenizer = self._backend.normalizer, self._backend.pre_tokenizer
        counts: collections.Counter = collections.Counter()
        for line in text.splitlines(keepends=True):
            if normalizer is not None:
                line = normalizer.normalize_str(line)
            if pre_tokenizer is not None:
                counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(line))
            else:
                counts[line] += 1
        return counts

    def substring_counts(self, text: str) -> collections.Counter:
        """How often each substring (up to ``max_piece_chars``) of a word occurs in ``text``."""
        counts: collections.Counter = collections.Counter()
        for word, count in self.words(text).items():
            for start in range(len(word)):
                for end in range(start + 1, min(len(word), start + self.max_piece_chars) + 1):
                    counts[word[start:end]] += count
        return counts

    def alphabet(self, counts: collections.Counter) -> list[str]:
        """Characters every sampled tokenizer keeps, so any text can be tokenized."""
        if self.style.byte_level:
            return sorted(pre_tokenizers.ByteLevel.alphabet())
        return sorted({piece for piece in counts if len(piece) == 1})

    def canonical_substring_counts(self, text: str) -> collections.Counter:
        """How often each ``(substring, starts a word)`` occurs, in the family-neutral form of the
        vocabulary layer (no Ġ, ▁ or ##)."""
        counts: collections.Counter = collections.Counter()
        for word, count in self.words(text).items():
            data, word_start = token_bytes(word, self.style)
            written = (" " if word_start else "") + data.decode("utf-8", errors="ignore")
            for part in _SPACED_WORD.findall(written):  # a pipeline without a word splitter: split here
                starts = part.startswith(" ")
                part = part[1:] if starts else part
                for start in range(len(part)):
                    for end in range(start + 1, min(len(part), start + self.max_piece_chars) + 1):
                        counts[(part[start:end], starts and start == 0)] += count
        return counts

    def sample(self, text: str, generator: torch.Generator) -> PreTrainedTokenizerFast:
        if self.families:
            return self._sample_family(text, generator)
        counts = self.substring_counts(text)
        if not counts:
            raise TransplantError("no text to sample a tokenizer from")
        alphabet = self.alphabet(counts)
        pieces = [p for p in counts if len(p) > 1 and p not in self.specials]
        # frequency x length, as ZeTT: longer pieces save more tokens and win more often
        room = self.vocab_size - len(self.specials) - len(alphabet)
        order, scores = self._noisy_order(counts, pieces, [len(p) for p in pieces], room, generator)
        floor = (min(scores) if scores else 0.0) - 1.0  # single characters: the last resort
        entries = [(s, 0.0) for s in self.specials] + [(pieces[i], score) for i, score in zip(order, scores)]
        entries += [(c, floor) for c in alphabet]
        return self._wrap(entries)

    def _noisy_order(self, counts, pieces: list, lengths: list[int], room: int, generator: torch.Generator) -> tuple[list[int], list[float]]:
        """Indices of the pieces kept (noisy frequency x length, best first) and their scores."""
        frequency = torch.tensor([counts[p] * n for p, n in zip(pieces, lengths)], dtype=torch.float64)
        noise_std = math.exp(math.log(self.noise_mean) + self.noise_log_std * torch.randn((), generator=generator, dtype=torch.float64).item())
        noisy = torch.log(frequency) + noise_std * torch.randn(len(pieces), generator=generator, dtype=torch.float64)
        order = torch.argsort(noisy, descending=True, stable=True)[: max(room, 0)]
        scores = torch.log_softmax(noisy[order], 0).tolist() if len(order) else []
        return order.tolist(), scores

    def _sample_family(self, text: str, generator: torch.Generator) -> PreTrainedTokenizerFast:
        family = self.families[int(torch.randint(len(self.families), (), generator=generator))]
        counts = self.canonical_substring_counts(text)
        if not counts:
            raise TransplantError("no text to sample a tokenizer from")
        alphabet = sorted({piece for piece, _ in counts if len(piece) == 1})
        byte_level = family.startswith("byte-level")
        # single characters are the alphabet, except multi-byte ones in byte-level families
        pieces = [p for p in counts if len(p[0]) > 1 or p[1] or (byte_level and len(p[0].encode("utf-8")) > 1)]
        singles = 256 if byte_level else 2 * len(alphabet) + (256 if family == "sentencepiece-bpe" else 0)
        room = self.vocab_size - len(self.specials) - 1 - singles
        order, scores = self._noisy_order(counts, pieces, [len(p[0]) + p[1] for p in pieces], room, generator)
        chosen = [(pieces[i][0], pieces[i][1], score) for i, score in zip(order, scores)]
        return tokenizer_from_pieces(chosen, family, self.base, alphabet, self.vocab_size)

    def _wrap(self, entries: list[tuple[str, float]]) -> PreTrainedTokenizerFast:
        """A fast tokenizer: the base pipeline around a Unigram model of ``entries``."""
        unk = getattr(self.base, "unk_token", None)
        ids = {piece: index for index, (piece, _) in enumerate(entries)}
        unigram = models.Unigram(entries, unk_id=ids.get(unk) if unk is not None else None, byte_fallback=False)
        added = [
            {"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for s in self.specials
        ]
        model = json.loads(Tokenizer(unigram).to_str())["model"]
        backend = renumber_post_processor(Tokenizer.from_str(json.dumps({**self._spec, "model": model, "added_tokens": added})))
        roles = {f"{role}_token": self.vocabulary.special[index] for role, index in self.vocabulary.roles.items()}
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **roles)
        if getattr(self.base, "chat_template", None):
            tokenizer.chat_template = self.base.chat_template
        return tokenizer


class FixedTokenizers:
    """Draw one of a fixed list of real tokenizers per batch (the text does not matter)."""

    def __init__(self, tokenizers: list):
        if not tokenizers:
            raise TransplantError("no tokenizers to sample from")
        self.tokenizers = list(tokenizers)

    def sample(self, text: str, generator: torch.Generator):
        return self.tokenizers[int(torch.randint(len(self.tokenizers), (), generator=generator))]


class MixedTokenizers:
    """Real tokenizers with probability ``real_share``, else a sampled one (one draw per step)."""

    def __init__(self, sampler: UnigramSampler, real: FixedTokenizers, real_share: float):
        if not 0.0 <= real_share <= 1.0:
            raise TransplantError(f"the share of real tokenizers must be between 0 and 1, not {real_share}")
        self.sampler, self.real, self.real_share = sampler, real, real_share

    def sample(self, text: str, generator: torch.Generator):
        if float(torch.rand((), generator=generator)) < self.real_share:
            return self.real.sample(text, generator)
        return self.sampler.sample(text, generator)
