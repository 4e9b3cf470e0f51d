"""``tokendistill``: each new token's input row learned from the model's own hidden states.

Token Distillation (Dobler, Elliott, de Melo, 2025). Heuristics mix rows of the embedding matrix,
but a word the old tokenizer split into pieces is not stored there: the model assembles it in its
first layers. Here, in real contexts of the new token (``--target-corpus``, repeatable, or
``--hub``), the frozen model runs on the original pieces; the token's row is optimised so that
the model run with the one new token gives the same hidden states (MSE at ``--distill-layer``,
default the final output, as the paper) at its position and every later one.

Every row starts from ``--init`` (default ``fvt``; any method, e.g. ``hypernet --hypernet DIR``,
whose own options are passed through). New tokens that occur in the text and are spelled by
two or more source pieces are distilled, most frequent first, ``--tokens-per-step`` at a time,
until ``--max-distilled-tokens`` or ``--max-seconds``; every other row keeps its init row, and
the report counts both per rule. Needs the model itself: ``convert`` and ``transplant`` hand it
over through ``InitInputs.model``. A conversion killed midway continues with ``--resume``.

The head: by default (``--head fit``) every new token's head row is fitted by next-token
prediction on the frozen model's own final hidden states over ``--head-fit-tokens`` tokens of the
text (:mod:`transplant.tokendistill.headfit`; a tied head is untied for that); ``--head ntp``
learns the distilled tokens' head rows on their snippets instead; ``--head init`` takes the init
method's rows; ``--head tied`` keeps a tied head tied (the learned input row is also the output
row, measured far worse).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..errors import TransplantError
from ..lazy import lazy_import
from ..tokendistill.settings import DistillSettings
from . import get, method_class, option, register
from .base import InitInputs, Initializer

torch = lazy_import("torch")

RULE = "tokendistill"
HEADS = ("tied", "init", "ntp", "fit")
# Measured on SmolLM2-135M (tied) -> German 32k (README, "Token Distillation"): the head fitted
# for every new token on 100k tokens of text, no input row distilled, 2.0707 bits/byte in 18
# minutes; the default before it (input rows distilled for 20 minutes, their head rows by ntp)
# 2.2557. On the first 64 tokens distilled: ntp 2.3074, init 2.3704, tied 4.6309.
DEFAULT_HEAD = "fit"


@dataclass
class TokenDistillOptions:
    target_corpus: object = option(None, "Target-language text whose contexts of the new tokens are distilled (repeatable).", kind="path", repeatable=True)
    hub: str | None = option(None, "Stream target text from a hub dataset's `text` field, DATASET[:CONFIG] (needs internet).", kind="text")
    hub_bytes: int = option(20_000_000, "How much text --hub streams.", minimum=1)
    init: str = option("fvt", "The method every row starts from (e.g. hypernet with --hypernet DIR); its options are passed on.")
    init_options: dict = option({}, "The init method's own options (Python API; on the command line give them as flags).", kind="object", command_line=False)
    snippets_per_token: int = option(DistillSettings.snippets_per_token, "Contexts (and optimizer steps) per new token.", minimum=1)
    snippet_length: int = option(DistillSettings.snippet_length, "Source tokens per context.", minimum=4)
    tokens_per_step: int = option(DistillSettings.tokens_per_step, "New tokens learned together, one context each per step; bounds memory.", minimum=1)
    learning_rate: float = option(DistillSettings.learning_rate, "AdamW learning rate of the new rows.", minimum=0, above_minimum=True)
    distill_layer: int = option(DistillSettings.layer, "Layer whose hidden states are matched (-1: the final output).")
    head: str = option(
        DEFAULT_HEAD,
        "Output rows: every new token's fitted on the model's hidden states over the text (fit), learned on the distilled tokens' snippets (ntp), "
        "the init method's rows (init), or keep a tied head tied.",
        choices=HEADS,
    )
    head_learning_rate: float = option(DistillSettings.head_learning_rate, "Learning rate of the head rows with --head ntp or fit.", minimum=0, above_minimum=True)
    head_fit_tokens: int = option(100_000, "--head fit: target tokens of text whose hidden states the head rows are fitted on.", minimum=1)
    head_fit_epochs: int = option(3, "--head fit: passes of the regression over those tokens.", minimum=1)
    max_distilled_tokens: int | None = option(None, "Distill at most this many new tokens (most frequent first); the rest keep their init rows.", kind="int", minimum=0)
    max_seconds: float | None = option(None, "Stop distilling after this many seconds; the rest keep their init rows.", kind="float", minimum=0, above_minimum=True)
    resume: bool = option(False, "Continue an interrupted conversion to OUT from its last checkpoint.")
    checkpoint_every: int = option(DistillSettings.checkpoint_every, "Groups of tokens between checkpoints.", minimum=1)


@register
class TokenDistillInit(Initializer):
    name = "tokendistill"
    Options = TokenDistillOptions
    needs = ("model", "target_text")
    passes_options_to = "init"
    handles_bias = False  # a head's bias is rebuilt by fvt

    def __init__(self, **options):
        # options this method does not have belong to the init method (e.g. hypernet=DIR)
        known = {f.name for f in dataclasses.fields(TokenDistillOptions)}
        passed = {key: options.pop(key) for key in list(options) if key not in known}
        if passed:
            options["init_options"] = {**options.get("init_options", {}), **passed}
        self._outcome = None
        self._fitted: tuple[list[int], torch.Tensor] | None = None
        self._fit_details: dict = {}
        self._details: dict = {}
        self._untied_a_tied_head = False
        super().__init__(**options)

    def check(self) -> None:
        o = self.options
        if o.init == self.name:
            raise TransplantError("tokendistill: --init must be another method (fvt, hypernet, ...)")
        method_class(o.init)
        try:  # a bad init option fails before heavy work
            self.init_method = get(o.init, **o.init_options)
        except TransplantError as error:
            own = ", ".join(f.name for f in dataclasses.fields(TokenDistillOptions) if f.name != "init_options")
            raise TransplantError(f"tokendistill passes options it does not have to --init {o.init}: {error}; tokendistill's own: {own}") from None
        corpora = self.corpora()
        if not corpora and not o.hub:
            raise TransplantError("tokendistill needs target-language text: --target-corpus FILE (repeatable) or --hub DATASET[:CONFIG]")
        for path in corpora:
            if not Path(path).is_file():
                raise TransplantError(f"target corpus not found: {path}")
        self.settings().check()

    def corpora(self) -> list:
        given = self.options.target_corpus
        if given is None:
            return []
        return list(given) if isinstance(given, (list, tuple)) else [given]

    def settings(self) -> DistillSettings:
        o = self.options
        return DistillSettings(
            snippets_per_token=o.snippets_per_token, snippet_length=o.snippet_length, tokens_per_step=o.tokens_per_step,
            learning_rate=o.learning_rate, layer=o.distill_layer, head_ntp=self.head() == "ntp", head_learning_rate=o.head_learning_rate,
            max_seconds=o.max_seconds, checkpoint_every=o.checkpoint_every,
        )

    def head(self) -> str:
        return self.options.head

    def head_choice(self, tied: bool) -> str:
        head = self.head()
        if head == "tied" and not tied:
            raise TransplantError("tokendistill: --head tied needs a model whose head is tied to its input embeddings")
        return head

    def unties_head(self, tied_rows: torch.Tensor) -> bool:
        return self.head_choice(tied=True) != "tied"

    def report(self) -> dict:
        return self._details

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        # A head being untied is the tied input matrix: its init rows are the input rows (a
        # hypernetwork trained on a tied model's input rows predicts those and has no "output" kind).
        untying = inputs.kind == "output" and self._untied_a_tied_head
        values, names = self.init_method.rows(dataclasses.replace(inputs, kind="input") if untying else inputs, target_ids)
        if inputs.kind == "input":
            self._distill(inputs, target_ids, values, names)
        elif inputs.kind == "output" and self.head() == "fit" and self._fitted is not None:
            position = {t: p for p, t in enumerate(target_ids)}
            tokens, head_rows = self._fitted
            for token, row in zip(tokens, head_rows):
                values[position[token]] = row
                names[position[token]] = f"{RULE}-fit"
        elif inputs.kind == "output" and self.head() == "ntp" and self._outcome is not None:
            position = {t: p for p, t in enumerate(target_ids)}
            tokens, _, head_rows = self._outcome
            for token, row in zip(tokens, head_rows):
                values[position[token]] = row
                names[position[token]] = f"{RULE}-ntp"
        return values, names

    def _distill(self, inputs: InitInputs, target_ids: list[int], values: torch.Tensor, names: list[str]) -> None:
        from ..evaluate import read_text
        from ..tokendistill.snippets import TokenizedText, by_frequency, distillable, source_spelling, start_of_text
        from ..tokendistill.trainer import distill_rows

        if inputs.model is None:
            raise TransplantError("tokendistill runs the model itself: use transplant.convert or transplant.transplant")
        o = self.options
        access = inputs.model
        texts = [read_text(path) for path in self.corpora()]
        if o.hub:
            from ..hub_text import hub_text_file

            dataset, _, subset = o.hub.partition(":")
            texts.append(read_text(hub_text_file(dataset, subset or None, o.hub_bytes, progress=inputs.progress, local="--target-corpus FILE")))
        text = TokenizedText.from_text("\n".join(texts), access.target_tokenizer, inputs.progress)
        spelling = source_spelling(inputs.mapping, len(inputs.source))
        candidates = distillable(spelling, target_ids)
        occurring = by_frequency(text, candidates)
        tokens = [token for token, _ in occurring[: o.max_distilled_tokens]]
        position = {t: p for p, t in enumerate(target_ids)}
        init_rows = values[[position[t] for t in tokens]] if tokens else values[:0]

        model = access.load_model()
        tied = model.get_output_embeddings() is not None and model.get_output_embeddings().weight is model.get_input_embeddings().weight
        head = self.head_choice(tied)
        self._untied_a_tied_head = tied and head != "tied"
        head_matrix = None
        if head in ("ntp", "fit"):  # the whole init head of the new vocabulary: every other token competes
            source_head = model.get_output_embeddings().weight.detach().float()
            head_kind = "input" if self._untied_a_tied_head else "output"  # as in rows()
            head_inputs = InitInputs(inputs.mapping, source_head, head_kind, inputs.generator, inputs.progress, model=access)
            head_matrix, _ = self.init_method.initialize(head_inputs, len(inputs.mapping.target))
        start = start_of_text(access.source_tokenizer)
        outcome = distill_rows(
            model, text, spelling, tokens, init_rows, self.settings(), head_matrix=head_matrix if head == "ntp" else None, prefix=start,
            run_dir=access.run_dir, resume=o.resume, progress=inputs.progress,
        )
        if head == "fit":
            self._fitted = self._fit_head(model, text, spelling, start, head_matrix, target_ids, inputs)
        del model
        done = tokens[: outcome.done]
        for token, row in zip(done, outcome.input_rows):
            values[position[token]] = row
            names[position[token]] = RULE
        self._outcome = (done, outcome.input_rows, outcome.head_rows)
        self._details = {
            "init": o.init,
            "head": head,
            "candidates": len(candidates),  # new tokens spelled by two or more source pieces
            "occurring": len(occurring),  # ... of which occur in the text
            "selected": len(tokens),
            "distilled": outcome.done,
            "kept_init": len(target_ids) - outcome.done,
            "text_tokens": int(len(text.ids)),
            "seconds": round(outcome.seconds, 2),
            "seconds_per_token": round(outcome.seconds / outcome.done, 4) if outcome.done else None,
            "peak_rss_mb": round(outcome.peak_rss_mb, 1),
            "settings": dataclasses.asdict(self.settings()),
            "distilled_tokens": done,  # in the order learned (most frequent first)
            "log": outcome.log,
            **({"head_fit": self._fit_details} if head == "fit" else {}),
        }

    def _fit_head(self, model, text, spelling, prefix, head_matrix, target_ids, inputs) -> tuple[list[int], torch.Tensor]:
        """--head fit: every new token's head row by next-token prediction on the model's own
        final hidden states over the text (:mod:`transplant.tokendistill.headfit`)."""
        import time

        from ..tokendistill.headfit import fit_head_rows, next_token_features

        o = self.options
        started = time.perf_counter()
        body = model.base_model
        max_positions = getattr(model.config, "max_position_embeddings", None)
        features, labels = next_token_features(body, text, spelling, prefix, o.head_fit_tokens, max_positions, inputs.progress)
        generator = torch.Generator().manual_seed(0)
        rows, losses = fit_head_rows(
            features, labels, head_matrix, list(target_ids), o.head_fit_epochs, o.head_learning_rate, generator, inputs.progress, device=body.device
        )
        self._fit_details = {"examples": len(labels), "epoch_losses": [round(x, 4) for x in losses], "seconds": round(time.perf_counter() - started, 2)}
        return list(target_ids), rows
