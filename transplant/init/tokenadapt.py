"""``tokenadapt``: TokenAdapt's hybrid of a local (decomposition) and a global (neighbour) estimate.

After TokenAdapt (arXiv 2505.09738), with the model's own space standing in for its external
text embedder: the vector of the "full token" is its FVT estimate q_t (mean of the source rows that
spell it), a piece's vector is its own source row (see ``topk`` for the similarity space, which a
later space such as static word vectors replaces without touching the arithmetic here).

Local, over the pieces p_1..p_n of the token's decomposition (bytes b_i, token bytes B = Σ b_i):

    s_i = cos(v[p_i], q_t);  a = softmax(s);  w = softmax(((a + b / B) / 2) / T)
    local = Σ_i w_i · E_old[p_i]

Global, over the k source tokens nearest to q_t (cosine, real tokens only), those with a
similarity below ``threshold`` masked out:

    global = Σ_j softmax(sim_j / T) · E_old[j]

Hybrid: (1 − weight) · local + weight · global; when only one exists it is used alone (rules
"tokenadapt", "tokenadapt-local", "tokenadapt-global"), when neither the mean source row ("mean").
Defaults are TokenAdapt's: k = 3, T = 0.3, weight = 0.3, threshold = 0.0. An untied head is
rebuilt in its own space; its bias by ``fvt`` (``handles_bias = False``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..lazy import lazy_import
from . import option, register
from .base import InitInputs, Initializer
from .topk import ROW_BATCH, NeighborCache, SimilaritySpace, candidate_ids, combine, nearest, neighbours_option, own_space, temperature_option

torch = lazy_import("torch")

PIECE_BATCH = 65_536  # decomposition pieces whose similarity to their token is computed at once


@dataclass
class TokenAdaptOptions:
    k: int = neighbours_option(3)
    temperature: float = temperature_option(0.3)
    weight: float = option(0.3, "Share of the global (neighbour) estimate in the hybrid; the local (decomposition) estimate gets the rest.", minimum=0, maximum=1)
    threshold: float = option(0.0, "Neighbours whose cosine similarity is below this are ignored.", minimum=-1, maximum=1)


def segment_softmax(values: torch.Tensor, groups: torch.Tensor, count: int) -> torch.Tensor:
    """Softmax of ``values`` within each group (``groups[i]`` in 0..count-1)."""
    peak = torch.full((count,), float("-inf"), dtype=values.dtype).scatter_reduce(0, groups, values, "amax")
    exp = (values - peak[groups]).exp()
    total = torch.zeros(count, dtype=values.dtype).index_add(0, groups, exp)
    return exp / total[groups]


@register
class TokenAdaptInit(Initializer):
    name = "tokenadapt"
    Options = TokenAdaptOptions
    handles_bias = False
    row_batch = ROW_BATCH

    def __init__(self, **options):
        super().__init__(**options)
        self.neighbors = NeighborCache()

    def similarity_space(self, inputs: InitInputs, target_ids: list[int]) -> SimilaritySpace:
        """Where similarities are measured; the model's own space unless a subclass says otherwise."""
        return own_space(inputs, target_ids)

    def local(self, inputs: InitInputs, space: SimilaritySpace, target_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Local estimates [len(target_ids), width] and which tokens have one."""
        mapping, source = inputs.mapping, inputs.source
        limit = min(len(source), len(space.source))
        positions, pieces, shares = [], [], []
        for position, (target_id, known) in enumerate(zip(target_ids, space.known.tolist())):
            found = [p for p in mapping.pieces[target_id] if p < limit] if known and target_id < len(mapping.pieces) else []
            if not found:
                continue
            lengths = [max(len(mapping.source.surface(p)), 1) for p in found]
            total = float(sum(lengths))
            positions += [position] * len(found)
            pieces += found
            shares += [length / total for length in lengths]
        count = len(target_ids)
        has = torch.zeros(count, dtype=torch.bool)
        if not pieces:
            return torch.zeros(count, source.shape[1]), has
        positions_t = torch.tensor(positions, dtype=torch.long)
        pieces_t = torch.tensor(pieces, dtype=torch.long)
        # in batches: gathering [pieces, width] twice at once is ~14 GB for a million new tokens
        similarity = torch.empty(len(pieces_t))
        for start in range(0, len(pieces_t), PIECE_BATCH):
            batch = slice(start, start + PIECE_BATCH)
            similarity[batch] = torch.nn.functional.cosine_similarity(
                space.source[pieces_t[batch]].float(), space.queries[positions_t[batch]].float(), dim=-1
            )
        semantic = segment_softmax(similarity, positions_t, count)
        mixed = (semantic + torch.tensor(shares, dtype=torch.float32)) / 2
        weights = segment_softmax(mixed / self.options.temperature, positions_t, count)
        averaging = torch.sparse_coo_tensor(
            torch.stack([positions_t, pieces_t]), weights, (count, len(source)), check_invariants=False
        )
        has[positions_t] = True
        return torch.sparse.mm(averaging, source), has

    def global_(self, inputs: InitInputs, space: SimilaritySpace) -> tuple[torch.Tensor, torch.Tensor]:
        """Global estimates [requested tokens, width] and which tokens have one."""
        count = len(space.queries)
        out = torch.zeros(count, inputs.source.shape[1])
        has = torch.zeros(count, dtype=torch.bool)
        known = space.known.nonzero().squeeze(1)
        if len(known):
            candidates = candidate_ids(inputs, space)
            index = self.neighbors.index(space, candidates)
            scores, ids = nearest(space, candidates, space.queries[known], self.options.k, progress=inputs.progress, index=index)
            ids = torch.where(scores >= self.options.threshold, ids, torch.full_like(ids, -1))
            kept = (ids >= 0).any(1)
            out[known] = combine(scores, ids, inputs.source, self.options.temperature)
            has[known] = kept
        return out, has

    def rows(self, inputs: InitInputs, target_ids: list[int]) -> tuple[torch.Tensor, list[str]]:
        space = self.similarity_space(inputs, target_ids)
        local, has_local = self.local(inputs, space, target_ids)
        global_, has_global = self.global_(inputs, space)
        del space  # the queries: as large as the result
        weight = self.options.weight
        both = has_local & has_global
        # In place, one coefficient per row (no [rows, width] temporaries): (1 - weight) * local +
        # weight * global where both exist, the one that exists otherwise (the other is zeros).
        local_share = torch.where(both, torch.tensor(1.0 - weight), has_local.float())
        global_share = torch.where(both, torch.tensor(float(weight)), has_global.float())
        result = local.mul_(local_share[:, None]).add_(global_.mul_(global_share[:, None]))
        del global_
        result[~(has_local | has_global)] = inputs.token_rows().mean(0)
        names = [
            "tokenadapt" if local_ok and global_ok else "tokenadapt-local" if local_ok else "tokenadapt-global" if global_ok else "mean"
            for local_ok, global_ok in zip(has_local.tolist(), has_global.tolist())
        ]
        return result, names
