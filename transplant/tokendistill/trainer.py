"""The Token Distillation loop: learn new tokens' input rows from the frozen model's hidden states.

Tokens are learned in groups of ``tokens_per_step``, most frequent first. A group's rows start
from the init method's rows and get ``snippets_per_token`` AdamW steps; each step's batch holds
one snippet per token of the group, so a step trains many tokens at once and memory depends on
the group size and snippet length, never on the vocabulary. In each snippet the frozen model
runs twice: on the original source pieces (teacher, no gradient) and with the pieces replaced by
one position whose input vector is the token's row (student). The loss is the mean squared error
between the two at ``layer``, at the new token's position (aligned with its last piece) and every
position after it; the positions before it see the same inputs in both runs.

With ``head_ntp`` the group's output rows are learned at the same time by next-token prediction:
at the position before each occurrence the model should predict the new token, scored over the
whole new vocabulary (the init head for every other row).

Nothing in a step is random, so a group's result depends only on its tokens and text. A
checkpoint is written after every ``checkpoint_every`` groups (accelerate state holding the rows
learned so far, written atomically by ``transplant.training``); a resumed run redoes at most the
groups after it and ends with the same rows. ``max_seconds`` stops between or within groups; a
group cut short keeps its init rows.
"""

from __future__ import annotations

import dataclasses
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import TransplantError
from ..training import JsonlLog, latest_checkpoint, load_checkpoint, make_accelerator, save_checkpoint
from .hidden import hidden_states, resolve_layer
from .settings import DistillSettings
from .snippets import Snippet, TokenizedText, make_snippet, occurrences

LOG_FILE = "log.jsonl"
# settings a resumed run may change: the budget only
_RESUMABLE_CHANGES = {"max_seconds", "checkpoint_every"}


@dataclass
class Outcome:
    input_rows: torch.Tensor  # [done, width] for tokens[:done]
    head_rows: torch.Tensor | None  # the same for the head (head_ntp)
    done: int  # how many of the tokens (a prefix, most frequent first) were distilled
    seconds: float
    log: list[dict] = field(default_factory=list)
    peak_rss_mb: float = 0.0


class LearnedRows:
    """The rows learned so far, checkpointed through accelerate (``register_for_checkpointing``)."""

    def __init__(self, width: int, head: bool):
        self.input = torch.zeros(0, width)
        self.head = torch.zeros(0, width) if head else None
        self.seconds = 0.0

    def append(self, input_rows: torch.Tensor, head_rows: torch.Tensor | None) -> None:
        self.input = torch.cat([self.input, input_rows.detach().float().cpu()])
        if self.head is not None:
            self.head = torch.cat([self.head, head_rows.detach().float().cpu()])

    def state_dict(self) -> dict:
        state = {"input": self.input, "seconds": torch.tensor(self.seconds, dtype=torch.float64)}
        if self.head is not None:
            state["head"] = self.head
        return state

    def load_state_dict(self, state: dict) -> None:
        self.input = state["input"]
        self.head = state.get("head")
        self.seconds = float(state["seconds"])


@dataclass
class Batch:
    teacher_ids: torch.Tensor
    teacher_mask: torch.Tensor
    student_ids: torch.Tensor
    student_mask: torch.Tensor
    new_position: torch.Tensor  # [batch] where the student's new token sits
    pair_batch: torch.Tensor  # aligned (student, teacher) positions, flattened
    pair_student: torch.Tensor
    pair_teacher: torch.Tensor

    def to(self, device) -> "Batch":
        return Batch(*(value.to(device) for value in dataclasses.astuple(self)))


def collate(snippets: list[Snippet], pad: int) -> Batch:
    teachers = [s.ids for s in snippets]
    students = [s.student(pad) for s in snippets]

    def padded(rows):
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows], dtype=torch.long)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], dtype=torch.long)
        return ids, mask

    teacher_ids, teacher_mask = padded(teachers)
    student_ids, student_mask = padded(students)
    batch_index, student_index, teacher_index = [], [], []
    for b, (snippet, student) in enumerate(zip(snippets, students)):
        shift = snippet.pieces - 1
        for position in range(snippet.start, len(student)):
            batch_index.append(b)
            student_index.append(position)
            teacher_index.append(position + shift)
    return Batch(
        teacher_ids, teacher_mask, student_ids, student_mask,
        torch.tensor([s.start for s in snippets], dtype=torch.long),
        torch.tensor(batch_index), torch.tensor(student_index), torch.tensor(teacher_index),
    )


