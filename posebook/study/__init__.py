"""Studies: a chapter's claims, tested by variants x seeds, one JSON record per run, and a verdict from the records.

A chapter declares its paper's claims (``posebook/studies/<chapter>.py``). A claim has a metric, the paper's own
figure (quoted with its table or figure number) and variants: a *trained* variant is a config trained once per seed (at least 3);
a *probe* is a deterministic computation with no training; a variant may also read another claim's runs (``of``),
so one training run can serve several claims. Commands::

    python -m posebook.study 03 [--profile cpu] [--only CLAIM] [--dry-run]   # run what is missing, record each run
    python -m posebook.study summary [--json] [--profile cpu]                # means, seed ranges, effects, verdicts
    python -m posebook.study summary --page book/results.md                  # and the Results page's tables

Records live in ``book/results/studies/<profile>/<chapter>/<claim>/<variant>-seed<k>.json`` (``$POSEBOOK_STUDIES``
overrides the root); a run whose record exists is skipped, so a study accumulates over several sittings. The verdict
is "shown" when the difference of means has the claimed sign and exceeds the seed range (max - min) of both
variants, with every declared seed recorded; "contradicted" when it exceeds both with the opposite sign (a result
against the paper); "not shown" otherwise. CPU and GPU records are never averaged together.
Explained in chapter 03 (Stacked Hourglass), where the first study is.

The package follows the jobs: :mod:`~posebook.study.declarations` (claims, variants, the declaration digest),
:mod:`~posebook.study.records`, :mod:`~posebook.study.runner`, :mod:`~posebook.study.verdicts` (the seed-range rule;
the Welch rule is :mod:`posebook.stats`), :mod:`~posebook.study.summary`, :mod:`~posebook.study.plots`,
:mod:`~posebook.study.rendered` (training sets rendered once) and :mod:`~posebook.study.cli`.
"""

from posebook.study.declarations import (ENV_VAR, FORMAT, KINDS, MIN_SEEDS, MIN_VAL_PEOPLE, PROFILES, PROTOCOL,
                                         EQUIVALENCE_RULE, RECORD_KEYS, RULE, VERDICTS, Claim, Variant, chapter_claims, chapter_module,
                                         default_profile)
from posebook.study.verdicts import equivalence_range, verdict
from posebook.study.records import read_record, record_path, studies_root, write_record
from posebook.study.runner import Run, plan, run_study
from posebook.study.summary import (STUDIES_BEGIN, STUDIES_END, chapter_costs, format_summary, load_claims, own_runs,
                                    recorded_minutes, summary_markdown, update_page)
from posebook.study.plots import plot_claim
from posebook.study.rendered import RenderedItems
from posebook.study.cli import main

__all__ = ["ENV_VAR", "EQUIVALENCE_RULE", "FORMAT", "KINDS", "MIN_SEEDS", "MIN_VAL_PEOPLE", "PROFILES", "PROTOCOL", "RECORD_KEYS", "RULE",
           "VERDICTS", "Claim", "Variant", "chapter_claims", "chapter_module", "default_profile", "verdict", "equivalence_range", "read_record",
           "record_path", "studies_root", "write_record", "Run", "plan", "run_study", "STUDIES_BEGIN", "STUDIES_END",
           "chapter_costs", "format_summary", "load_claims", "own_runs", "recorded_minutes", "summary_markdown",
           "update_page", "plot_claim", "RenderedItems", "main"]
