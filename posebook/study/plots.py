"""A claim's figure. Chapter 03."""
from __future__ import annotations


def plot_claim(claim: dict, ax=None):
    """Plot one entry of :func:`load_claims`: mean and seed range over steps per variant, or per variant when the
    value is only recorded at the end (dots per seed, bar from min to max). Returns the figure. Chapter 03."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.5))
    over_steps = all(v["read"] in v["curves"] for v in claim["variants"])
    for i, v in enumerate(claim["variants"]):
        if over_steps:
            curve = v["curves"][v["read"]]
            line, = ax.plot(curve["step"], curve["mean"], marker="o", label=f"{v['name']} ({len(v['values'])} seeds)")
            ax.fill_between(curve["step"], curve["min"], curve["max"], color=line.get_color(), alpha=0.2)
        elif v["values"]:
            ax.plot([i] * len(v["values"]), v["values"], "o", alpha=0.6)
            ax.vlines(i, v["min"], v["max"], color="k", lw=1)
            ax.hlines(v["mean"], i - 0.2, i + 0.2, color="k", lw=2)
    if over_steps:
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    else:
        ax.set_xticks(range(len(claim["variants"])), [v["name"] for v in claim["variants"]])
        ax.set_xlim(-0.6, len(claim["variants"]) - 0.4)
    ax.set_ylabel(claim["metric"])
    ax.set_title(f"{claim['claim']} [{claim['profile']}]: {claim['verdict']}", fontsize=10)
    ax.grid(alpha=0.3)
    return ax.figure
