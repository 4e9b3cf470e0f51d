"""``omp``: a new token is the donor's sparse (OMP) mix of shared tokens, applied to the model's rows.

Orthogonal Matching Pursuit through a donor model, as mergekit's tokensurgeon (arXiv 2506.06607),
written anew here. The donor is a model that already uses the new tokenizer. In the donor's embedding space every
new token is approximated by a sparse combination of the tokens both vocabularies share:

    donor[new] ≈ Σ_i c_i · donor[shared_i]      (greedy OMP, ``atoms`` of them, least squares)

and the same combination of the *base* model's rows of those shared tokens becomes the new row:

    base[new] = Σ_i c_i · base[shared_i]

This is exact when the two embedding spaces are related by a linear map on the shared tokens and
the donor row is a combination of at most ``atoms`` shared rows. Input embeddings use the donor's
input embeddings; an untied output head uses the donor's output head (its input embeddings when
the donor is tied). A head's bias is rebuilt by ``fvt`` (``handles_bias = False``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from ..errors import TransplantError
from ..lazy import lazy_import
from . import option, register
from .base import EXACT, InitInputs, Initializer

torch = lazy_import("torch")
tqdm_auto = lazy_import("tqdm.auto")

BUFFER = 1 << 25  # floats (128 MiB) in each per-batch buffer: scores [batch, atoms], basis [batch, k, width]
MAX_BATCH = 4096
PROGRESS_FROM = 2048  # show a progress bar from this many new tokens on
DEPENDENT = 1e-3  # an atom with less than this share of its norm outside the chosen atoms' span gets
# coefficient 0: near-duplicates would otherwise get huge cancelling coefficients in the donor
# space that do not cancel in the base space


@dataclass
class OmpOptions:
    donor: str | None = option(None, "A model that already uses NEW_TOKENIZER (directory, .gguf or hub id): its embedding space supplies the sparse mixes.", kind="text")
    atoms: int = option(64, "Shared tokens (OMP atoms) mixed per new token.", minimum=1)


def batch_size(atoms: int, k: int, width: int) -> int:
    """New tokens per batch so that no per-batch buffer exceeds BUFFER floats."""
    return max(1, min(MAX_BATCH, BUFFER // max(atoms, 1), BUFFER // max(k * width, 1)))


def omp(dictionary: torch.Tensor, targets: torch.Tensor, k: int, batch: int | None = None, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy OMP of every row of ``targets`` [T, d] over the rows (atoms) of ``dictionary`` [N, d].

    Returns ``(indices, coefficients)``, both [T, min(k, N, d)]: ``targets ≈ (coefficients[..., None] *
    dictionary[indices]).sum(1)``. Each step picks the atom with the largest |cosine| to the
    residual, among those not yet chosen, extends an orthonormal basis of the chosen atoms
    (classical Gram-Schmidt, applied twice for stability) and removes the new direction from the
    residual; the coefficients are then the least-squares solution R c = Qᵀ x on the chosen atoms.
    An atom already in the span of the chosen ones (duplicates, zero rows, or a residual that is
    already zero) gets coefficient 0. fp32 throughout.
    """
    if k < 1:
        raise TransplantError(f"omp needs k >= 1, not {k}")
    dictionary = dictionary.float()
    targets = targets.float()
    atoms, width = dictionary.shape
    k = min(k, atoms, width)  # more atoms than dimensions add nothing: the residual is already 0
    norms = dictionary.norm(dim=1)
    # selection by |cosine|: scores are scaled by 1/norm; zero atoms get 0 and are never preferred
    inverse = torch.where(norms > 0, 1 / norms, torch.zeros_like(norms))
    batch = batch or batch_size(atoms, k, width)
    indices = torch.empty(len(targets), k, dtype=torch.long)
    coefficients = torch.empty(len(targets), k, dtype=torch.float32)
    with tqdm_auto.tqdm(total=len(targets), desc="omp", unit="token", disable=not progress) as bar:
        for start in range(0, len(targets), batch):
            stop = min(start + batch, len(targets))
            indices[start:stop], coefficients[start:stop] = _omp_batch(dictionary, inverse, norms, targets[start:stop], k)
            bar.update(stop - start)
    return indices, coefficients


def _omp_batch(dictionary, inverse, norms, x, k):
    batch, width = x.shape
    rows = torch.arange(batch)
    residual = x.clone()
    basis = torch.zeros(batch, k, width)  # Q: orthonormal basis of the chosen atoms
    upper = torch.zeros(batch, k, k)  # R: chosen atoms = Q R
    projections = torch.zeros(batch, k)  # Qᵀ x
    chosen = torch.zeros(batch, k, dtype=torch.long)
    for step in range(k):
        scores = (residual @ dictionary.T).abs_().mul_(inverse)  # [batch, atoms]
        if step:
            scores.scatter_(1, chosen[:, :step], -1.0)  # never the same atom twice
        pick = scores.argmax(1)
        chosen[:, step] = pick
        atom = dictionary[pick]  # [batch, width]
        q = basis[:, :step]  # [batch, step, width]; bmm on row vectors reads it without a copy
        overlap = torch.bmm(atom[:, None], q.transpose(1, 2))[:, 0]  # Qᵀ a
        rest = atom - torch.bmm(overlap[:, None], q)[:, 0]
        again = torch.bmm(rest[:, None], q.transpose(1, 2))[:, 0]  # Gram-Schmidt twice
        rest -= torch.bmm(again[:, None], q)[:, 0]
        length = rest.norm(dim=1)
        dependent = length <= DEPENDENT * norms[pick]
        direction = torch.where(dependent[:, None], 0.0, rest / torch.where(dependent, 1.0, length)[:, None])
        basis[:, step] = direction
        upper[:, :step, step] = overlap + again
        upper[rows, step, step] = torch.where(dependent, 1.0, length)  # with Q = 0 there: c = 0
        along = (direction * residual).sum(1)
        projections[:, step] = along
        residual -= direction * along[:, None]
    coeffs = torch.linalg.solve_triangular(upper, projections[:, :, None], upper=True)[..., 0]
    return chosen, coeffs


