"""The Trainer: exact resume, one owner for randomness, nested batches, AMP off on CPU, clear checkpoint errors,
history, the run cache (posebook.checkpoints), schedules."""
import random

import numpy as np
import pytest
import torch
from conftest import assert_close
from torch import nn

import posebook.checkpoints
from posebook import models
from posebook.checkpoints import checkpoint_path, load_or_train, read_checkpoint
from posebook.losses import JointsMSELoss, MultiOutputLoss
from posebook.train import CHANNELS_LAST, Trainer, epoch_order, lr_factor
from posebook.viz import plot_history


class TinyPoses(torch.utils.data.Dataset):
    """Random 32x32 images with 8x8 targets; item i is fixed, plus a flip (augmentation) drawn, like the library's
    datasets, from a generator keyed on (seed, epoch, i); ``seed`` None until someone sets it."""

    def __init__(self, n=24, joints=3, seed=None):
        g = torch.Generator().manual_seed(123)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.targets = torch.rand(n, joints, 8, 8, generator=g)
        self.weights = (torch.rand(n, joints, generator=g) > 0.2).float()
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image, target = self.images[i], self.targets[i]
        rng = np.random.default_rng([self.seed, self.epoch, i]) if self.seed is not None else np.random.default_rng()
        if rng.random() < 0.5:  # augmentation: must be reproduced exactly on resume
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


def test_amp_is_off_on_cpu_and_channels_last_follows_the_measured_table():
    trainer = make_trainer(amp=True, device="cpu")
    assert trainer.amp_dtype is None
    assert not trainer.scaler.is_enabled()
    assert trainer.channels_last == CHANNELS_LAST["cpu"]
    assert make_trainer(channels_last=True).channels_last and not make_trainer(channels_last=False).channels_last


