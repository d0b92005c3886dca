"""The training recipe of each profile, declared in one place, and `bench learn`, which trains a chapter's
reference network with it and scores it beside the oracle's ceiling."""
import json

import numpy as np
import pytest
import torch

from posebook import learn, metrics
from posebook.codecs.blur import blur_sigma, scaled_kernel
from posebook.data.transforms import Augment
from posebook.keypoints import COCO
from posebook.recipe import RECIPES, recipe
from posebook.studies import topdown

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the recipe ----------------------------------------------------------------------------------------------------

def test_cpu_recipe_is_light_augmentation_and_gpu_and_full_keep_the_papers():
    cpu = recipe("cpu")
    assert cpu.augment == Augment(scale=0.25, rotation=30.0, rotation_prob=0.4, half_body=0.0, flip=0.5)
    assert recipe("gpu").augment == recipe("full").augment == Augment.hrnet()
    assert (cpu.input_size, cpu.heatmap_size, cpu.schedule) == ((96, 64), (24, 16), "flat_cosine")
    assert recipe("full").trainer_options(210)["milestones"] == (170, 200)  # HRNet's epochs 170 and 200 of 210
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        recipe("laptop")


def test_sigma_keeps_the_papers_width_relative_to_the_crop_with_a_one_pixel_floor():
    cpu = recipe("cpu")
    assert recipe("gpu").sigma == 2.0  # HRNet's sigma 2 on 64x48
    assert cpu.sigma_for((32, 24)) == 1.0 and cpu.sigma_for((128, 96)) == 4.0
    assert cpu.sigma == 1.0  # 2 * 24 / 64 = 0.75, raised to the floor


def test_the_recipe_trains_with_a_flat_learning_rate_then_a_cosine():
    from posebook.train import lr_factor

    options = recipe("cpu").trainer_options(1000)
    lrs = [lr_factor(s, 1000, options["schedule"], warmup_steps=options["warmup_steps"],
                     tail=options["cosine_tail"]) for s in (200, 499, 750, 1000)]
    assert lrs == pytest.approx([1.0, 1.0, 0.5, 0.0])


def test_scaled_kernels_keep_the_blur_width_relative_to_the_map():
    assert [scaled_kernel(k, 1.0) for k in (15, 11, 9, 7, 5)] == [15, 11, 9, 7, 5]
    assert [scaled_kernel(k, 0.375) for k in (15, 11, 9, 7, 21)] == [5, 3, 3, 3, 7]
    for k in (15, 11, 7):  # the nearest odd kernel to the scaled sigma
        s = scaled_kernel(k, 0.5)
        assert abs(blur_sigma(s) - blur_sigma(k) / 2) <= min(abs(blur_sigma(o) - blur_sigma(k) / 2)
                                                             for o in range(3, 31, 2))
    with pytest.raises(ValueError, match="odd"):
        scaled_kernel(8, 0.5)


def test_mspn_codecs_scale_their_kernels_with_the_map():
    from posebook.models.mspn import mspn_codecs

    full = [c.kernel for c in mspn_codecs(2)]
    small = [c.kernel for c in mspn_codecs(2, (96, 64), (24, 16), kernel_scale=0.375)]
    assert full == [15, 11, 9, 7, 11, 9, 7, 5]
    assert small == [scaled_kernel(k, 0.375) for k in full]


# ---- left/right inversions -------------------------------------------------------------------------------------------

def test_lr_inversions_count_predictions_at_the_mirrored_joint_only_when_the_twins_are_apart():
    flip = COCO.flip_index()
    gt = np.zeros((1, 17, 3))
    gt[0, :, 2] = 2
    gt[0, :, 0] = np.arange(17) * 20.0  # every joint 20 px from the next: twins are more than 0.1 x 100 apart
    gt[0, :, 1] = 50
    perfect = gt[..., :2].copy()
    mirrored = gt[:, flip, :2]
    eligible, inverted = metrics.lr_inversions(perfect, gt, [100.0], flip)
    sided = flip != np.arange(17)
    assert (eligible[0] == sided).all() and not inverted.any()
    _, inverted = metrics.lr_inversions(mirrored, gt, [100.0], flip)
    assert (inverted[0] == sided).all()
    near = gt.copy()
    near[0, flip[5], :2] = near[0, 5, :2] + 5  # a twin within 0.1 of the box: not eligible
    eligible, _ = metrics.lr_inversions(perfect, near, [100.0], flip)
    assert not eligible[0, 5]
    with pytest.raises(ValueError, match="agree on N and K"):
        metrics.lr_inversions(perfect[:, :5], gt, [100.0], flip)