@register
class OmpInit(Initializer):
    name = "omp"
    Options = OmpOptions
    needs = ("donor",)
    renamed_options = {"k": "atoms"}
    handles_bias = False

    def __init__(self, **options):
        super().__init__(**options)
        self._checkpoint = None
        self._donor_vocab: dict[str, int] | None = None
        self._donor_tensors: dict[str, torch.Tensor] = {}  # role -> fp32 matrix, read once
        self._warned = False

    def check(self) -> None:
        if not self.options.donor:
            raise TransplantError("omp needs --donor: a model that already uses the new tokenizer")

    # -- the donor ------------------------------------------------------------------------------

    def _open_donor(self):
        if self._checkpoint is None:
            from ..checkpoint import open_checkpoint
            from ..loading import load_tokenizer

            spec = self.options.donor
            try:
                checkpoint = open_checkpoint(spec)
                tokenizer = load_tokenizer(checkpoint.directory)
            except TransplantError as error:
                raise TransplantError(f"omp donor: {error}") from None
            self._checkpoint, self._donor_vocab = checkpoint, tokenizer.get_vocab()
        return self._checkpoint

    def _donor_matrix(self, kind: str) -> torch.Tensor:
        """The donor's input embeddings, or its output head (input embeddings if tied)."""
        from ..checkpoint import read_tensor

        checkpoint = self._open_donor()
        role = "output" if kind == "output" and "output" in checkpoint.vocab_keys else "input"
        if role not in self._donor_tensors:
            tensor = read_tensor(checkpoint, checkpoint.vocab_keys[role])
            self._donor_tensors[role] = tensor.float().reshape(tensor.shape[0], -1)
        return self._donor_tensors[role]

    def _check_vocabulary(self, inputs: InitInputs, needed: list[int]) -> None:
        """The donor must use the new tokenizer: the same token at every id it knows."""
        target_vocab = inputs.mapping.target.tokenizer.get_vocab()
        donor_vocab = self._donor_vocab
        differ = sorted(t for t, i in donor_vocab.items() if target_vocab.get(t) != i)
        # tokens only the new tokenizer has are fine if they are never read from the donor
        # (special tokens added with --add-missing-special-tokens are copied from the model)
        needed_set = set(needed)
        differ += sorted(t for t, i in target_vocab.items() if t not in donor_vocab and i in needed_set)
        if differ:
            example = differ[0]
            raise TransplantError(
                f"omp donor {self.options.donor} does not use the new tokenizer: {len(differ)} token(s) differ "
                f"(e.g. {example!r} is id {donor_vocab.get(example)} in the donor, "
                f"{target_vocab.get(example)} in the new tokenizer)"
            )

    # -- the rows ---------------------------------------------------------------------------------

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        if inputs.kind not in ("input", "output"):
            raise TransplantError(f"omp rebuilds embedding matrices, not '{inputs.kind}'")
        mapping, source = inputs.mapping, inputs.source
        shared = [t for t, s in enumerate(mapping.matches) if 0 <= s < len(source) and mapping.match_kind[t] == EXACT]
        needed = shared + list(target_ids)
        self._open_donor()
        self._check_vocabulary(inputs, needed)  # before reading any tensor
        if not shared:
            raise TransplantError("omp needs tokens shared by the model and the new tokenizer as its dictionary; there are no tokens shared")
        donor = self._donor_matrix(inputs.kind)
        if max(needed) >= len(donor):
            raise TransplantError(
                f"omp donor {self.options.donor} has {len(donor)} embedding rows, fewer than the new tokenizer's {len(mapping.target)} tokens"
            )
        k = self.options.atoms
        if len(shared) < k:
            if not self._warned:  # once, not again for the output head
                warnings.warn(f"omp: only {len(shared)} shared tokens, fewer than atoms={k}; using all of them", stacklevel=2)
                self._warned = True
            k = len(shared)
        atoms = torch.tensor(shared, dtype=torch.long)
        chosen, coefficients = omp(
            donor[atoms], donor[torch.tensor(target_ids, dtype=torch.long)], k, progress=inputs.progress and len(target_ids) >= PROGRESS_FROM
        )
        base = source[torch.tensor([mapping.matches[t] for t in shared], dtype=torch.long)]
        result = torch.empty(len(target_ids), source.shape[1], dtype=torch.float32)
        step = batch_size(0, chosen.shape[1], source.shape[1])
        for start in range(0, len(target_ids), step):  # [batch, k, width] at a time
            stop = start + step
            result[start:stop] = torch.einsum("bk,bkd->bd", coefficients[start:stop], base[chosen[start:stop]])
        return result, ["omp"] * len(target_ids)
