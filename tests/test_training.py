"""Shared training helpers: checkpoints are atomic and restore everything a step depends on."""

import torch

from transplant.training import JsonlLog, latest_checkpoint, load_checkpoint, make_accelerator, save_checkpoint, step_generator


def _prepared(seed=0):
    accelerator = make_accelerator(seed)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    return accelerator, model, optimizer


def _train(model, optimizer, steps, start=0):
    for step in range(start, start + steps):
        g = step_generator(7, step)
        x = torch.randn(8, 4, generator=g)
        loss = (model(x) - x[:, :3]).pow(2).mean() + torch.randn(1).abs().item() * 0  # global RNG touched too
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_step_generator_depends_only_on_seed_and_step():
    a = torch.rand(3, generator=step_generator(1, 5))
    assert torch.equal(a, torch.rand(3, generator=step_generator(1, 5)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(1, 6)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(2, 5)))


def test_checkpoint_round_trip_resumes_exactly(tmp_path):
    accelerator, model, optimizer = _prepared()
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, optimizer, 6)
    straight = {k: v.clone() for k, v in model.state_dict().items()}

    accelerator, model, optimizer = _prepared()
    model.load_state_dict(reference)
    _train(model, optimizer, 3)
    save_checkpoint(accelerator, tmp_path, 3, {"tokens": 24})
    _train(model, optimizer, 1, start=3)  # progress after the checkpoint is lost by the "kill"

    accelerator, model, optimizer = _prepared(seed=99)
    state = load_checkpoint(accelerator, latest_checkpoint(tmp_path))
    assert state == {"tokens": 24, "step": 3}
    _train(model, optimizer, 3, start=state["step"])
    for name, value in model.state_dict().items():
        assert torch.equal(value, straight[name]), name


def test_only_complete_checkpoints_count_and_old_ones_go(tmp_path):
    accelerator, model, optimizer = _prepared()
    assert latest_checkpoint(tmp_path) is None
    for step in (1, 2, 3):
        save_checkpoint(accelerator, tmp_path, step, {})
    (tmp_path / "checkpoints" / ".step-4.partial").mkdir()  # a save killed half way
    (tmp_path / "checkpoints" / "step-5").mkdir()  # no state.json: never finished
    assert latest_checkpoint(tmp_path).name == "step-3"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-2", "step-3", "step-5"]


def test_log_drops_lines_past_the_resumed_step(tmp_path):
    log = JsonlLog(tmp_path / "log.jsonl")
    for step in (1, 2, 3):
        log.write(step=step, loss=1.0 / step)
    log.truncate_after(2)
    log.write(step=3, loss=0.5)
    assert [r["step"] for r in log.read()] == [1, 2, 3]
    assert log.read()[-1]["loss"] == 0.5
