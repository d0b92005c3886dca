"""``bench infer --official ROOT``: the official implementation imported from a clone, built from its YAML config,
loaded strictly with the book's weights and timed beside it. The official code is not here (nothing of it ships), so
the tests build a stand-in clone with the same layout whose ``get_pose_net`` reads its config both ways the official
code does (``cfg["MODEL"]`` and ``cfg.MODEL``)."""
import json
import textwrap

import pytest
import torch

from posebook import bench
from posebook.inference.official import FILES, Config, official_beside, official_model

STAND_IN = textwrap.dedent('''
    from posebook import models

    def get_pose_net(cfg, is_train, **kwargs):
        assert is_train is False
        extra = cfg.MODEL.EXTRA                      # pose_resnet.py reads attributes
        width = cfg["MODEL"]["EXTRA"]["STAGE2"]["NUM_CHANNELS"][0]  # pose_hrnet.py reads items
        assert extra.FINAL_CONV_KERNEL == 1
        return models.create("hrnet", width=width, num_joints=cfg.MODEL.NUM_JOINTS)
''')
CONFIG = "MODEL:\n  NUM_JOINTS: 17\n  EXTRA:\n    FINAL_CONV_KERNEL: 1\n    STAGE2:\n      NUM_CHANNELS: [4, 8]\n"


@pytest.fixture
def clone(tmp_path):
    code, config = FILES["hrnet"]
    (tmp_path / code).parent.mkdir(parents=True)
    (tmp_path / code).write_text(STAND_IN)
    (tmp_path / config).parent.mkdir(parents=True)
    (tmp_path / config).write_text(CONFIG)
    return tmp_path


def test_config_reads_as_items_and_attributes_and_names_a_missing_key():
    cfg = Config({"MODEL": {"EXTRA": {"N": 3}}})
    assert cfg.MODEL.EXTRA.N == cfg["MODEL"]["EXTRA"]["N"] == 3
    with pytest.raises(AttributeError, match="no key 'NUM_JOINTS'"):
        cfg.MODEL.NUM_JOINTS


def test_the_official_network_takes_the_books_weights_and_computes_the_same_maps(clone):
    from posebook import models

    torch.manual_seed(0)
    mine = models.create("hrnet", width=4).eval()
    official = official_beside(mine, "hrnet", clone)
    assert official is not mine and not official.training
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(official(x), mine(x))


def test_weights_of_another_size_are_refused_naming_the_files(clone):
    from posebook import models

    with pytest.raises(RuntimeError, match="lib/models/pose_hrnet.py.*does not take model 'hrnet'"):
        official_beside(models.create("hrnet", width=8), "hrnet", clone)


def test_a_missing_clone_and_an_unknown_model_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="pose_hrnet.py does not exist.*clone of https://github.com/"):
        official_model("hrnet_w32", tmp_path)
    with pytest.raises(ValueError, match="no official implementation is known for model 'cpn'"):
        official_model("cpn", tmp_path)
    with pytest.raises(SystemExit):  # none of the models has an official implementation to time
        bench.main(["infer", "--model", "cpn", "--official", str(tmp_path)])


def test_bench_infer_times_the_official_code_in_the_same_rounds(clone, capsys):
    bench.main(["infer", "--model", "hrnet", "--arg", "width=4", "--input", "64x64",
                "--batch", "1", "--rounds", "2", "--warmup", "0", "--threads", "1", "--official", str(clone),
                "--json"])
    out = capsys.readouterr().out
    (row,) = json.loads(out.strip().splitlines()[-1])
    assert row["official_ms"] > 0 and row["official_cpu_ms"] > 0
    assert row["eager_vs_official"] == pytest.approx(row["eager_ms"] / row["official_ms"])
    assert row["official_max_abs_diff"] == 0.0  # the same network, the same weights
    assert "eager/official" in out and "strict load" in out


def test_a_model_without_an_official_implementation_is_timed_without_one(clone, capsys):
    bench.main(["infer", "--model", "hrnet", "cpn", "--arg", "width=4", "--input", "64x64", "--batch", "1",
                "--rounds", "1", "--warmup", "0", "--threads", "1", "--official", str(clone), "--json"])
    out = capsys.readouterr().out
    hrnet, cpn = json.loads(out.strip().splitlines()[-1])
    assert hrnet["official_max_abs_diff"] == 0.0 and "official_ms" not in cpn and cpn["optimized_ms"] > 0
    assert "none known for cpn" in out
