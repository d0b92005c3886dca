"""Chapter 09's checkers (posebook/check/side_by_side.py): the reference solutions agree with the library's own code
(posebook.bench.conv_macs, torch's fuse_conv_bn_weights, posebook.inference.optimize.fold_bn), the hidden cases
really separate the wrong answers they are there for, the messages name the mistake, and a learner's wrong types
give a clear failure, not a crash. (tests/test_checkers.py runs every solution and mutant.)"""
import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from posebook.bench import conv_macs
from posebook.check import check
from posebook.check import side_by_side as sbs
from posebook.inference.optimize import fold_bn

NAMES = ["side_by_side_macs", "side_by_side_pareto", "side_by_side_fold_bn"]


@pytest.mark.parametrize("name", NAMES)
def test_untouched_stub_is_not_attempted(name):
    def stub(*args):
        raise NotImplementedError

    assert check(name, stub).status == "not attempted"


@pytest.mark.parametrize("name", NAMES)
def test_reference_solution_passes(name):
    solution = {"side_by_side_macs": sbs.macs_solution, "side_by_side_pareto": sbs.pareto_solution,
                "side_by_side_fold_bn": sbs.fold_bn_solution}[name]
    assert check(name, solution).passed


# ---- side_by_side_macs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("real", [False, True])
@pytest.mark.parametrize("what,factory,size", sbs.MACS_CASES, ids=[case[0] for case in sbs.MACS_CASES])
def test_macs_solution_equals_conv_macs_on_every_case(what, factory, size, real):
    model = sbs._build(factory)
    assert sbs.macs_solution(model, size, real) == conv_macs(sbs._build(factory), size, real=real)
    assert not any(m._forward_hooks for m in model.modules())  # the reference removes its hooks
    assert sum(sbs._by_kind(sbs._build(factory), size, real).values()) == conv_macs(model, size, real=real)


def _random_net(seed: int) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    layers, channels = [], 3
    for _ in range(int(rng.integers(2, 5))):
        depthwise = channels > 3 and rng.uniform() < 0.4
        if rng.uniform() < 0.3:
            out = int(rng.integers(1, 4)) * 4
            layers.append(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1, bias=bool(rng.integers(2))))
        else:
            out = channels * int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, 4)) * 4
            layers.append(nn.Conv2d(channels, out, int(rng.choice([1, 3])), stride=int(rng.integers(1, 3)),
                                    padding=1, groups=channels if depthwise else 1, bias=bool(rng.integers(2))))
        layers.append(nn.ReLU())
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 5))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("real", [False, True])
def test_macs_solution_equals_conv_macs_on_random_nets(seed, real):
    net = _random_net(seed).eval()
    assert sbs.macs_solution(net, (17, 13), real) == conv_macs(net, (17, 13), real=real)


def test_macs_cases_hold_what_their_names_say():
    cases = {what: (factory, size) for what, factory, size in sbs.MACS_CASES}
    kinds = {what: {type(m) for m in sbs._build(factory).modules()} for what, (factory, _) in cases.items()}
    assert any(nn.ConvTranspose2d in k for k in kinds.values()) and any(nn.Linear in k for k in kinds.values())
    assert any(m.groups > 1 for f, _ in cases.values() for m in sbs._build(f).modules() if isinstance(m, nn.Conv2d))
    # the transposed convolution's real count is stride^2 = 4 times less than the papers'
    factory, size = cases["a stride-2 convolution, then a stride-2 transposed convolution (k4, p1)"]
    papers, real = sbs._by_kind(sbs._build(factory), size, False), sbs._by_kind(sbs._build(factory), size, True)
    assert papers["ConvTranspose2d"] == 4 * real["ConvTranspose2d"] and papers["Conv2d"] == real["Conv2d"]
    # the shared convolution counts twice
    factory, size = cases["one 3 x 3 convolution applied twice in the forward pass"]
    shared = sbs._build(factory).shared
    pixels = size[0] * size[1]
    assert conv_macs(sbs._build(factory), size) == 3 * 8 * 9 * pixels + 2 * shared.weight.numel() * pixels


@pytest.mark.parametrize("label", list(sbs._MACS_MUTANTS))
def test_macs_mutant_gets_its_own_hint(label):
    result = check("side_by_side_macs", sbs._MACS_MUTANTS[label])
    assert result.status == "failed" and sbs._MACS_HINTS[label] in result.message, str(result)
    assert "expected" in result.message and "got" in result.message


def test_macs_messages_name_the_case():
    transposed = check("side_by_side_macs",
                       sbs._MACS_MUTANTS["transposed convolution at its output size even when real=True"])
    assert "transposed convolution" in transposed.message and "real=True" in transposed.message
    assert "ConvTranspose2d 98,304" in transposed.message  # the expected count split by layer kind
    twice = check("side_by_side_macs", sbs._MACS_MUTANTS["each module's first call only"])
    assert "applied twice" in twice.message and "every call" in twice.message


