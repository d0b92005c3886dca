"""The chapters' studies: one module per chapter declaring its paper's claims for ``python -m posebook.study``.

A module defines ``CHAPTER`` (the notebook stem), ``claims(profile) -> list[Claim]`` and, for ``--dry-run``,
``estimate_data(profile)`` and ``estimate_run(config, kind)`` (seconds, note). Add a chapter with one line in
``CHAPTERS``. Explained in chapter 03 (Stacked Hourglass).
"""
from __future__ import annotations

# notebook stem -> module of this package declaring its claims
CHAPTERS: dict[str, str] = {
    "01_data": "data",
    "03_stacked_hourglass": "stacked_hourglass",
    "04_simple_baseline": "simple_baseline",
    "05_cpn": "cpn",
    "06_mspn": "mspn",
    "07_hrnet": "hrnet",
    "08_openpose": "openpose",
    "09_side_by_side": "side_by_side",
}


def resolve(chapter: str) -> str:
    """The notebook stem of a chapter given as its stem ("03_stacked_hourglass") or number ("03", "3"). Chapter 03."""
    text = str(chapter).strip()
    if text in CHAPTERS:
        return text
    if text.isdigit():
        matches = [name for name in CHAPTERS if name.split("_", 1)[0] == f"{int(text):02d}"]
        if matches:
            return matches[0]
    raise ValueError(f"no study is declared for chapter {chapter!r}; chapters with a study: {sorted(CHAPTERS)}")
