"""The Trainer: exact resume, AMP off on CPU, clear checkpoint errors, history, load_or_train, schedules."""
import numpy as np
import pytest
import torch

from posebook import models
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.train import Trainer, checkpoint_path, load_or_train, lr_factor, plot_history, read_checkpoint


class TinyPoses(torch.utils.data.Dataset):
    """Random 32x32 images with 8x8 targets; item i is fixed, plus a flip drawn from numpy's global RNG (augmentation)."""

    def __init__(self, n=24, joints=3):
        g = torch.Generator().manual_seed(123)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.targets = torch.rand(n, joints, 8, 8, generator=g)
        self.weights = (torch.rand(n, joints, generator=g) > 0.2).float()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image, target = self.images[i], self.targets[i]
        if np.random.rand() < 0.5:  # augmentation: must be reproduced exactly on resume
            image, target = image.flip(-1), target.flip(-1)
        return {"image": image, "target": target, "target_weight": self.weights[i], "meta": {"index": i}}


def make_trainer(steps=6, **kwargs):
    torch.manual_seed(0)
    model = models.create("hourglass", stacks=2, channels=8, num_joints=3, order=2)
    options = dict(steps=steps, batch_size=4, optimizer="adam", lr=1e-2, schedule="multistep", milestones=(4,),
                   warmup_steps=2, log_every=1, progress=False, device="cpu")
    options.update(kwargs)
    return Trainer(model, TinyPoses(), MultiOutputLoss(JointsMSELoss()), **options)


def test_interrupted_run_resumed_from_checkpoint_reaches_exactly_the_same_weights(tmp_path):
    straight = make_trainer(steps=8)
    straight.fit()
    interrupted = make_trainer(steps=8)
    interrupted.fit(until=5)  # 5 steps: crosses an epoch boundary (6 batches per epoch) only after resume
    interrupted.save(tmp_path / "run.pt")
    torch.manual_seed(999)  # a different global state and a differently initialised model must not matter
    np.random.seed(7)
    resumed = make_trainer(steps=8)
    with torch.no_grad():
        for p in resumed.model.parameters():
            p.add_(1.0)
    resumed.load(tmp_path / "run.pt")
    resumed.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_resume_is_exact_with_data_loader_workers(tmp_path):
    straight = make_trainer(steps=4, num_workers=2)
    straight.fit()
    part = make_trainer(steps=4, num_workers=2)
    part.fit(until=2)
    part.save(tmp_path / "w.pt")
    resumed = make_trainer(steps=4).load(tmp_path / "w.pt")  # workers or not, the batches are the same
    resumed.fit()
    assert [h["loss"] for h in straight.history] == pytest.approx([h["loss"] for h in resumed.history], abs=0)


def test_amp_and_channels_last_are_off_on_cpu():
    trainer = make_trainer(amp=True, device="cpu")
    assert trainer.amp_dtype is None
    assert not trainer.scaler.is_enabled()
    assert not trainer.channels_last


def test_history_records_step_loss_lr_throughput_and_validation_metrics():
    calls = []

    def validate(model):
        calls.append(model.training)
        return {"AP": 0.5, "PCK": 0.25}

    trainer = make_trainer(steps=6, log_every=2, validate=validate, val_every=3)
    history = trainer.fit()
    assert [h["step"] for h in history] == [2, 3, 4, 6]
    assert calls == [False, False]  # validated in eval mode, at step 3 and at the end
    logged = [h for h in history if "loss" in h]
    assert all(h["loss"] > 0 and h["samples_per_s"] > 0 for h in logged)
    assert [h["lr"] for h in logged] == pytest.approx([1e-2, 1e-3, 1e-3])  # warmup over, x0.1 from step 4
    assert history[1] == {"step": 3, "AP": 0.5, "PCK": 0.25} and history[-1]["AP"] == 0.5
    fig = plot_history(history)
    assert len(fig.axes) == 2


def test_loss_decreases_on_a_learnable_problem():
    trainer = make_trainer(steps=30, lr=3e-3, schedule="constant", warmup_steps=0)
    history = trainer.fit()
    assert np.mean([h["loss"] for h in history[-5:]]) < 0.5 * history[0]["loss"]


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        make_trainer().load(tmp_path / "nowhere.pt")


def test_truncated_checkpoint_names_the_file(tmp_path):
    trainer = make_trainer(steps=2)
    trainer.fit()
    path = trainer.save(tmp_path / "full.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.pt.*truncated"):
        make_trainer().load(cut)


def test_foreign_checkpoint_names_the_file_and_what_it_holds(tmp_path):
    foreign = tmp_path / "weights_only.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(ValueError, match=r"weights_only\.pt is not a posebook Trainer checkpoint.*state_dict"):
        read_checkpoint(foreign)


def test_checkpoint_of_another_model_names_the_file(tmp_path):
    other = Trainer(models.create("hourglass", stacks=1, channels=8, num_joints=3, order=2), TinyPoses(),
                    MultiOutputLoss(JointsMSELoss()), steps=1, batch_size=4, progress=False, device="cpu")
    path = other.save(tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt does not fit"):
        make_trainer().load(path)


def test_save_leaves_no_temporary_file(tmp_path):
    make_trainer(steps=1).save(tmp_path / "a.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_load_or_train_trains_once_then_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    config = {"stacks": 2, "steps": 3}
    first = load_or_train(make_trainer(steps=3), "test_chapter", config, profile="smoke")
    assert not first.loaded and first.step == 3
    assert checkpoint_path("test_chapter", config, "smoke").exists()
    second = load_or_train(make_trainer(steps=3), "test_chapter", config, profile="smoke")
    assert second.loaded and second.history == first.history
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    other = checkpoint_path("test_chapter", {"stacks": 2, "steps": 4}, "smoke")
    assert other != checkpoint_path("test_chapter", config, "smoke")


def test_trial_runs_keep_their_checkpoints_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    config = {"stacks": 2, "steps": 3}
    real = checkpoint_path("test_chapter", config, "gpu")
    monkeypatch.setenv("POSEBOOK_TRIAL", "1")
    trial = checkpoint_path("test_chapter", config, "gpu")
    assert trial != real and trial.parent == tmp_path / "checkpoints" / "trial" and trial.name == real.name
    load_or_train(make_trainer(steps=3), "test_chapter", config, profile="gpu")
    assert trial.exists() and not real.exists()


def test_warmup_then_cosine_schedule():
    assert lr_factor(0, 100, "cosine", warmup_steps=10, warmup_factor=0.1) == pytest.approx(0.1)
    assert lr_factor(10, 100, "cosine", warmup_steps=10) == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.1)))
    assert lr_factor(100, 100, "cosine") == pytest.approx(0.0)
    assert lr_factor(75, 100, "multistep", milestones=(50, 75), gamma=0.5) == 0.25


def test_unknown_optimizer_and_schedule_are_named():
    with pytest.raises(ValueError, match="optimizer='adagrad'"):
        make_trainer(optimizer="adagrad")
    with pytest.raises(ValueError, match="schedule='linear'"):
        make_trainer(schedule="linear")


def test_live_plot_outside_a_notebook_prints_nothing(capsys):
    make_trainer(steps=2, plot=True).fit()
    assert capsys.readouterr().out == ""