def distill_rows(
    model,
    text: TokenizedText,
    spelling: list[list[int]],
    tokens: list[int],
    init_rows: torch.Tensor,
    settings: DistillSettings,
    *,
    head_matrix: torch.Tensor | None = None,
    prefix: list[int] = (),
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Outcome:
    """Learned input rows (and head rows) for a prefix of ``tokens``; ``init_rows[i]`` is token i's
    start. ``head_matrix`` is the whole init head of the new vocabulary (needed for head_ntp)."""
    settings.check()
    accelerator = make_accelerator(settings.seed)
    device = accelerator.device
    model.requires_grad_(False).eval().to(device)
    body = model.base_model
    layer = resolve_layer(body, settings.layer)
    embedding = model.get_input_embeddings()
    learned = LearnedRows(init_rows.shape[1], settings.head_ntp)
    accelerator.register_for_checkpointing(learned)
    if settings.head_ntp and head_matrix is None:
        raise TransplantError("tokendistill: learning the head by next-token prediction needs the init head")
    head_all = head_matrix.to(device) if head_matrix is not None else None

    log = JsonlLog(run_dir / LOG_FILE) if run_dir is not None else None
    checkpoint = latest_checkpoint(run_dir) if run_dir is not None else None
    if checkpoint is not None and resume:
        state = load_checkpoint(accelerator, checkpoint)
        _check_same_run(state["settings"], settings, state["tokens"], tokens)
        log.truncate_after(state["step"])
    elif run_dir is not None:
        if checkpoint is not None:
            raise TransplantError(f"an interrupted conversion is in {run_dir}: pass --resume to continue it or --overwrite to start over")
        log.truncate_after(-1)

    group_size = settings.tokens_per_step
    groups = math.ceil(len(tokens) / group_size)
    started = time.perf_counter() - learned.seconds
    bar = tqdm(total=len(tokens), initial=len(learned.input), unit="tok", desc="token distillation", disable=not progress)
    while len(learned.input) < len(tokens):
        first = len(learned.input)
        group = tokens[first : first + group_size]
        found = occurrences(text, group, settings.snippets_per_token, settings.seed)
        rows = torch.nn.Parameter(init_rows[first : first + len(group)].clone().to(device))
        groups_of_parameters = [{"params": [rows]}]
        head = None
        if settings.head_ntp:
            head = torch.nn.Parameter(head_all[torch.tensor(group, device=device)].clone())
            groups_of_parameters.append({"params": [head], "lr": settings.head_learning_rate or settings.learning_rate})
        optimizer = torch.optim.AdamW(groups_of_parameters, lr=settings.learning_rate, weight_decay=0.0)
        group_ids = torch.tensor(group, device=device)
        losses, cut_short = [], False
        for step in range(settings.snippets_per_token):
            if settings.max_seconds is not None and time.perf_counter() - started >= settings.max_seconds:
                cut_short = True
                break
            snippets = [make_snippet(text, spelling, int(found[t][step % len(found[t])]), settings.snippet_length, list(prefix)) for t in group]
            batch = collate(snippets, pad=0).to(device)
            with accelerator.autocast():
                loss, ntp = snippet_losses(body, embedding, layer, batch, rows, head, head_all, group_ids)
            accelerator.backward(loss + (ntp if ntp is not None else 0.0))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append((loss.item(), None if ntp is None else ntp.item()))
        if cut_short:
            break
        learned.append(rows, head)
        learned.seconds = time.perf_counter() - started
        record = {"step": first // group_size + 1, "tokens": len(learned.input), "seconds": round(learned.seconds, 2)}
        record |= {"loss_first": losses[0][0], "loss_last": losses[-1][0]}
        if settings.head_ntp:
            record |= {"ntp_first": losses[0][1], "ntp_last": losses[-1][1]}
        if log is not None:
            log.write(**record)
        bar.update(len(group))
        bar.set_postfix(loss=f"{losses[0][0]:.4f}->{losses[-1][0]:.4f}")
        group_index = first // group_size + 1
        if run_dir is not None and group_index < groups and group_index % settings.checkpoint_every == 0:
            save_checkpoint(accelerator, run_dir, group_index, {"settings": _settings_json(settings), "tokens": list(tokens)})
    bar.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Outcome(learned.input, learned.head, len(learned.input), time.perf_counter() - started, log.read() if log else [], peak)


def snippet_losses(body, embedding, layer, batch: Batch, rows, head=None, head_all=None, group_ids=None):
    """Hidden-state MSE of the student against the teacher, and the head's next-token loss."""
    with torch.no_grad():
        teacher, final = hidden_states(
            body, layer, final=head is not None, input_ids=batch.teacher_ids, attention_mask=batch.teacher_mask, use_cache=False
        )
    inputs = embedding(batch.student_ids)
    # the new token's input vector is its row: index_put keeps the graph back to ``rows``
    inputs = inputs.index_put((torch.arange(len(rows), device=rows.device), batch.new_position), rows.to(inputs.dtype))
    student, _ = hidden_states(body, layer, inputs_embeds=inputs, attention_mask=batch.student_mask, use_cache=False)
    loss = torch.nn.functional.mse_loss(
        student[batch.pair_batch, batch.pair_student].float(), teacher[batch.pair_batch, batch.pair_teacher].float()
    )
    ntp = None
    if head is not None:
        # the position before the token predicts it; its hidden state is the same in both runs.
        # A token at a snippet's very start (a tokenizer without bos/eos) has no such position.
        valid = batch.new_position > 0
        before = final[torch.arange(len(rows), device=rows.device)[valid], batch.new_position[valid] - 1].float()
        logits = (before @ head_all.T).index_copy(1, group_ids, before @ head.T)
        ntp = torch.nn.functional.cross_entropy(logits, group_ids[valid]) if bool(valid.any()) else head.sum() * 0.0
    return loss, ntp


def _settings_json(settings: DistillSettings) -> dict:
    return dataclasses.asdict(settings)


def _check_same_run(saved: dict, settings: DistillSettings, saved_tokens: list[int], tokens: list[int]) -> None:
    current = _settings_json(settings)
    changed = sorted(k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k])
    if saved_tokens != list(tokens):
        changed.append("tokens (target text, tokenizer or --max-distilled-tokens)")
    if changed:
        raise TransplantError(f"--resume with different settings ({', '.join(changed)}); use the original ones or --overwrite")