def test_channels_last_training_takes_the_same_steps_as_the_default_layout():
    options = dict(steps=3, optimizer="sgd", schedule="constant", warmup_steps=0)  # SGD: rounding stays small
    plain, cl = make_trainer(channels_last=False, **options), make_trainer(channels_last=True, **options)
    plain.fit()
    cl.fit()
    conv = next(p for p in cl.model.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert [h["loss"] for h in plain.history] == pytest.approx([h["loss"] for h in cl.history], rel=1e-4)
    # Compared as one vector, to the scale of the whole state: a conv bias followed by BatchNorm has a zero gradient
    # in exact arithmetic, so its few updates are float32 rounding, which differs between the layouts' kernels (and
    # with the thread count: up to 2e-4 measured on 1 thread); a layout bug moves weights by orders more.
    plain_state, cl_state = plain.model.state_dict(), cl.model.state_dict()
    assert list(plain_state) == list(cl_state)
    flat = [torch.cat([s[k].double().flatten() for k in plain_state if s[k].is_floating_point()])
            for s in (plain_state, cl_state)]
    assert_close(flat[1], flat[0], rel=1e-3, what="the weights and statistics trained with channels_last")


def global_rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def assert_same_states(before, after):
    assert torch.equal(before[0], after[0]), "torch's global generator changed"
    assert before[1][0] == after[1][0] and np.array_equal(before[1][1], after[1][1]) and \
        before[1][2:] == after[1][2:], "numpy's global generator changed"
    assert before[2] == after[2], "Python's global generator changed"


def test_the_trainer_neither_seeds_nor_draws_from_the_global_generators(tmp_path):
    torch.manual_seed(2024)
    np.random.seed(2024)
    random.seed(2024)
    model = models.create("hourglass", stacks=1, channels=8, num_joints=3, order=2)
    before = global_rng_states()  # after the model's own (global) initialisation
    trainer = Trainer(model, TinyPoses(), MultiOutputLoss(JointsMSELoss()), steps=7, batch_size=4, progress=False,
                      device="cpu", num_workers=0, log_every=1)
    assert_same_states(before, global_rng_states())
    trainer.fit()  # 7 steps of 4 over 24 items: two epochs, so two DataLoaders
    trainer.save(tmp_path / "run.pt")
    trainer.load(tmp_path / "run.pt")
    assert_same_states(before, global_rng_states())
    assert "rng" not in read_checkpoint(tmp_path / "run.pt")


def test_an_unseeded_training_set_gets_the_trainers_seed_and_a_seeded_one_keeps_its_own():
    unseeded, seeded = TinyPoses(), TinyPoses(seed=5)
    make_trainer_on = lambda data: Trainer(models.create("hourglass", stacks=1, channels=8, num_joints=3, order=2),
                                           data, MultiOutputLoss(JointsMSELoss()), steps=1, batch_size=4, seed=11,
                                           progress=False, device="cpu")
    make_trainer_on(unseeded)
    make_trainer_on(seeded)
    assert unseeded.seed == 11 and seeded.seed == 5


def test_epoch_order_is_a_pure_function_of_seed_and_epoch():
    assert epoch_order(10, 3, 1) == epoch_order(10, 3, 1)
    assert sorted(epoch_order(10, 3, 1)) == list(range(10))
    assert epoch_order(10, 3, 1) != epoch_order(10, 3, 2) and epoch_order(10, 3, 1) != epoch_order(10, 4, 1)


def test_a_checkpoint_of_the_previous_format_with_global_rng_state_still_loads(tmp_path):
    """Checkpoints written before the Trainer gave up the global generators carry "rng" and no "data"."""
    part = make_trainer(steps=4)
    part.fit(until=2)
    old = part.state_dict()
    del old["data"]
    name, keys, pos, has_gauss, cached = np.random.get_state()
    old["rng"] = {"python": random.getstate(), "torch": torch.get_rng_state(),
                  "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}
    torch.save(old, tmp_path / "old.pt")
    before = global_rng_states()
    resumed = make_trainer(steps=4).load(tmp_path / "old.pt")
    assert resumed.step == 2
    assert_same_states(before, global_rng_states())  # the stale global state is not restored
    resumed.fit()
    straight = make_trainer(steps=4)
    straight.fit()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_resuming_with_another_seed_or_batch_size_names_the_file_and_the_difference(tmp_path):
    part = make_trainer(steps=4)
    part.fit(until=2)
    path = part.save(tmp_path / "part.pt")
    with pytest.raises(ValueError, match=r"part\.pt.*seed 0 there, 3 here"):
        make_trainer(steps=4, seed=3).load(path)
    with pytest.raises(ValueError, match=r"part\.pt.*batch_size 4 there, 8 here"):
        make_trainer(steps=4, batch_size=8).load(path)


class TwoOutputs(torch.nn.Module):
    """A coarse and a fine heatmap output (as CPN's GlobalNet and RefineNet), trained against one target each."""

    def __init__(self, joints=3):
        super().__init__()
        self.coarse = torch.nn.Conv2d(3, joints, 3, stride=8, padding=1)
        self.fine = torch.nn.Conv2d(3, joints, 3, stride=4, padding=1)

    def forward(self, x):
        return [self.coarse(x), self.fine(x)]


class NestedTargets(torch.utils.data.Dataset):
    """Items with a list of targets (one per output) and a dict of target weights."""

    def __init__(self, n=8, joints=3):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.coarse, self.fine = torch.rand(n, joints, 4, 4, generator=g), torch.rand(n, joints, 8, 8, generator=g)
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"image": self.images[i], "target": [self.coarse[i], self.fine[i]],
                "target_weight": {"coarse": torch.ones(3), "fine": torch.ones(3)}, "meta": {"index": i}}


def test_nested_targets_reach_the_loss_on_the_device_in_their_structure():
    seen = []

    def loss_fn(outputs, target, target_weight):
        seen.append((type(target), [t.shape for t in target], sorted(target_weight),
                     {t.device.type for t in [*target, *target_weight.values()]}))
        mse = JointsMSELoss()
        return mse(outputs[0], target[0], target_weight["coarse"]) + mse(outputs[1], target[1], target_weight["fine"])

    trainer = Trainer(TwoOutputs(), NestedTargets(), loss_fn, steps=3, batch_size=4, progress=False, device="cpu",
                      log_every=1)
    history = trainer.fit()
    assert seen[0] == (list, [(4, 3, 4, 4), (4, 3, 8, 8)], ["coarse", "fine"], {"cpu"})
    assert len(seen) == 3 and all(np.isfinite(h["loss"]) for h in history)
    # the Trainer's mover keeps tuples, dicts and lists, and names what it cannot move
    moved = trainer._to_device({"a": (torch.zeros(1), [torch.ones(2)])}, "batch['target']")
    assert type(moved["a"]) is tuple and type(moved["a"][1]) is list
    with pytest.raises(TypeError, match=r"batch\['target'\]\[1\] is a str"):
        trainer._to_device([torch.zeros(1), "x"], "batch['target']")


def test_a_batch_without_a_target_names_what_the_items_hold():
    trainer = make_trainer(steps=1)
    with pytest.raises(KeyError, match="lack \\['target'\\].*image"):
        trainer.train_step({"image": torch.zeros(4, 3, 32, 32)})


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
    # flat, then a cosine over the last `tail` of the steps
    assert [lr_factor(s, 100, "flat_cosine") for s in (0, 30, 50)] == [1.0, 1.0, 1.0]
    assert lr_factor(75, 100, "flat_cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, "flat_cosine") == pytest.approx(0.0)
    assert lr_factor(90, 100, "flat_cosine", tail=0.2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="tail"):
        lr_factor(1, 100, "flat_cosine", tail=0.0)


def test_unknown_optimizer_and_schedule_are_named():
    with pytest.raises(ValueError, match="optimizer='adagrad'"):
        make_trainer(optimizer="adagrad")
    with pytest.raises(ValueError, match="schedule='linear'"):
        make_trainer(schedule="linear")


def test_live_plot_outside_a_notebook_prints_nothing(capsys):
    make_trainer(steps=2, plot=True).fit()
    assert capsys.readouterr().out == ""


def test_the_run_cache_is_keyed_on_the_library_source_and_torch(tmp_path, monkeypatch):
    """A change to a codec, a loss or an augmentation must train again, not reload the old model."""
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    config = {"stacks": 2, "steps": 3}
    before = checkpoint_path("test_chapter", config, "smoke")
    assert before == checkpoint_path("test_chapter", config, "smoke"), "the key is a pure function"
    monkeypatch.setattr(posebook.checkpoints, "source_digest", lambda: "0" * 64)
    changed = checkpoint_path("test_chapter", config, "smoke")
    assert changed != before and changed.parent == before.parent
    monkeypatch.setattr(posebook.checkpoints.torch, "__version__", "0.0.0")
    assert checkpoint_path("test_chapter", config, "smoke") != changed


def test_the_source_digest_covers_every_library_file(tmp_path, monkeypatch):
    import shutil

    digest = posebook.checkpoints.source_digest.__wrapped__  # uncached
    library = tmp_path / "posebook"
    real = digest()
    shutil.copytree(posebook.checkpoints.posebook.__path__[0], library,
                    ignore=shutil.ignore_patterns("__pycache__"))
    fake = type("Package", (), {"__file__": str(library / "__init__.py")})
    monkeypatch.setattr(posebook.checkpoints, "posebook", fake)
    same = digest()
    assert same == real, "a copy of the library has the library's digest"
    assert same == digest() and len(same) == 64
    codec = next(library.glob("codecs/*.py"))
    original = codec.read_text()
    codec.write_text(original + "\nCHANGED = 1\n")
    assert digest() != same, "a code change trains again"
    codec.write_text(original.replace('"""', '"""A reworded docstring. ', 1) + "\n# a comment\n\n\n")
    assert digest() == same, "prose (docstrings, comments, blank lines) keeps the cache"
    codec.write_text(original)
    (library / "data" / "new_module.py").write_text("x = 1\n")
    assert digest() != same
    data_only = digest("posebook.data")
    assert data_only != digest("posebook.codecs") and len(data_only) == 64
    with pytest.raises(ValueError, match="posebook.nothing"):
        digest("posebook.nothing")


def test_load_or_train_notes_whether_the_run_was_trained_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path))
    monkeypatch.setattr(posebook.checkpoints, "_RUNS", {})
    config = {"run": "noted"}
    load_or_train(make_trainer(steps=2), "test_runs", config, profile="smoke")
    name = checkpoint_path("test_runs", config, "smoke").name
    source = posebook.checkpoints.source_digest()[:12]
    assert posebook.checkpoints.runs("test_runs") == [{"checkpoint": name, "retrained": True, "source": source}]
    load_or_train(make_trainer(steps=2), "test_runs", config, profile="smoke")
    assert posebook.checkpoints.runs("test_runs") == [{"checkpoint": name, "retrained": False, "source": source}]
    assert posebook.checkpoints.runs("another_chapter") == []


