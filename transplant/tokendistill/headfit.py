"""Head rows fitted by next-token prediction on the frozen model's own hidden states (``--head fit``).

Token Distillation learns input rows; a tied model moved onto a new tokenizer also needs output
rows, and the init method's rows (or the learned input rows, if the head stays tied) are poor ones.
Here the target text is written in source pieces (every target token as its spelling, as in the
snippets), the frozen model runs over it once, and the final hidden state after each target
token's last piece becomes the feature that should predict the next target token. Every new
token's head row is then fitted by softmax regression over the whole new vocabulary; rows of
copied tokens stay fixed, so they keep the original model's behaviour.

The model runs forward only (no backward through the layers), so this costs one pass over
``head_fit_tokens`` target tokens of text plus a few cheap epochs of ``[batch, width] x
[width, vocabulary]`` products, and it reaches every new token that occurs in that text.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .hidden import hidden_states
from .snippets import TokenizedText

FIT_BATCH = 512  # examples per optimizer step of the regression


def next_token_features(
    body, text: TokenizedText, spelling: list[list[int]], prefix: list[int], max_tokens: int, max_positions: int | None, progress: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features [n, width], labels [n]): the model's final hidden state before each of the first
    ``max_tokens`` target tokens of ``text`` (segment by segment, each after ``prefix``) and that
    token. A segment stops at the first token nothing spells, or where the model's positions end."""
    features, labels = [], []
    segments = len(text.bounds)
    used = 0
    with torch.no_grad(), tqdm(total=max_tokens, desc="head fit: hidden states", unit="token", disable=not progress) as bar:
        for segment in range(segments):
            if used >= max_tokens:
                break
            start = int(text.bounds[segment - 1]) if segment else 0
            tokens = text.ids[start : int(text.bounds[segment])].tolist()[: max_tokens - used]
            ids, predictors, targets = list(prefix), [], []
            for token in tokens:
                pieces = spelling[token]
                if not pieces or (max_positions is not None and len(ids) + len(pieces) > max_positions):
                    break
                if ids:  # the state after everything so far predicts this token
                    predictors.append(len(ids) - 1)
                    targets.append(token)
                ids.extend(pieces)
            if not targets:
                continue
            hidden, _ = hidden_states(body, -1, input_ids=torch.tensor([ids], device=body.device))
            features.append(hidden[0, predictors].float().cpu())
            labels.append(torch.tensor(targets, dtype=torch.long))
            used += len(targets)
            bar.update(len(targets))
    if not features:
        return torch.zeros(0, body.config.hidden_size), torch.zeros(0, dtype=torch.long)
    return torch.cat(features), torch.cat(labels)


def fit_head_rows(
    features: torch.Tensor, labels: torch.Tensor, head: torch.Tensor, trainable: list[int], epochs: int, learning_rate: float,
    generator: torch.Generator, progress: bool = True, device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, list[float]]:
    """Rows for ``trainable`` (ids into ``head`` [vocabulary, width]), fitted with Adam on
    ``device`` so that softmax(features @ head.T) predicts ``labels``; every other row of ``head``
    is fixed. Returns the rows (on the CPU) and the mean training loss of each epoch."""
    head, features, labels = head.float().to(device), features.to(device), labels.to(device)
    trainable_ids = torch.tensor(trainable, dtype=torch.long, device=device)
    rows = torch.nn.Parameter(head[trainable_ids].clone())
    optimizer = torch.optim.Adam([rows], lr=learning_rate)
    losses = []
    steps = (len(labels) + FIT_BATCH - 1) // FIT_BATCH
    with tqdm(total=epochs * steps, desc="head fit: regression", unit="step", disable=not progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(labels), generator=generator)
            total = 0.0
            for start in range(0, len(order), FIT_BATCH):
                pick = order[start : start + FIT_BATCH].to(device)
                full = head.index_copy(0, trainable_ids, rows)
                loss = torch.nn.functional.cross_entropy(features[pick] @ full.T, labels[pick])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(pick)
                bar.update()
            losses.append(total / max(len(labels), 1))
    return rows.detach().cpu(), losses
