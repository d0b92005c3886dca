"""Protocol 2 of the studies: a variant is a chapter's reference network (or one change of it) trained with the
profile's recipe (:mod:`posebook.recipe`, as the chapters' live runs train), for a declared number of steps, and scored
at the end on at least 500 validation people with left/right inversions by view; its config holds everything the run
depends on, so the declaration's digest covers it. Also the ``--dry-run`` estimate of a top-down training run.
Chapters 03-07 (chapter 03 explains studies).
"""
from __future__ import annotations

import time

import numpy as np

from posebook.keypoints import COCO
from posebook.studies import topdown

TRAINER_KEYS = ("steps", "batch_size", "optimizer", "lr", "schedule", "cosine_tail", "warmup")


def recipe_config(profile: str, model: str, kwargs: dict, steps: int, targets: str = "gaussian",
                  pretrained: bool = False, train_items: int | None = None, val_people: int = 500,
                  curve_people: int = 200, evaluations: int = 4, input_size: tuple[int, int] | None = None,
                  heatmap_size: tuple[int, int] | None = None) -> dict:
    """A protocol-2 study config: the data and trainer settings of ``profile``'s recipe (:mod:`posebook.recipe`,
    as the chapters' reference networks train, :mod:`posebook.learn`), ``models.create(model, **kwargs)``, ``steps``
    steps, the final score on ``val_people`` validation people (by view) and ``evaluations`` curve points on the
    first ``curve_people``. ``input_size`` and ``heatmap_size`` replace the recipe's (the target's sigma follows the
    recipe's rule for the new map). Everything a run depends on is in the config, so the declaration's digest covers
    it. Chapters 03-07."""
    from dataclasses import replace

    from posebook import learn
    from posebook.recipe import recipe

    rec = recipe(profile)
    if input_size is not None or heatmap_size is not None:
        rec = replace(rec, input_size=tuple(input_size or rec.input_size),
                      heatmap_size=tuple(heatmap_size or rec.heatmap_size))
    ref = learn.Reference("study", model, dict(kwargs), targets=targets, steps=steps, pretrained=pretrained,
                          train_items=train_items or learn.Reference.train_items)
    smoke = profile == "smoke"
    config = learn.data_config(ref, rec, val_people=val_people)
    options = rec.trainer_options(steps)
    config.update(profile=profile, model=model, kwargs=dict(kwargs), targets=targets,
                  pretrained=bool(pretrained and not smoke), curve_people=min(curve_people, val_people),
                  evaluations=evaluations, steps=steps, batch_size=options["batch_size"],
                  optimizer=options["optimizer"], lr=options["lr"], schedule=options["schedule"],
                  cosine_tail=options["cosine_tail"], warmup=options["warmup_steps"],
                  milestones=list(options["milestones"]))
    return config


def recipe_model(config: dict):
    """The network of a protocol-2 config: ``models.create(config["model"], **config["kwargs"])`` for COCO's
    keypoints, its ResNet trunk loaded from the shipped pretrained one when ``config["pretrained"]``
    (:func:`posebook.learn.pretrained_trunk`, standing in for the papers' ImageNet start). Seed the RNG first.
    Chapters 03-07."""
    from posebook import learn, models
    from posebook.weights import load_trunk

    net = models.create(config["model"], num_joints=COCO.num_keypoints, **config["kwargs"])
    if config.get("pretrained"):
        load_trunk(net, learn.pretrained_trunk(), source=str(learn.TRUNK_FILE))
    return net