def test_views_follow_the_renderers_yaw_bands_and_the_default_mix():
    config = dict(input_size=(64, 64), heatmap_size=(16, 16), sigma=1.0, image_size=(128, 128), scene={},
                  max_people=4, val_people=120)
    val = topdown.validation_set(config)
    views = topdown.views(val)
    assert sorted(views) == sorted(val.coco.anns)
    shares = {v: list(views.values()).count(v) / len(views) for v in topdown.VIEWS}
    assert shares["front"] > 0.45 and min(shares.values()) > 0.1  # the renderer's 55 / 30 / 15 mix, 153 people
    other = topdown.validation_set(dict(config, val_seed=7))
    assert other.coco.anns[1]["keypoints"] != val.coco.anns[1]["keypoints"]


# ---- bench learn ---------------------------------------------------------------------------------------------------

def test_every_reference_feeds_its_heads_at_least_as_many_channels_as_joints():
    import torch

    for key, ref in learn.REFERENCES.items():
        with torch.device("meta"):
            net = ref.build()
        heads = [m for name, m in net.named_modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.out_channels == 17]
        assert heads, key
        assert min(m.in_channels for m in heads) >= 17, key


@pytest.mark.slow
def test_bench_learn_prints_one_json_line_with_the_issue_fields(capsys, tmp_path):
    out = tmp_path / "record.json"
    learn.main(["--chapter", "04", "--profile", "smoke", "--json", "--out", str(out)])
    line = capsys.readouterr().out.strip().splitlines()
    assert len(line) == 1
    result = json.loads(line[0])
    for key in ("chapter", "steps", "cpu_minutes", "AP", "PCK@0.1", "PCK@0.2", "inversion", "val_people",
                "ceiling"):
        assert key in result, key
    assert set(result["inversion"]) == {"front", "side", "back"} and result["chapter"] == "04_simple_baseline"
    record = json.loads(out.read_text())
    assert record["curve"] and record["recipe"]["recipe"] == RECIPES["smoke"].name and record["command"]


def test_bench_learn_refuses_bad_arguments():
    with pytest.raises(SystemExit):
        learn.main(["--chapter", "09"])
    with pytest.raises(SystemExit):
        learn.main(["--chapter", "04", "--seconds", "10", "--steps", "3"])
    with pytest.raises(ValueError, match="chapters"):
        learn.reference("12")


# ---- the chapters' live runs ---------------------------------------------------------------------------------------