def test_macs_other_convention_and_left_out_kind_are_explained():
    swapped = check("side_by_side_macs", lambda model, size, real: conv_macs(model, size, real=not real))
    assert swapped.status == "failed" and "real=False: expected" in swapped.message
    assert "that is the count with real=True" in swapped.message

    def no_transposed(model, size, real):
        return sum(macs for kind, macs in sbs._by_kind(model, size, real).items() if kind != "ConvTranspose2d")

    left_out = check("side_by_side_macs", no_transposed)
    assert left_out.status == "failed" and "leaves out the ConvTranspose2d layers" in left_out.message


def test_macs_leftover_hooks_fail_with_the_reason():
    def keeps_hooks(model, size, real):
        total = conv_macs(model, size, real=real)
        model.register_forward_hook(lambda *args: None)
        return total

    result = check("side_by_side_macs", keeps_hooks)
    assert result.status == "failed" and "still registered" in result.message and "remove" in result.message

    handles = []

    def keeps_global_hook(model, size, real):
        handles.append(nn.modules.module.register_module_forward_hook(lambda *args: None))
        return conv_macs(model, size, real=real)

    try:
        result = check("side_by_side_macs", keeps_global_hook)
    finally:
        for handle in handles:
            handle.remove()
    assert result.status == "failed" and "still registered" in result.message


def test_macs_accepts_numbers_of_any_type_and_leaves_the_random_state_alone():
    assert check("side_by_side_macs", lambda *args: float(sbs.macs_solution(*args))).passed
    assert check("side_by_side_macs", lambda *args: np.int64(sbs.macs_solution(*args))).passed
    assert check("side_by_side_macs", lambda *args: torch.tensor(sbs.macs_solution(*args))).passed
    state = torch.get_rng_state()
    check("side_by_side_macs", sbs.macs_solution)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("answer", [lambda *args: None, lambda *args: "many", lambda *args: True,
                                    lambda *args: [1, 2]])
def test_macs_wrong_types_fail_clearly(answer):
    result = check("side_by_side_macs", answer)
    assert result.status == "failed" and "expected a number" in result.message, str(result)


# ---- side_by_side_pareto ---------------------------------------------------------------------------------------


def test_pareto_solution_on_the_cases():
    fronts = {what: sbs.pareto_solution(rows) for what, rows in sbs.PARETO_CASES}
    assert fronts["the book's five architectures"] == ["mspn", "hrnet"]
    assert fronts["two models with equal macs, two with equal AP"] == ["C", "B"]
    assert fronts["equal AP at different costs"] == ["small", "big"]
    assert fronts["two identical rows (same macs, same AP)"] == ["z", "x", "y"]  # both twins, by name
    assert fronts["every model on the front"] == ["tiny", "small", "w32", "w48"]
    assert fronts["a single row"] == ["only"] and fronts["an empty table"] == []


@pytest.mark.parametrize("seed", range(10))
def test_pareto_solution_is_the_set_no_row_dominates(seed):
    rng = np.random.default_rng(seed)
    rows = [{"name": f"m{i}", "macs": float(rng.integers(1, 6)), "AP": float(rng.integers(60, 65))}
            for i in range(int(rng.integers(0, 9)))]
    front = sbs.pareto_solution(rows)
    by_name = {r["name"]: r for r in rows}
    for row in rows:
        beaten = any((o["AP"], -o["macs"]) != (row["AP"], -row["macs"]) and o["AP"] >= row["AP"]
                     and o["macs"] <= row["macs"] for o in rows)
        assert (row["name"] in front) != beaten
    assert [(by_name[n]["macs"], n) for n in front] == sorted((by_name[n]["macs"], n) for n in front)


@pytest.mark.parametrize("label", list(sbs._PARETO_MUTANTS))
def test_pareto_mutant_gets_its_own_hint(label):
    result = check("side_by_side_pareto", sbs._PARETO_MUTANTS[label])
    assert result.status == "failed" and sbs._PARETO_HINTS[label] in result.message, str(result)


def test_pareto_generic_hints_name_the_model():
    extra = check("side_by_side_pareto", lambda rows: sbs.pareto_solution(rows) + [
        r["name"] for r in rows if r["name"] == "simple_baseline"])
    assert "simple_baseline is dominated by hrnet" in extra.message
    missing = check("side_by_side_pareto", lambda rows: sbs.pareto_solution(rows)[1:])
    assert "mspn is on the front" in missing.message

    def ties_reversed(rows):
        names = set(sbs.pareto_solution(rows))
        front = sorted((r for r in rows if r["name"] in names), key=lambda r: r["name"], reverse=True)
        return [r["name"] for r in sorted(front, key=lambda r: r["macs"])]

    order = check("side_by_side_pareto", ties_reversed)
    assert "identical rows" in order.message and "ties by name" in order.message