def recipe_run(name: str, config: dict, seed: int, net, loss_fn, progress: bool = False, extra=None) -> dict:
    """Train ``net`` (built and seeded by the caller with ``torch.manual_seed(seed)``) on the study's rendered crops
    (cached under ``name``) with ``config``'s recipe (:func:`recipe_config`), one thread's process time counted;
    score it every ``steps / evaluations`` steps on the first ``curve_people`` validation people and at the end on
    all of them, with left/right inversions by view. The final metrics add ``params``, ``macs`` (real multiply-adds
    of one crop) and ``gflops`` (the papers' convention), and whatever ``extra(model, val, views, final)`` returns
    (chapter 03: every stack scored). Chapters 03-07."""
    from posebook.bench import count_params, gflops, real_macs
    from posebook.train import Trainer

    items = topdown.training_items(name, config, progress)
    val = topdown.validation_set(config)
    val_views = topdown.views(val)
    curve_val = topdown.validation_set(dict(config, val_people=config["curve_people"]))
    curve_views = topdown.views(curve_val)
    every = max(1, config["steps"] // config["evaluations"])
    trainer = Trainer(net, items, loss_fn, steps=config["steps"], batch_size=config["batch_size"],
                      optimizer=config["optimizer"], lr=config["lr"], schedule=config["schedule"],
                      cosine_tail=config["cosine_tail"], warmup_steps=config["warmup"],
                      milestones=tuple(config["milestones"]), seed=seed, channels_last=True,
                      validate=lambda m: topdown.scores(m, curve_val, views=curve_views)[0], val_every=every,
                      log_every=max(1, config["steps"] // 50), progress=progress)
    clock = time.process_time()
    history = trainer.fit()
    final, _ = topdown.scores(trainer.model, val, views=val_views)
    if extra is not None:
        final.update(extra(trainer.model, val, val_views, dict(final)))
    final["cpu_minutes"] = (time.process_time() - clock) / 60
    final["params"] = count_params(trainer.model)
    size = tuple(config["input_size"])
    final["macs"] = real_macs(trainer.model, size)
    final["gflops"] = gflops(trainer.model, size)
    curves = [{k: v for k, v in h.items() if k in ("step", "loss", "lr", "samples_per_s", "AP", "PCK@0.1", "PCK@0.2")
               or k.startswith("inversion.")} for h in history]
    return {"curves": curves, "final": final, "val_people": len(val), "device": str(trainer.device)}


def estimate_run(net, loss_fn, config: dict, targets: int | None = None) -> tuple[float, str]:
    """Seconds for one training run of ``net`` with ``loss_fn`` on ``targets`` rendered targets per item (None: one
    target tensor, a single-output network's), from a few timed training steps and a timed forward pass on random
    data; on the CPU one thread's process time (an upper bound for two threads on a quiet machine). Chapters 05, 06
    and 07."""
    import torch

    import posebook
    from posebook.bench import count_params

    device = posebook.device()
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
        clock = time.process_time
    else:
        def clock():
            torch.cuda.synchronize(device)
            return time.perf_counter()
    try:
        net = net.to(device, memory_format=torch.channels_last).train()
        params = count_params(net)
        h, w = config["input_size"]
        b, k = config["batch_size"], COCO.num_keypoints
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
        x = torch.randn(b, 3, h, w, device=device).contiguous(memory_format=torch.channels_last)
        t = [torch.rand(b, k, *config["heatmap_size"], device=device) for _ in range(targets or 1)]
        wt = [torch.ones(b, k, device=device) for _ in range(targets or 1)]
        if targets is None:
            t, wt = t[0], wt[0]
        timings = []
        for _ in range(4):
            start = clock()
            optimizer.zero_grad()
            loss_fn(net(x), t, wt).backward()
            optimizer.step()
            timings.append(clock() - start)
        step = float(np.median(timings[1:]))
        net.eval()
        with torch.no_grad():
            start = clock()
            net.predict(x)
            per_crop = (clock() - start) / b
    finally:
        torch.set_num_threads(threads)
    per_person = 2 * per_crop + 0.01  # flip test + decoding and COCOeval (~10 ms a person)
    if "evaluations" in config:  # protocol 2: curve points on curve_people, the final score on val_people
        evaluating = per_person * (config["evaluations"] * config["curve_people"] + config["val_people"] * 1.25)
    else:
        evals = config["steps"] // config["val_every"] + (config["steps"] % config["val_every"] > 0)
        evaluating = per_person * config["val_people"] * evals
    return step * config["steps"] + evaluating, f"{params / 1e6:.3f}M params, {step * 1000:.0f} ms/step"
