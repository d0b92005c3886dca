"""Training on several processes: each rank's share of an epoch, ``python -m posebook.train`` in one process and
under ``torchrun`` (two processes, gloo on the CPU) with equal weights on every rank, exact resume."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import posebook.train
from posebook.checkpoints import FORMAT, write_checkpoint
from posebook.train import Trainer, epoch_order, rank_share
from posebook.train.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["-m", "posebook.train", "--chapter", "04", "--profile", "smoke"]
TIMEOUT = 600  # seconds: a busy 2-core machine starts two torch processes slowly


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One POSEBOOK_CACHE for the module: the smoke crops are rendered once, never in the user's cache."""
    return tmp_path_factory.mktemp("cache")


def run(args: list[str], cache: Path, processes: int = 1) -> dict:
    """Run ``python -m posebook.train ARGS`` (under torchrun with ``processes`` > 1); return its last line's JSON."""
    env = dict(os.environ, OMP_NUM_THREADS="1", POSEBOOK_CACHE=str(cache))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if processes > 1:
        torchrun = Path(sys.executable).parent / "torchrun"
        launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
        command = launcher + ["--standalone", "--nproc_per_node", str(processes)] + COMMAND + args
    else:
        command = [sys.executable] + COMMAND + args
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"{' '.join(command)} printed nothing; stderr:\n{done.stderr[-4000:]}"
    return json.loads(lines[-1])


def weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_equal_weights(a: dict, b: dict, what: str):
    assert list(a) == list(b), f"{what}: different keys"
    for name in a:
        assert torch.equal(a[name], b[name]), f"{what}: {name} differs"


# ---- each rank's share of an epoch ----------------------------------------------------------------------------

@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_the_ranks_shares_are_disjoint_and_together_are_each_global_batch(world_size):
    batch = 8
    order = epoch_order(29, seed=3, epoch=2)  # 3 whole batches and a tail of 5 that one process drops too
    shares = [rank_share(order, r, world_size, batch) for r in range(world_size)]
    flat = [i for share in shares for i in share]
    assert len(flat) == len(set(flat)) == 24, "the shares overlap or miss an item"
    per_rank = batch // world_size
    for k in range(3):  # batch k of every rank together is batch k of one process
        together = [i for share in shares for i in share[k * per_rank:(k + 1) * per_rank]]
        assert sorted(together) == sorted(order[k * batch:(k + 1) * batch])
    assert shares[-1][:per_rank] == order[world_size - 1:batch:world_size]  # items r, r+W, r+2W, ...


def test_a_batch_that_does_not_split_over_the_processes_is_refused_clearly(monkeypatch):
    with pytest.raises(ValueError, match="batch of 8 does not split evenly over 3 processes"):
        rank_share(list(range(24)), 0, 3, 8)
    with pytest.raises(ValueError, match="rank 2 of world size 2"):
        rank_share(list(range(24)), 2, 2, 8)
    monkeypatch.setattr(posebook.train, "world", lambda: (0, 3))  # as if three processes had started
    data = [{"image": torch.zeros(3, 8, 8), "target": torch.zeros(1, 2, 2)}] * 16
    with pytest.raises(ValueError, match="batch_size=8 is the global batch of 3 processes"):
        Trainer(torch.nn.Conv2d(3, 1, 4, stride=4), data, lambda o, t, w: ((o - t) ** 2).mean(), steps=2,
                batch_size=8, device="cpu")


# ---- the command line ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_processes(cache, tmp_path_factory):
    """``torchrun --standalone --nproc_per_node 2 -m posebook.train --chapter 04 --profile smoke --steps 6``."""
    out = tmp_path_factory.mktemp("two")
    return out, run(["--steps", "6", "--out", str(out)], cache, processes=2)


