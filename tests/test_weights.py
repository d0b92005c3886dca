"""Checkpoint loading: official and MMPose layouts load strictly; wrong or truncated files fail with clear errors."""
import subprocess
import sys

import pytest
import torch

from posebook.models import create
from posebook.weights import CheckpointError, load_checkpoint, load_imagenet_resnet, load_official, save_state_dict


@pytest.fixture(scope="module")
def hrnet():
    return create("hrnet", width=4)


@pytest.fixture(scope="module")
def baseline():
    return create("simple_baseline", depth=18, deconv_channels=16)


def _head(key):
    return key.startswith(("deconv_layers.", "final_layer."))


def official_checkpoint_pth(model):
    """The official training checkpoint.pth: a dict whose state_dict was saved from DataParallel."""
    return {"epoch": 3, "perf": 0.5, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
            "best_state_dict": model.state_dict()}


def mmpose_checkpoint(model, head_prefix):
    """MMPose 0.x (keypoint_head.) or 1.x (head.): backbone.* for the trunk, the head's keys under head_prefix."""
    state = {(head_prefix if _head(k) else "backbone.") + k: v for k, v in model.state_dict().items()}
    return {"meta": {"mmpose_version": "0.x or 1.x", "epoch": 210}, "state_dict": state}


def randomised(model):
    torch.manual_seed(0)
    return {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize("layout", ["bare", "official_checkpoint", "mmpose0", "mmpose1"])
@pytest.mark.parametrize("arch", ["hrnet", "baseline"])
def test_every_published_layout_loads_strictly_and_gives_the_same_weights(layout, arch, request, tmp_path):
    source = request.getfixturevalue(arch)
    source.load_state_dict(randomised(source))
    obj = {"bare": source.state_dict(), "official_checkpoint": official_checkpoint_pth(source),
           "mmpose0": mmpose_checkpoint(source, "keypoint_head."), "mmpose1": mmpose_checkpoint(source, "head.")}
    torch.save(obj[layout], tmp_path / "ckpt.pth")
    target = create("hrnet", width=4) if arch == "hrnet" else create("simple_baseline", depth=18, deconv_channels=16)
    load_official(target, tmp_path / "ckpt.pth")
    loaded = target.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in source.state_dict().items())


def test_wrong_architecture_names_file_and_lists_missing_unexpected_and_shape_keys(hrnet, tmp_path):
    path = tmp_path / "w8.pth"
    torch.save(create("hrnet", width=8).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"w8\.pth does not fit HRNet: \d+ shape keys \(.*checkpoint \(8,"):
        load_official(create("hrnet", width=4), path)
    torch.save(create("simple_baseline", depth=18, deconv_channels=16).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"\d+ missing keys \(.*\d+ unexpected keys \(.*and \d+ more"):
        load_official(hrnet, path)


def test_truncated_file_is_a_clear_error_naming_the_file(hrnet, tmp_path):
    path = tmp_path / "half.pth"
    torch.save(hrnet.state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"half\.pth is not a readable PyTorch checkpoint.*truncated"):
        load_checkpoint(path)


def test_non_checkpoint_files_are_refused(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth is not a readable"):
        load_checkpoint(text)
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(CheckpointError, match=r"meta\.pth holds no state_dict: its top-level keys are \['epoch', 'lr'\]"):
        load_checkpoint(tmp_path / "meta.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_pickled_code_is_refused_by_weights_only(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": subprocess.Popen}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth is not a readable"):
        load_checkpoint(tmp_path / "evil.pth")


def test_torchvision_imagenet_resnet_loads_without_fc_into_simple_baseline(tmp_path):
    trunk = create("simple_baseline", depth=18, deconv_channels=16)
    state = {k: v for k, v in randomised(trunk).items() if not _head(k)}
    state.update({"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    torch.save(state, tmp_path / "resnet18.pth")
    model = load_imagenet_resnet(create("simple_baseline", depth=18, deconv_channels=16), tmp_path / "resnet18.pth")
    assert torch.equal(model.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


class WithBackboneAndHead(torch.nn.Module):
    """A posebook model whose own attributes are called ``backbone`` and ``head`` (as CPN's or OpenPose's may be)."""

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        self.head = torch.nn.Conv2d(4, 2, 1)
        self.final_layer = torch.nn.Conv2d(2, 2, 1)


@pytest.mark.parametrize("data_parallel", [False, True])
def test_a_model_with_its_own_backbone_and_head_loads_its_own_checkpoint(tmp_path, data_parallel):
    source = WithBackboneAndHead()
    source.load_state_dict(randomised(source))
    state = {("module." if data_parallel else "") + k: v for k, v in source.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "own.pth")
    target = load_official(WithBackboneAndHead(), tmp_path / "own.pth")
    assert all(torch.equal(target.state_dict()[k], v) for k, v in source.state_dict().items())
    # an MMPose-style file for the same model: the prefixes it adds on top of the model's own names still go
    torch.save({"state_dict": {"backbone." + k: v for k, v in source.state_dict().items()}}, tmp_path / "mm.pth")
    assert set(load_checkpoint(tmp_path / "mm.pth", WithBackboneAndHead())) == set(source.state_dict())
    # without a model to compare with, keys stay as stored
    assert set(load_checkpoint(tmp_path / "own.pth")) == set(state)


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path, hrnet):
    path = save_state_dict(hrnet.state_dict(), tmp_path / "out" / "w4.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == ["w4.pt"]
    assert load_checkpoint(path).keys() == hrnet.state_dict().keys()


@pytest.mark.slow
def test_convert_script_writes_a_strictly_loadable_posebook_state_dict(tmp_path, root):
    source = create("hrnet", width=4)
    torch.save(mmpose_checkpoint(source, "keypoint_head."), tmp_path / "mmpose.pth")
    cmd = [sys.executable, str(root / "data_scripts" / "convert_checkpoint.py"), str(tmp_path / "mmpose.pth"),
           str(tmp_path / "hr.pt"), "--arch", "hrnet", "--arg", "width=4"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    create("hrnet", width=4).load_state_dict(torch.load(tmp_path / "hr.pt", weights_only=True), strict=True)
    bad = subprocess.run(cmd[:-1] + ["width=8"], capture_output=True, text=True, cwd=root)
    assert bad.returncode == 1 and "does not fit HRNet" in bad.stderr
