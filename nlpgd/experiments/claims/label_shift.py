"""Label shift: test sets with another share of spam, and the prior.

For each prevalence of ``experiment.label_shift.prevalences`` and each seed, the test split is
resampled (without replacement, the largest subset with that share of spam; the same subset for
every model of the seed). Every model fitted on the full train split scores it three ways:

- ``train``: as it is (the training prior; for a discriminative model, no correction);
- ``true``: with the subset's true prevalence;
- ``em``: with the prevalence estimated by EM from the model's own outputs (Saerens et al. 2002).

A generative model gets the prior inside the model (``set_prior``, then the texts are scored
again); a discriminative model gets the same Bayes correction applied to its log-odds, from the
prior its outputs assume (recorded in its saved state: uniform for ``class_weight: balanced``
or ``fit_prior: false``, a configured prior, else the training share).

The finding measures adaptation, not calibration: both members are first temperature-calibrated
on validation (the log-likelihood ratio ``z - logit(assumed prior)`` scaled by one ``T`` per
seed, with the training prior added back), and the verdict compares the *gain* of the EM prior
over the training prior (log loss with the training prior minus log loss with the EM prior, EM
rerun in every bootstrap resample). BBSE (black-box shift estimation, Lipton et al. 2018: the
validation confusion matrix of the calibrated decisions inverted against the test's share of
spam decisions) is the second prevalence estimator, for every member: its error and its gain
are reported beside EM's.
"""

from __future__ import annotations

import numpy as np

from nlpgd import stats
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, shift_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design

NAME = "label-shift"
TITLE = "Label shift and priors"
CLAIM = (
    "Generative models adapt to a new share of spam by replacing their prior: with an EM-estimated prior their "
    "probabilities beat a discriminative model given the same EM correction."
)
MODES = {"train": "training prior (no correction)", "true": "true prevalence", "em": "EM estimate"}
STYLES = {"train": ":", "true": "--", "em": "-"}


def plan(d: Design) -> Plan:
    p = Plan()
    d.add_full_cells(p, [shift_eval(d.grid.label_shift.prevalences)])
    return p


ESTIMATORS = {"em": "EM", "bbse": "BBSE"}


