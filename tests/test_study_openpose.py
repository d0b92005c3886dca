"""Chapter 08's probes (posebook.studies.openpose): the declarations of P1-P5, the groupings they compare (PAF,
distance, midpoint; greedy and Hungarian matching) against the library's parser, and a smoke run end to end."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from posebook import study
from posebook.inference.bottomup import match_limbs, match_limbs_hungarian
from posebook.studies import openpose as S

NAMES = ["paf_vs_distance_apart", "paf_vs_distance_crowded", "greedy_vs_hungarian", "official_vs_paper_paf",
         "input_scale_small", "paf_vs_midpoint"]
TRAINED = ["stages_refine", "stages_loss", "paf_vs_distance_learned"]  # the trained study (D5), after the probes


def claims(profile: str) -> dict:
    return {c.name: c for c in study.chapter_claims("08", profile)}


# ---- declarations ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_chapter_08_declares_the_five_probes_as_paired_probe_variants(profile):
    declared = claims(profile)
    assert list(declared) == NAMES + TRAINED
    declared = {n: c for n, c in declared.items() if n in NAMES}
    for claim in declared.values():
        assert claim.chapter == "08_openpose" and claim.metric == "dAP" and claim.protocol == 2
        assert all(v.kind == "probe" and v.run is S.run_probe for v in claim.variants)
        assert len(claim.seeds) >= (2 if profile == "smoke" else 5)
        # the second variant of the effect is the reference every dAP of the claim is measured against
        reference = claim.variant(claim.effect[1]).config
        own = {k: reference[k] for k in ("grouping", "matching", "targets", "input_size")}
        assert all(v.config["reference"] == own for v in claim.variants)
        assert len({v.config["scene"] for v in claim.variants}) == 1
        assert "CVPR'17" in claim.paper
    assert declared["greedy_vs_hungarian"].margin == S.MARGIN == 0.02
    assert declared["greedy_vs_hungarian"].rule == "tost-1"
    assert all(c.margin is None and c.sign == 1 and c.rule == "welch-1" for n, c in declared.items()
               if n != "greedy_vs_hungarian")
    assert {n: c.effect for n, c in declared.items()} == {
        "paf_vs_distance_apart": ("paf", "distance"), "paf_vs_distance_crowded": ("paf", "distance"),
        "greedy_vs_hungarian": ("greedy", "hungarian"), "official_vs_paper_paf": ("official", "paper"),
        "input_scale_small": ("input512", "input256"), "paf_vs_midpoint": ("paf", "midpoint")}
    assert "77.4" in declared["greedy_vs_hungarian"].paper and "77.6" in declared["greedy_vs_hungarian"].paper
    assert "2.9%" in declared["paf_vs_midpoint"].paper
    assert "75.6" in declared["input_scale_small"].paper and "72.5" in declared["input_scale_small"].paper
    assert declared["input_scale_small"].variant("input512").config["input_size"] == 512
    assert declared["official_vs_paper_paf"].variant("paper").config["targets"] == "paper"


def test_the_gpu_profile_declares_what_the_cpu_profile_does():
    cpu, gpu = claims("cpu"), claims("gpu")
    strip = lambda d: {k: v for k, v in d.items() if k not in ("profile",)}  # noqa: E731
    for name in NAMES:
        assert cpu[name].seeds == gpu[name].seeds
        assert [strip(v.config) for v in cpu[name].variants] == [strip(v.config) for v in gpu[name].variants]


@pytest.mark.parametrize("bad,match", [(dict(scene="busy"), "scene"), (dict(grouping="ilp"), "grouping"),
                                       (dict(matching="auction"), "matching"), (dict(targets="caffe"), "targets"),
                                       (dict(images=0), "images"), (dict(input_size=250), "input_size"),
                                       (dict(profile="full"), "profile"), (dict(reference=dict(sigma=3)), "reference")])
def test_a_bad_config_is_a_value_error_naming_the_argument(bad, match):
    args = {**dict(profile="cpu", scene="apart", images=4), **bad}
    with pytest.raises(ValueError, match=match):
        S.config(**args)


# ---- matching ----------------------------------------------------------------------------------------------------

def test_greedy_takes_the_best_pair_where_hungarian_takes_the_best_total():
    scores = np.array([[0.9, 0.8],
                       [0.7, -np.inf]])
    greedy = match_limbs(scores)
    assert greedy.tolist() == [[0, 0, 0.9]]                         # the best pair first; then 1-1 is rejected
    optimal = match_limbs_hungarian(scores)
    assert optimal.tolist() == [[0, 1, 0.8], [1, 0, 0.7]]           # 1.5 > 0.9, listed best first
    assert optimal[:, 2].sum() > greedy[:, 2].sum()


def test_hungarian_is_the_best_total_of_every_matching_and_agrees_when_greedy_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(30):
        scores = np.where(rng.random((3, 4)) < 0.3, -np.inf, rng.random((3, 4)) + 0.01)
        best = 0.0
        for cols in itertools.permutations(range(4), 3):
            pairs = [scores[i, j] for i, j in enumerate(cols) if np.isfinite(scores[i, j])]
            best = max(best, sum(pairs))
        rows = match_limbs_hungarian(scores)
        assert rows[:, 2].sum() == pytest.approx(best)
        assert len(set(rows[:, 0])) == len(rows) == len(set(rows[:, 1]))
        assert np.all(np.diff(rows[:, 2]) <= 0)
    diagonal = np.array([[1.0, 0.1], [0.1, 1.0]])
    assert match_limbs_hungarian(diagonal).tolist() == match_limbs(diagonal).tolist()
    assert match_limbs_hungarian(np.full((2, 3), -np.inf)).shape == (0, 3)


@pytest.mark.parametrize("scores", [np.zeros(3), np.array([[0.5, np.nan]]), np.array([[0.5, 0.0]]),
                                    np.array([[np.inf]])])
def test_hungarian_rejects_what_is_not_a_limbs_score_matrix(scores):
    with pytest.raises(ValueError, match="match_limbs_hungarian"):
        match_limbs_hungarian(scores)


# ---- the other limb scores -----------------------------------------------------------------------------------------

def test_distance_scores_prefer_the_nearest_and_reject_coincident_and_far_pairs():
    a = np.array([[10.0, 10.0, 1.0], [100.0, 10.0, 1.0]])
    b = np.array([[10.0, 30.0, 1.0], [10.0, 10.0, 1.0], [10.0, 200.0, 1.0]])
    scores = S.distance_scores(a, b, image_height=256)
    assert scores[0, 0] == pytest.approx(1 - 20 / 128)
    assert scores[0, 1] == -np.inf and scores[0, 2] == -np.inf     # coincident; 190 px > half the height
    assert scores[1, 0] < scores[0, 0]


def test_midpoint_scores_read_the_midpoint_map_between_the_two_candidates():
    midpoint_map = np.zeros((64, 64), dtype=np.float32)
    midpoint_map[20, 30] = 0.9
    a = np.array([[30.0, 10.0, 1.0], [50.0, 10.0, 1.0]])
    b = np.array([[30.0, 30.0, 1.0]])
    scores = S.midpoint_scores(a, b, midpoint_map, image_height=64)
    assert scores[0, 0] == pytest.approx(0.9) and scores[1, 0] == -np.inf
    mid = S.midpoint_people(np.zeros((1, 18, 3)))
    assert mid.shape == (1, 19, 3) and not mid[..., 2].any()


def test_the_paf_greedy_grouping_is_the_librarys_parse():
    from posebook.data.transforms import affine_points
    from posebook.inference.bottomup import parse_outputs
    from posebook.inference.grouping import STRIDE, _codecs, input_frame

    dataset = S.scene_set("crowded", 2, 0)
    items = S.limb_scores("crowded", 2, 0)
    for index, image_id in enumerate(dataset.image_ids):
        info = dataset.coco.imgs[image_id]
        size = (info["height"], info["width"])
        matrix, input_size = input_frame(size, 256)
        heat, paf = _codecs(input_size, "official")
        people = dataset.people(index)
        people[..., :2] = affine_points(people[..., :2], matrix)
        expected, expected_scores = parse_outputs(heat.encode(people), paf.encode(people), STRIDE, matrix, size)
        poses, scores = S.group(items[index], "paf", "greedy")
        assert poses.shape == expected.shape and len(poses) >= 4
        np.testing.assert_array_equal(poses, expected)
        np.testing.assert_array_equal(scores, expected_scores)
    with pytest.raises(ValueError, match="grouping"):
        S.group(items[0], "pafs")


# ---- a smoke run end to end --------------------------------------------------------------------------------------

def test_smoke_study_of_one_claim_end_to_end(tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setenv(study.ENV_VAR, str(tmp_path / "studies"))
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    assert study.main(["08", "--profile", "smoke", "--only", "greedy_vs_hungarian"]) == 0
    assert capsys.readouterr().out.count("done") == 4
    folder = tmp_path / "studies" / "smoke" / "08_openpose" / "greedy_vs_hungarian"
    greedy = json.loads((folder / "greedy-seed1.json").read_text())
    hungarian = json.loads((folder / "hungarian-seed1.json").read_text())
    assert greedy["kind"] == "probe" and greedy["protocol"] == 2 and greedy["config"]["matching"] == "greedy"
    assert {"dAP", "AP", "AP50", "AR", "reference_AP", "detections"} <= set(greedy["final"])
    assert greedy["final"]["dAP"] == pytest.approx(greedy["final"]["AP"] - hungarian["final"]["AP"])
    assert hungarian["final"]["dAP"] == 0 and greedy["val_people"] == hungarian["val_people"] >= 8
    entries = {c["claim"]: c for c in study.load_claims("08", "smoke")}
    entry = entries["greedy_vs_hungarian"]
    assert entry["complete"] and entry["preregistered"] and entry["rule"] == "tost-1" and entry["margin"] == 0.02
    assert not entries["paf_vs_midpoint"]["complete"]
    assert study.main(["summary", "--profile", "smoke"]) == 0
    assert "claimed within +-0.02" in capsys.readouterr().out
    # a second run skips what is recorded
    assert study.main(["08", "--profile", "smoke", "--only", "greedy_vs_hungarian"]) == 0
    assert capsys.readouterr().out.count("skipped") == 4


def test_the_dry_run_estimates_every_probe(capsys, tmp_path):
    assert study.main(["08", "--profile", "smoke", "--dry-run", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    # 24 probe runs (6 claims x 2 variants x 2 seeds) and the trained study's 2 (one network per seed)
    assert "60 runs" not in out and "26 runs declared, 26 to run" in out and "estimated total" in out


# ---- the trained study (D5) ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu"])
def test_the_trained_claims_read_one_network_per_seed_by_stage_and_grouping(profile):
    declared = {n: c for n, c in claims(profile).items() if n in TRAINED}
    base = declared["stages_refine"]
    last = f"stage{S.TRAINED[profile]['stages']}"
    trained = base.variant(last)
    assert trained.kind == "trained" and trained.run is S.run_trained and trained.read == f"{last}.AP"
    assert trained.config == S.trained_config(profile) and trained.config["front"] == "resnet"
    assert trained.config["pretrained"] and trained.config["targets"] == "official"
    runs = f"stages_refine/{last}"
    reads = {n: {v.name: (v.of, v.read) for v in c.variants} for n, c in declared.items()}
    assert reads["stages_refine"]["stage1"] == (runs, "stage1.AP")
    assert reads["stages_loss"] == {last: (runs, f"{last}.loss"), "stage1": (runs, "stage1.loss")}
    assert reads["paf_vs_distance_learned"] == {"paf": (runs, f"{last}.AP"), "distance": (runs, "distance.AP")}
    assert declared["stages_loss"].sign == -1 and base.sign == 1 == declared["paf_vs_distance_learned"].sign
    assert all(c.protocol == 2 and c.seeds == S.TRAINED[profile]["seeds"] for c in declared.values())
    assert len(base.seeds) >= (2 if profile == "smoke" else 5)
    assert "Fig. 7b" in base.paper
    if profile != "smoke":
        assert S.TRAINED[profile]["stages"] == 3 and S.TRAINED[profile]["val_images"] >= 250


def test_a_trained_run_scores_every_stage_and_keeps_seed_0s_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("POSEBOOK_STUDIES", str(tmp_path))
    config = S.trained_config("smoke")
    out = S.run_trained(config, 0)
    final = out["final"]
    assert {"stage1.AP", "stage2.AP", "stage1.loss", "stage2.loss", "distance.AP", "AP"} <= set(final)
    assert final["AP"] == final["stage2.AP"] and out["val_people"] == final["people"] >= 1
    assert all(np.isfinite(final[k]) and final[k] > 0 for k in ("stage1.loss", "stage2.loss"))
    assert any("stage2.AP" in point for point in out["curves"])
    path = S.checkpoint_path("smoke")
    assert path.exists() and path.parent == tmp_path / "smoke" / "08_openpose"
    net = S.load_trained("smoke")
    assert not net.training and net.stages[0].paf_branch.output.weight.dtype.is_floating_point
    # the loaded weights score as the trained run did (float16 storage: the loss agrees to a few decimals)
    again = S.stage_scores(net, S.trained_sets(config)[1])
    assert again["stage2.loss"] == pytest.approx(final["stage2.loss"], rel=0.05, abs=1e-3)
    assert S.run_trained(config, 1)["final"]["people"] == final["people"]
    with pytest.raises(FileNotFoundError, match="posebook.study 08"):
        S.load_trained("cpu", root=tmp_path / "nowhere")


def test_trained_config_refuses_an_unknown_profile_or_front():
    with pytest.raises(ValueError, match="profile"):
        S.trained_config("laptop")
    with pytest.raises(ValueError, match="front"):
        S.trained_config("cpu", front="alexnet")


def test_the_shipped_checkpoint_is_seed_0_of_the_cpu_study_and_checked_by_its_digest(tmp_path):
    from posebook.learn import sha256

    assert S.SHIPPED_CHECKPOINT.exists() and sha256(S.SHIPPED_CHECKPOINT) == S.SHIPPED_SHA256
    net = S.load_trained("cpu")
    assert len(net.stages) == S.TRAINED["cpu"]["stages"] and not net.training
    import torch

    with torch.no_grad():
        pafs, heatmaps = net(torch.zeros(1, 3, 64, 64))
    assert pafs[-1].shape == (1, 38, 8, 8) and torch.isfinite(heatmaps[-1]).all()
    changed = tmp_path / "changed.pt"
    changed.write_bytes(S.SHIPPED_CHECKPOINT.read_bytes() + b"\0")
    original = S.SHIPPED_CHECKPOINT
    try:
        S.SHIPPED_CHECKPOINT = changed
        with pytest.raises(ValueError, match="SHA-256"):
            S.load_trained("cpu")
    finally:
        S.SHIPPED_CHECKPOINT = original