@pytest.mark.slow
def test_torchrun_with_two_processes_ends_with_equal_weights_on_both_ranks(two_processes):
    out, result = two_processes
    assert result["world_size"] == 2 and result["ranks_equal"] is True, result
    assert result["chapter"] == "04_simple_baseline" and result["profile"] == "smoke" and result["steps"] == 6
    assert result["loss"] > 0 and result["seconds"] > 0
    assert_equal_weights(weights(out / "rank0.pt"), weights(out / "rank1.pt"), "rank 0 and rank 1")
    saved = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert saved["step"] == 6 and saved["data"]["batch_size"] == 8  # the global batch: 4 on each rank
    assert_equal_weights(saved["model"], weights(out / "rank0.pt"), "the checkpoint and rank 0")
    assert any("AP" in h for h in saved["history"]), "rank 0 validates"


@pytest.mark.slow
def test_the_same_command_without_torchrun_trains_in_one_process(cache, tmp_path):
    result = run(["--steps", "6", "--out", str(tmp_path)], cache)
    assert result["world_size"] == 1 and result["ranks_equal"] is True and result["steps"] == 6, result
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "rank0.pt"]


@pytest.mark.slow
def test_a_run_stopped_at_step_3_and_resumed_ends_with_the_weights_of_an_uninterrupted_run(cache, tmp_path,
                                                                                           monkeypatch, capsys):
    monkeypatch.setenv("POSEBOOK_CACHE", str(cache))
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    straight = main(COMMAND[2:] + ["--steps", "6", "--out", str(tmp_path / "straight")])
    part = main(COMMAND[2:] + ["--steps", "6", "--until", "3", "--out", str(tmp_path / "part")])
    assert part["steps"] == 3
    assert torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)["step"] == 3
    resumed = main(COMMAND[2:] + ["--resume", "--out", str(tmp_path / "part")])  # --steps from the checkpoint
    assert resumed["steps"] == 6 and resumed["loss"] == straight["loss"]
    assert_equal_weights(weights(tmp_path / "straight" / "rank0.pt"), weights(tmp_path / "part" / "rank0.pt"),
                         "resumed and uninterrupted")
    printed = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line) for line in printed] == [straight, part, resumed]  # one JSON line per run


@pytest.mark.slow
def test_two_processes_resumed_at_step_3_end_with_the_weights_of_their_uninterrupted_run(two_processes, cache,
                                                                                         tmp_path):
    straight, _ = two_processes
    run(["--steps", "6", "--until", "3", "--out", str(tmp_path)], cache, processes=2)
    result = run(["--resume", "--out", str(tmp_path)], cache, processes=2)
    assert result["world_size"] == 2 and result["ranks_equal"] is True and result["steps"] == 6, result
    assert_equal_weights(weights(straight / "rank0.pt"), weights(tmp_path / "rank0.pt"), "resumed and uninterrupted")


@pytest.mark.parametrize("args, message", [
    (["--chapter", "99", "--profile", "smoke"], "no reference network for chapter '99'"),
    (["--chapter", "04", "--profile", "tiny"], "argument --profile: invalid choice: 'tiny'"),
    (["--chapter", "04", "--profile", "smoke", "--steps", "0"], "expected an integer >= 1, got '0'"),
    (["--chapter", "04", "--profile", "smoke", "--steps", "many"], "got 'many'"),
    (["--chapter", "04", "--profile", "smoke", "--steps", "4", "--until", "5"], "--until 5 is past the run's 4"),
    (["--chapter", "04", "--profile", "smoke", "--resume"], "checkpoint.pt does not exist"),
])
def test_bad_arguments_are_named(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args + ["--out", str(tmp_path)])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_an_existing_run_is_neither_overwritten_nor_resumed_at_another_length(tmp_path, capsys):
    write_checkpoint({"format": FORMAT, "steps": 6}, tmp_path / "checkpoint.pt")
    for args, message in ((["--steps", "6"], "checkpoint.pt exists: give --resume"),
                          (["--steps", "8", "--resume"], "is a run of 6 steps, not --steps 8")):
        with pytest.raises(SystemExit):
            main(COMMAND[2:] + args + ["--out", str(tmp_path)])
        assert message in capsys.readouterr().err


def test_the_full_profile_without_coco_says_where_it_looked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--chapter", "04", "--profile", "full", "--steps", "2", "--out", str(tmp_path / "run"),
              "--coco", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert f"not both in {tmp_path / 'nowhere'}" in err and "data_scripts/download_coco.py" in err
