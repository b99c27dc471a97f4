"""Reports from saved predictions, never from live models.

:func:`write_report` rebuilds everything of one run folder from
``predictions/<model>/seed<k>.{validation,test}.csv`` plus ``run.json``, ``data.json`` and
``costs.json``: ``report.md``, a self-contained ``report.html`` (figures embedded as base64
data URIs), ``results.json`` (every number in the tables) and ``figures/*.png``.
:func:`write_comparison` puts two or more run folders side by side in another folder.

What the numbers are (see :mod:`nlpgd.stats` for the methods and libraries):

- every test metric: mean and standard deviation over seeds, and a 95% percentile
  bootstrap interval (numpy; 1,000 resamples of the test messages, the same resamples for
  every model and seed; per resample the metric is averaged over seeds);
- McNemar's exact test (scipy ``binomtest`` on the discordant pairs) for every pair of
  models, at the 0.5 threshold, separately for each seed (models trained with the same seed
  are paired); the table gives each seed's p-value and the largest of them, so "largest
  p < 0.05" means the difference is significant in every seed. No correction for multiple
  comparisons is applied;
- operating points: per seed, the threshold is chosen on the validation split (most spam
  caught with at most 0.1% / 1% of ham blocked) and applied unchanged to the test split;
- calibration: one temperature per model and seed fitted on validation (scipy
  ``minimize_scalar`` on log T), ECE / Brier / log loss on test before and after;
- costs as recorded by ``compare`` in ``costs.json``.

The modules, each depending only on those before it: :mod:`~nlpgd.report.load` (a run
folder, each prediction file read once), :mod:`~nlpgd.report.analysis` (pure: predictions
in, one results dict out), :mod:`~nlpgd.report.figures` (matplotlib),
:mod:`~nlpgd.report.render` (blocks to Markdown and HTML, number formatting),
:mod:`~nlpgd.report.sections` (results to blocks) and :mod:`~nlpgd.report.write` (files).
"""

from nlpgd.report.analysis import REPORT_FORMAT, analyse, analyse_runs, context_line, dataset_name
from nlpgd.report.load import RunPredictions, load_run_predictions
from nlpgd.report.render import fmt_stat, render_html, render_markdown
from nlpgd.report.write import write_comparison, write_report

__all__ = [
    "REPORT_FORMAT",
    "RunPredictions",
    "analyse",
    "analyse_runs",
    "context_line",
    "dataset_name",
    "fmt_stat",
    "load_run_predictions",
    "render_html",
    "render_markdown",
    "write_comparison",
    "write_report",
]