def test_live_settings_take_each_profiles_network_recipe_and_budget(monkeypatch):
    monkeypatch.delenv("POSEBOOK_TRIAL", raising=False)
    for key, ref in learn.REFERENCES.items():
        cpu = learn.live_settings(key, "cpu")
        assert cpu["kwargs"] == ref.kwargs and cpu["pretrained"] == ref.pretrained
        assert cpu["steps"] == (ref.live_steps or ref.steps // learn.LIVE_SHARE) <= ref.steps / 2
        assert cpu["train_items"] == ref.train_items
        assert (cpu["input_size"], cpu["sigma"]) == ((96, 64), recipe("cpu").sigma)
        assert cpu["val_people"] >= 500 and cpu["recipe"]["recipe"] == "cpu"
        gpu = learn.live_settings(key, "gpu")
        assert gpu["kwargs"] == learn.PAPER_SIZES[ref.model] and not gpu["pretrained"]
        assert gpu["input_size"] == (256, 192) and not gpu["rendered"]
        smoke = learn.live_settings(key, "smoke")
        assert smoke["steps"] == 4 and set(learn.SMOKE_SIZES[ref.model]) <= set(smoke["kwargs"])
    assert learn.live_settings("03", "full")["kwargs"]["stacks"] == 8  # Newell's eight hourglasses
    assert learn.live_settings("05", "cpu")["codec"]["peak"] == 255  # CPN's blur targets, scaled to the map
    monkeypatch.setenv("POSEBOOK_TRIAL", "1")
    trial = learn.live_settings("07", "gpu")
    assert trial["trial"] and (trial["steps"], trial["batch_size"], trial["train_items"]) == (2, 2, 8)
    assert trial["kwargs"] == learn.PAPER_SIZES["hrnet"], "a trial keeps the profile's network"
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        learn.live_settings("04", "laptop")
    text = learn.describe(learn.live_settings("04", "cpu"))
    assert "pretrained trunk" in text and "96x64" in text


@pytest.mark.slow
def test_live_run_trains_scores_by_view_and_a_second_run_loads_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("POSEBOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("POSEBOOK_TRIAL", raising=False)
    first = learn.live_run("04", "smoke", progress=False)
    assert not first.loaded and first.steps == 4 and first.train_seconds > 0
    assert [h["step"] for h in first.history if "AP" in h] == [2, 4]  # two validations, the last at the end
    for key in ("AP", "PCK@0.1", "PCK@0.2", "inversion.front", "inversion.side", "inversion.back"):
        assert 0.0 <= first.scores[key] <= 1.0, key
    assert not first.model.training
    again = learn.live_run("04", "smoke", progress=False)
    assert again.loaded and again.scores == first.scores
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # data=(train, val): another validation set, scored without views (it carries none)
    val = topdown.validation_set(dict(learn.live_settings("04", "smoke"), val_seed=5))
    other = learn.live_run("04", "smoke", data=(first.train_set, val), progress=False)
    assert not other.loaded and other.val_set is val and "inversion.back" not in other.scores


# ---- the pretrained trunk ------------------------------------------------------------------------------------------

def test_a_trunk_loads_into_every_resnet_of_simplebaseline_cpn_and_each_mspn_stage():
    import torch

    from posebook import models
    from posebook.weights import TRUNK_PARTS, CheckpointError, load_trunk, trunk_places

    torch.manual_seed(0)
    source = models.create("simple_baseline", width=4, deconv_channels=8)
    trunk = {k: v for k, v in source.state_dict().items() if k.split(".")[0] in TRUNK_PARTS}
    cpn = load_trunk(models.create("cpn", width=4, pyramid_channels=8), trunk)
    mspn = load_trunk(models.create("mspn", stages=2, width=4), trunk)
    assert trunk_places(mspn) == {"stem": ["stem."], "layers": ["stages.0.downsample.", "stages.1.downsample."]}
    for key, value in trunk.items():
        assert torch.equal(cpn.state_dict()["backbone." + key], value)
        if key.startswith("layer"):
            for stage in (0, 1):
                assert torch.equal(mspn.state_dict()[f"stages.{stage}.downsample.{key}"], value)
        else:
            assert torch.equal(mspn.state_dict()["stem." + key], value)
    with pytest.raises(CheckpointError, match="does not fit CPN"):
        load_trunk(models.create("cpn", width=8, pyramid_channels=8), trunk)
    with pytest.raises(CheckpointError, match="holds no ResNet trunk"):
        load_trunk(models.create("hourglass", stacks=1, channels=8, order=2), trunk)


def test_the_shipped_trunk_matches_its_recorded_sha256_and_fits_the_cpu_references():
    from posebook.weights import load_trunk

    readme = (learn.TRUNK_FILE.parent / "README.md").read_text()
    assert learn.TRUNK_SHA256 is not None and learn.sha256(learn.TRUNK_FILE) == learn.TRUNK_SHA256
    assert learn.TRUNK_SHA256 in readme and "python -m posebook.bench pretrain" in readme
    assert learn.TRUNK_FILE.stat().st_size < 8 * 2 ** 20  # a few MB
    trunk = learn.pretrained_trunk()
    for key in ("04", "05", "06"):
        assert learn.REFERENCES[key].pretrained
        load_trunk(learn.REFERENCES[key].build(), trunk)


def test_every_chapter_has_a_calibration_record_and_the_results_page_shows_them_all(root):
    records = learn.calibration_records(root / "book" / "results")
    assert sorted(name[:2] for name in records) == sorted(learn.REFERENCES)
    for name, record in records.items():
        ref = learn.reference(name)
        assert record["chapter"] == ref.chapter and record["model"] == ref.model and record["kwargs"] == ref.kwargs
        assert record["steps"] == ref.steps and record["val_people"] >= 500 and record["threads"] == 1
        assert record["pretrained"] == ref.pretrained and record["recipe"]["recipe"] == "cpu"
        assert record["cpu_minutes"] <= 25 and 0 <= record["AP"] <= record["ceiling"] <= 1
    page = (root / "book" / "results.md").read_text()
    block = page.split(learn.CALIBRATION_BEGIN)[1].split(learn.CALIBRATION_END)[0].strip()
    assert block == learn.calibration_markdown(records)


def test_the_cpu_recipes_gaussians_are_darks_and_raise_the_decoding_ceiling():
    from posebook.codecs import GaussianHeatmap

    cpu = recipe("cpu")
    assert cpu.unbiased and not recipe("gpu").unbiased and not recipe("full").unbiased  # the papers' HRNet targets
    assert learn.codec_spec(learn.reference("04"), cpu) == {"unbiased": True}
    assert learn.codec_spec(learn.reference("04"), recipe("gpu")) is None
    assert "kernels" in learn.codec_spec(learn.reference("05"), cpu)  # CPN keeps its blur targets
    settings = dict(input_size=(96, 64), heatmap_size=(24, 16), sigma=1.0, codec={"unbiased": True})
    codec = topdown.codecs(settings)
    assert isinstance(codec, GaussianHeatmap) and codec.unbiased and codec.sigma == 1.0
    for bad in ({"unbiased": "yes"}, {"unbiased": True, "kernels": [7]}):
        with pytest.raises(ValueError, match="Gaussian spec"):
            topdown.codecs(dict(settings, codec=bad))
    ref = learn.reference("04")
    val = topdown.validation_set(learn.data_config(ref, cpu, val_people=60))
    biased = topdown.validation_set(learn.data_config(ref, recipe("smoke"), val_people=60))
    assert val.codec.unbiased and not biased.codec.unbiased
    assert learn.ceiling(val) > 0.97  # HRNet's whole-pixel targets at this map: about 0.85 (tests/test_oracle.py)


# ---- the plateau pilots -----------------------------------------------------------------------------------------

def _pilot(values, steps=1200, schedule="constant"):
    every = steps // len(values)
    curve = [{"step": every * (i + 1), "PCK@0.1": v, "AP": v / 2} for i, v in enumerate(values)]
    return dict(chapter="04_simple_baseline", steps=steps, curve=curve, recipe={"schedule": schedule})


def test_plateau_finds_where_a_constant_learning_rate_curve_stops_rising():
    flat = learn.plateau(_pilot([0.3, 0.5, 0.6, 0.65, 0.70, 0.702, 0.705, 0.704, 0.706, 0.705, 0.706, 0.707]))
    assert flat["flat"] and flat["rise"] == pytest.approx(0.707 - 0.704) and flat["best"] == 0.707
    assert flat["reached"] == 500  # the first point within 0.01 of the best (0.702 at step 500)
    rising = learn.plateau(_pilot([0.3, 0.4, 0.5, 0.55, 0.6, 0.65]))
    assert not rising["flat"] and rising["rise"] == pytest.approx(0.65 - 0.55) and rising["reached"] == 1200
    assert learn.plateau(_pilot([0.1, 0.2, 0.3]), metric="AP", tolerance=0.2)["reached"] == 400


def test_plateau_refuses_a_run_that_did_not_train_at_a_constant_rate_or_has_too_few_points():
    with pytest.raises(ValueError, match="flat_cosine"):
        learn.plateau(_pilot([0.3, 0.5, 0.6], schedule="flat_cosine"))
    with pytest.raises(ValueError, match="2 points"):
        learn.plateau(_pilot([0.3, 0.5]))


def test_bench_learn_plateau_trains_at_a_constant_rate_and_rejects_conflicting_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        learn.main(["--chapter", "04", "--plateau", "--schedule", "cosine"])
    assert "constant learning rate" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        learn.main(["--chapter", "04", "--plateau", "--calibration"])
    with pytest.raises(SystemExit):
        learn.main(["--chapter", "04", "--evaluations", "0"])
    out = tmp_path / "pilot.json"
    result = learn.learn("04", profile_name="smoke", schedule="constant", evaluations=4)
    assert result["recipe"]["schedule"] == "constant" and all(c["lr"] == result["curve"][0]["lr"]
                                                               for c in result["curve"] if "lr" in c)
    learn.main(["--chapter", "04", "--profile", "smoke", "--schedule", "constant", "--out", str(out), "--json"])
    assert json.loads(out.read_text())["recipe"]["schedule"] == "constant"


def test_every_chapter_has_a_plateau_pilot_of_its_budget_and_the_results_page_shows_them(root):
    pilots = learn.plateau_records(root / "book" / "results")
    calibration = learn.calibration_records(root / "book" / "results")
    assert sorted(name[:2] for name in pilots) == sorted(learn.REFERENCES)
    for name, record in pilots.items():
        ref = learn.reference(name)
        assert record["chapter"] == ref.chapter and record["model"] == ref.model and record["kwargs"] == ref.kwargs
        assert record["steps"] == ref.steps and record["recipe"]["schedule"] == "constant"
        assert record["threads"] == 1 and record["val_people"] >= 500
        assert len([c for c in record["curve"] if "PCK@0.1" in c]) >= learn.PLATEAU_EVALUATIONS
        learn.plateau(record)
    page = (root / "book" / "results.md").read_text()
    block = page.split(learn.PLATEAU_BEGIN)[1].split(learn.PLATEAU_END)[0].strip()
    assert block == learn.plateau_markdown(calibration, pilots)