def _calibrated(store: M.Store, cell: str, seed: int, q: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """One seed's calibrated log-odds on the resampled test subset and on validation, and its
    record: ``(z - logit(assumed)) / T + logit(train prior)``, ``T`` fitted on validation."""
    record = store.json(f"predictions/{cell}/seed{seed}.shift.json", {})
    train = float(record["train_prior"])
    assumed = float(record.get("assumed_prior", train))
    val = store.preds(cell, seed, "validation")
    z_val = val["log_odds"] - stats.logit(assumed)
    T = stats.fit_temperature(val["label"], z_val, offset=float(stats.logit(train)))
    z = store.preds(cell, seed, f"shift-{q:g}-train")["log_odds"] - stats.logit(assumed)
    return z / T + stats.logit(train), z_val / T + stats.logit(train), {**record, "temperature": T}


def _loss_and_accuracy(W: np.ndarray, y: np.ndarray, z: np.ndarray, shift: np.ndarray) -> tuple:
    """Log loss and accuracy in every resample (rows of ``W``) of log-odds ``z`` moved by each
    resample's own ``shift`` (``(B,)``: a prior estimated in that resample)."""
    Z = z[None, :] + shift[:, None]
    total = W.sum(axis=1)
    loss = (W * stats.nll(np.broadcast_to(y, Z.shape), Z)).sum(axis=1) / total
    acc = (W * ((Z > 0) == y.astype(bool))).sum(axis=1) / total
    return loss, acc


def _seed_shift(res: M.Resampler, y: np.ndarray, c: np.ndarray, c_val: np.ndarray, yv, train: float) -> dict:
    """Calibrated log loss and accuracy with the train prior, the EM prior and the BBSE prior,
    and each estimator's absolute error, on the subset (``point``) and in every resample."""
    out = {}
    for W in (np.ones((1, len(y))), res.W):
        truth = (W @ y) / W.sum(axis=1)
        est = {
            "train": np.full(W.shape[0], train),
            "em": stats.em_prior_resampled(W, c, train),
            "bbse": stats.bbse_prior(yv, c_val, c, W),
        }
        for mode, q in est.items():
            shift = stats.logit(np.clip(q, 1e-6, 1 - 1e-6)) - stats.logit(train)
            loss, acc = _loss_and_accuracy(W, y, c, np.where(np.isfinite(q), shift, np.nan))
            out.setdefault(f"{mode}/log_loss", []).append(loss)
            out.setdefault(f"{mode}/accuracy", []).append(acc)
            if mode != "train":
                out.setdefault(f"{mode}/error", []).append(np.abs(q - truth))
    return {k: (v[0][0], v[1]) for k, v in out.items()}


def _calibrated_stats(res: M.Resampler, store: M.Store, cell: str, seeds: list[int], q: float) -> dict:
    """Per estimator: the calibrated metrics, their gain over the train prior and the
    prevalence error, each a :class:`~M.Stat` over seeds and resamples."""
    per_seed = []
    for s in seeds:
        c, c_val, record = _calibrated(store, cell, s, q)
        y = store.labels(cell, s, f"shift-{q:g}-train")
        yv = store.labels(cell, s, "validation")
        per_seed.append(_seed_shift(res, y, c, c_val, yv, float(record["train_prior"])))
    stat = {
        k: M.Stat(
            np.array([p[k][0] for p in per_seed]),
            np.stack([p[k][1] for p in per_seed], axis=1),
            M.range_of("prevalence_error" if k.endswith("/error") else k.rsplit("/", 1)[1]),
        )
        for k in per_seed[0]
    }
    out = dict(stat)
    for est in ESTIMATORS:
        out[f"{est}/gain_log_loss"] = stat["train/log_loss"] - stat[f"{est}/log_loss"]
        out[f"{est}/gain_accuracy"] = stat[f"{est}/accuracy"] - stat["train/accuracy"]
    return out


def model_shift(d: Design, store: M.Store, m: str) -> dict:
    """``{q: {"train"|"true"|"em": {accuracy, log_loss}, "prevalence_error": Stat, ...}}`` of one model."""
    seeds, cell = d.seeds_of(m), f"{FULL}/{m}"
    out = {}
    for q in d.grid.label_shift.prevalences:
        if not all(store.has(cell, seeds, f"shift-{q:g}-{mode}") for mode in MODES):
            continue
        ys = [store.labels(cell, s, f"shift-{q:g}-train") for s in seeds]
        res = M.Resampler(len(ys[0]), len(seeds), d.grid.bootstrap)
        row = {
            mode: M.measure(
                res,
                ys,
                store.log_odds(cell, seeds, f"shift-{q:g}-{mode}"),
                [M.Measure("accuracy", "accuracy"), M.Measure("log_loss", "log_loss")],
            )
            for mode in MODES
        }
        row["calibrated"] = _calibrated_stats(res, store, cell, seeds, q)
        row["prevalence_error"] = row["calibrated"]["em/error"]
        records = [store.json(f"predictions/{cell}/seed{s}.shift.json", {}) for s in seeds]
        row["estimates"] = [r[f"{q:g}"]["em_estimate"] for r in records]
        row["bbse_estimates"] = [r[f"{q:g}"].get("bbse_estimate") for r in records]
        row["assumed_prior"] = records[0].get("assumed_prior")
        row["prevalence"] = float(np.mean([r[f"{q:g}"]["prevalence"] for r in records]))
        row["n"], row["n_spam"] = len(ys[0]), int(ys[0].sum())
        row["how"] = records[0].get("how")
        row["draws"] = res.draws
        out[q] = row
    return out


# (finding metric, key in "calibrated", direction, label): the EM gain findings carry the
# configured metric's name, so the verdict rests on the gain, not on the calibrated level
FINDINGS = [
    ("log_loss", "em/gain_log_loss", "higher", "log-loss gain of the EM prior over the train prior"),
    ("accuracy", "em/gain_accuracy", "higher", "accuracy gain of the EM prior over the train prior"),
    ("prevalence_error", "em/error", "lower", "prevalence-estimate error of EM"),
    ("log_loss_bbse", "bbse/gain_log_loss", "higher", "log-loss gain of the BBSE prior over the train prior"),
    ("accuracy_bbse", "bbse/gain_accuracy", "higher", "accuracy gain of the BBSE prior over the train prior"),
    ("prevalence_error_bbse", "bbse/error", "lower", "prevalence-estimate error of BBSE"),
]


def _findings(d: Design, shifts: dict) -> list[dict]:
    out = []
    for pair in d.pairs:
        g, c = shifts.get(pair.generative), shifts.get(pair.discriminative)
        qs = [q for q in d.grid.label_shift.prevalences if g and c and q in g and q in c]
        if not qs:
            continue
        span = ", ".join(f"{q:g}" for q in qs)
        for metric, key, direction, text in FINDINGS:
            vg, vc = (M.average([v[q]["calibrated"][key] for q in qs]) for v in (g, c))
            out.append(
                M.pair_finding(
                    d.grid,
                    pair,
                    "generative",
                    (vg, vc),
                    metric=metric,
                    metric_label=text,
                    direction=direction,
                    statistic=f"{text}, both members temperature-calibrated on validation, averaged over "
                    f"prevalences {span}",
                )
            )
    return out


GAINS = ("log_loss", "accuracy")


def _tables(d: Design, shifts: dict) -> list[dict]:
    rows, est, gains = [], [], []
    for m, by_q in shifts.items():
        for q, v in by_q.items():
            rows.append(
                [
                    m,
                    f"{q:g}",
                    f"{v['n']} ({v['n_spam']} spam)",
                    *(M.shown(v[mode], k, v["draws"]) for k in ("accuracy", "log_loss") for mode in MODES),
                ]
            )
            cal = v["calibrated"]
            est.append(
                [
                    m,
                    v["how"],
                    "unknown" if v["assumed_prior"] is None else f"{v['assumed_prior']:.4f}",
                    f"{v['prevalence']:.4f}",
                    ", ".join(f"{e:.4f}" for e in v["estimates"]),
                    M.text(cal["em/error"].summary(v["draws"])),
                    ", ".join("n/a" if e is None else f"{e:.4f}" for e in v["bbse_estimates"]),
                    M.text(cal["bbse/error"].summary(v["draws"])),
                ]
            )
            gains.append(
                [m, f"{q:g}", *(M.text(cal[f"{e}/gain_{k}"].summary(v["draws"])) for e in ESTIMATORS for k in GAINS)]
            )
    heads = [f"{k} ({MODES[mode]})" for k in ("accuracy", "log loss") for mode in MODES]
    return [
        {
            "title": "Resampled test sets: accuracy and log loss with each prior",
            "headers": ["model", "target prevalence", "messages", *heads],
            "rows": rows,
        },
        {
            "title": "Prevalence estimates (per seed) and their error: EM and BBSE",
            "headers": [
                "model",
                "prior applied",
                "prior the outputs assume",
                "true prevalence",
                "EM estimate per seed",
                "EM error (calibrated)",
                "BBSE estimate per seed",
                "BBSE error (calibrated)",
            ],
            "rows": est,
        },
        {
            "title": "Gain over the train prior after temperature calibration on validation (higher is better)",
            "headers": [
                "model",
                "target prevalence",
                *(f"{ESTIMATORS[e]}: {k} gain" for e in ESTIMATORS for k in GAINS),
            ],
            "rows": gains,
        },
    ]


def _figure(d: Design, shifts: dict) -> dict:
    panels = []
    for metric in ("log_loss", "accuracy"):
        lines = []
        for m, by_q in shifts.items():
            qs = sorted(by_q)
            for mode in MODES:
                lines.append(
                    M.series(
                        f"{m}, {MODES[mode]}",
                        qs,
                        [by_q[q][mode][metric].summary(by_q[q]["draws"]) for q in qs],
                        STYLES[mode],
                        group=m,
                    )
                )
        panels.append(
            {
                "title": M.label(metric),
                "xlabel": "share of spam in the test set",
                "ylabel": M.label(metric),
                "xscale": "log",
                "series": lines,
            }
        )
    lines = [
        M.series(m, sorted(by_q), [by_q[q]["prevalence_error"].summary(by_q[q]["draws"]) for q in sorted(by_q)])
        for m, by_q in shifts.items()
    ]
    panels.append(
        {
            "title": "EM prevalence-estimate error",
            "xlabel": "share of spam in the test set",
            "ylabel": "|estimate - true|",
            "xscale": "log",
            "series": lines,
        }
    )
    return {"name": "label_shift", "title": "Label shift: resampled test sets, three priors", "panels": panels}


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    metric = d.grid.label_shift.metric
    shifts = {m: v for m in d.paired + d.reference if (v := model_shift(d, store, m))}
    findings = _findings(d, shifts)
    return M.paired_result(
        d,
        store,
        findings,
        metric=metric,
        key=lambda f: f"{f['favoured']} vs {f['other']}: {M.text(f['favoured_value'])} vs {M.text(f['other_value'])}",
        tables=[*_tables(d, shifts)],
        effects=[],
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        figures=[_figure(d, shifts)],
        notes=[],
        method="Resampled test sets keep every message at most once. Each member is first calibrated on "
        "validation: its log-likelihood ratio (log-odds minus the logit of the prior its outputs assume, recorded in "
        "the model) is scaled by one temperature per seed, with the training prior added back. The verdict rests "
        "on the gain of the EM prior (Saerens et al. 2002) over the training prior on these calibrated outputs, "
        "so it measures adaptation, not calibration; EM is rerun in every bootstrap resample. BBSE (Lipton et al. "
        "2018) is the second estimator, from the validation confusion matrix of the calibrated decisions. A "
        "positive advantage means the generative member is better. " + M.INTERVALS,
    )