def test_pareto_accepts_a_tuple_and_ignores_changes_to_the_rows():
    assert check("side_by_side_pareto", lambda rows: tuple(sbs.pareto_solution(rows))).passed

    def clears(rows):
        front = sbs.pareto_solution(rows)
        rows.clear()
        return front

    assert check("side_by_side_pareto", clears).passed


@pytest.mark.parametrize("answer,words", [
    (lambda rows: None, "return a list of names"),
    (lambda rows: "mspn", "return a list of names"),
    (lambda rows: [{"name": "mspn"}] if rows else [], "return the models' names"),
    (lambda rows: [1, 2], "return the models' names"),
    (lambda rows: ["resnet"] if rows else [], "not the name of any row"),
])
def test_pareto_wrong_types_fail_clearly(answer, words):
    result = check("side_by_side_pareto", answer)
    assert result.status == "failed" and words in result.message, str(result)


# ---- side_by_side_fold_bn --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,case", list(enumerate(sbs.FOLD_CASES)), ids=[c[0] for c in sbs.FOLD_CASES])
def test_fold_solution_equals_fuse_conv_bn_weights_and_optimize(seed, case):
    what, args, (h, w) = case
    conv, bn = sbs._fold_case(seed, **args)
    conv, bn = conv.double(), bn.double()  # float64: the two folds agree to rounding on any machine's kernels
    mine = sbs.fold_bn_solution(conv, bn)
    weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                        bn.bias)
    torch.testing.assert_close(mine.weight.detach(), weight.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(mine.bias.detach(), bias.detach(), rtol=1e-6, atol=1e-7)
    library = fold_bn(conv, bn)
    x = torch.randn(2, conv.in_channels, h, w, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), library(x), rtol=1e-6, atol=1e-6)
        assert sbs._fold_error(mine(x).numpy(), bn(conv(x)).numpy()) < sbs.FOLD_RTOL / 10  # a wide margin
    assert isinstance(mine, nn.Conv2d) and mine.bias is not None and mine is not conv


def test_fold_cases_hold_what_the_mutants_need():
    cases = [sbs._fold_case(seed, **args) for seed, (_, args, _) in enumerate(sbs.FOLD_CASES)]
    first_conv, first_bn = cases[0]
    assert first_bn.eps == 0.1 and first_conv.bias is not None  # eps forgotten and bias dropped both show
    assert first_conv.in_channels == first_conv.out_channels  # scaling the input channels broadcasts: a failure
    assert any(c.groups > 1 for c, _ in cases) and any(c.bias is None for c, _ in cases)
    assert any(c.stride != (1, 1) for c, _ in cases)
    assert all((bn.running_var - 1).abs().max() > 0.5 for _, bn in cases)  # var and std differ clearly
    # where in / groups != out, scaling the input channels is no answer at all
    conv, bn = cases[1]
    with pytest.raises(RuntimeError):
        sbs._FOLD_MUTANTS["input channels scaled (scale[None, :, None, None])"](conv, bn)


@pytest.mark.parametrize("label", list(sbs._FOLD_MUTANTS))
def test_fold_mutant_gets_its_own_hint(label):
    result = check("side_by_side_fold_bn", sbs._FOLD_MUTANTS[label])
    assert result.status == "failed", str(result)
    assert sbs._FOLD_HINTS.get(label, "changed conv") in result.message, str(result)


def test_fold_checks_the_originals_and_the_result_type():
    def changes_bn(conv, bn):
        fused = sbs.fold_bn_solution(conv, bn)
        with torch.no_grad():
            bn.running_mean.zero_()
        return fused

    assert "changed bn" in check("side_by_side_fold_bn", changes_bn).message
    sequential = check("side_by_side_fold_bn", lambda conv, bn: nn.Sequential(copy.deepcopy(conv),
                                                                               copy.deepcopy(bn)))
    assert sequential.status == "failed" and "expected an nn.Conv2d" in sequential.message

    def no_bias(conv, bn):
        fused = sbs.fold_bn_solution(conv, bn)
        if conv.bias is None:
            fused.bias = None
        return fused

    assert "has no bias" in check("side_by_side_fold_bn", no_bias).message

    def wrong_stride(conv, bn):
        fused = sbs.fold_bn_solution(conv, bn)
        fused.stride = (1, 1)
        return fused

    assert "keep conv's stride" in check("side_by_side_fold_bn", wrong_stride).message
    unfused = check("side_by_side_fold_bn", lambda conv, bn: copy.deepcopy(conv) if conv.bias is not None
                    else sbs.fold_bn_solution(conv, bn))
    assert unfused.status == "failed" and "bn(conv(x))" in unfused.message and "Hint" in unfused.message


def test_fold_accepts_a_fresh_conv_built_from_scratch():
    def fresh(conv, bn):
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, bias=True)
        weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                            bn.weight, bn.bias)
        fused.weight, fused.bias = weight, bias
        return fused

    assert check("side_by_side_fold_bn", fresh).passed