def resume_is_exact(make_dataset, steps, tmp_path, **options):
    """Train ``steps`` straight, and steps/2 + save + a new Trainer and dataset + load + the rest: same weights."""
    def trainer():
        torch.manual_seed(0)
        model = models.create("hourglass", stacks=1, channels=8, num_joints=17, order=2)
        return Trainer(model, make_dataset(), MultiOutputLoss(JointsMSELoss()), steps=steps, batch_size=4, lr=1e-2,
                       progress=False, device="cpu", log_every=1, **options)

    straight = trainer()
    straight.fit()
    first = trainer()
    first.fit(until=steps // 2)
    first.save(tmp_path / "half.pt")
    torch.manual_seed(1)  # another global state must not matter
    np.random.seed(1)
    second = trainer().load(tmp_path / "half.pt")
    second.fit()
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in second.history]
    return straight


def test_resume_is_exact_on_real_coco_with_the_datasets_default_seed(coco_sample, tmp_path):
    """CocoKeypoints(seed=None), the library's default: the Trainer seeds it, so augmentation repeats on resume."""
    from posebook.data import CocoKeypoints

    def coco():
        data = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=True,
                             input_size=(64, 48), heatmap_size=(16, 12))
        assert data.seed is None
        return data

    assert len(coco()) >= 8
    steps = 2 * (len(coco()) // 4) + 2  # more than two epochs; the break falls inside the second
    resume_is_exact(coco, steps, tmp_path)


def test_resume_is_exact_across_epochs_of_synthetic_people(tmp_path):
    from posebook.data import SyntheticTopDown

    def synthetic():
        return SyntheticTopDown(8, seed=0, input_size=(64, 48), heatmap_size=(16, 12), image_size=(96, 96),
                                max_people=1)

    straight = resume_is_exact(synthetic, 6, tmp_path)  # 2 batches an epoch: 3 epochs, resumed inside the 2nd
    assert straight.step == 6 and straight.steps_per_epoch == 2


def test_epoch_order_by_images_keeps_each_photos_people_together_and_is_a_permutation():
    groups = [7, 3, 7, 9, 3, 7, 1, 9]
    order = epoch_order(len(groups), seed=5, epoch=2, groups=groups)
    assert sorted(order) == list(range(len(groups)))
    keys = [groups[i] for i in order]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(groups)), f"a photo's people are split: {keys}"
    assert order == epoch_order(len(groups), seed=5, epoch=2, groups=groups)
    assert any(epoch_order(len(groups), seed=5, epoch=e, groups=groups) != order for e in (3, 4, 5))
    with pytest.raises(ValueError, match="3 group keys for 8 items"):
        epoch_order(8, 0, 0, groups=[1, 2, 3])


def test_trainer_in_image_order_resumes_exactly_and_refuses_a_checkpoint_of_the_other_order(coco_sample, tmp_path):
    from posebook.data import CocoKeypoints

    def make(order):
        torch.manual_seed(0)
        data = CocoKeypoints(coco_sample / "person_keypoints_sample.json", coco_sample / "images", train=True,
                             input_size=(64, 48), heatmap_size=(16, 12), image_cache_mb=1)
        model = nn.Sequential(nn.Conv2d(3, 17, 3, stride=4, padding=1))
        model.predict = model.forward
        return Trainer(model, data, JointsMSELoss(), steps=6, batch_size=2, seed=3, progress=False,
                       device="cpu", order=order)

    straight = make("images")
    straight.fit()
    first = make("images")
    first.fit(until=3)
    first.save(tmp_path / "half.pt")
    resumed = make("images").load(tmp_path / "half.pt")
    resumed.fit()
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="order"):
        make("items").load(tmp_path / "half.pt")
    with pytest.raises(ValueError, match="image_keys"):
        Trainer(nn.Conv2d(3, 17, 1), [torch.zeros(1)] * 4, JointsMSELoss(), steps=1, batch_size=2, order="images")
