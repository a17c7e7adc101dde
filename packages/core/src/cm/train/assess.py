"""Assessing the model: validation at each epoch, and the final evaluation of the best model
on val and test at the decision (calibrator, per-criterion thresholds) fitted on val, with
sentence evidence, and the TF-IDF floor on the same posts.

The interface the engine uses: ``validate(scorer, split, criteria, eval_config) -> metrics``
and ``evaluate_best(run, scorer, splits, corpus, best_epoch, hooks, console) -> Evaluation``
(``scorer``: a ``cm.model.scoring.Scorer``).
"""

import json

import attrs
import numpy as np

from cm.cachedir import cache_root
from cm.data.sentences import corpus_sentences
from cm.evaluate import decisions
from cm.evaluate.decisions import Decision
from cm.evaluate.evidence import evidence_metrics, overlap_scores, ranking
from cm.evaluate.floor import floor_metrics
from cm.evaluate.report import write_split_report
from cm.evaluate.summary import (
    calibration_line,
    criterion_table,
    evidence_table,
    floor_verdict,
    headline_table,
)
from cm.evaluate.validation import cell_pairs, split_metrics, validation_metrics
from cm.lineage import code_state
from cm.model.checkpoint import save_checkpoint
from cm.model.scoring import Scorer, sentence_probs


def validate(scorer: Scorer, split, criteria, eval_config) -> dict:
    """One epoch's validation (``cm.evaluate.validation.validation_metrics``) of ``split``
    scored by ``scorer``."""
    return validation_metrics(split, scorer.probabilities(split), criteria,
                              eval_config.thresholds)


@attrs.frozen
class Evaluation:
    """The final evaluation: the decision fitted on val (calibrator, thresholds), the
    metrics per column (``val``, ``val_tuned``, ``test``, ``test_tuned``)."""

    decision: Decision
    columns: dict


def evaluate_best(run, scorer: Scorer, splits, corpus, best_epoch, hooks, console,
                  decision: Decision | None = None) -> Evaluation:
    """Score the best model on val and test at the decision fitted on val (or ``decision``,
    e.g. a checkpoint's, as it is); fills ``run.metrics`` and ``run.artifacts``, calls
    ``evaluated`` per split; rank 0 saves the final checkpoint (with the decision) and prints
    the summary."""
    criteria = [c.id for c in corpus.criteria]
    evaluation = evaluate(run, scorer, splits, corpus, hooks, decision)
    run.record({"best_epoch": best_epoch})
    if run.experiment.eval.floor:
        run.record(floor(run.experiment, splits, corpus))
    if run.world.main:
        save_checkpoint(run.directory / "checkpoint", scorer.model, scorer.tokenizer,
                        run.experiment,
                        {"num_logits": scorer.loss.num_logits, **evaluation.decision.meta(),
                         "epoch": best_epoch, "final": True,
                         "criteria": [{"id": c.id, "text": c.text} for c in corpus.criteria],
                         "test_post_macro_f1": run.metrics["test_tuned/post_macro_f1"],
                         "lineage": {**code_state(), "data_digests": corpus.digests}})
        (run.directory / "metrics.json").write_text(json.dumps(run.metrics, indent=2))
        console.print(headline_table(run.metrics, len(criteria)))
        if run.experiment.eval.floor:
            console.print(floor_verdict(run.metrics))
        console.print(criterion_table(run.metrics, criteria))
        console.print(calibration_line(evaluation.decision.calibrator, scorer.loss))
        if run.experiment.eval.evidence:
            console.print(evidence_table(run.metrics))
        console.print(f"best epoch {best_epoch}; reports: {run.directory}")
    return evaluation


def floor(experiment, splits, corpus) -> dict:
    """The TF-IDF floor (cm.evaluate.floor) on the run's own train / val / test posts."""
    pairs = {name: cell_pairs(splits[name], np.zeros(len(splits[name].pairs)))
             for name in ("train", "val", "test")}
    settings = experiment.eval
    return floor_metrics({p.post_id: p.text for p in corpus.posts}, pairs, settings.thresholds,
                         [c.id for c in corpus.criteria], experiment.seed,
                         settings.bootstrap_resamples)


def evaluate(run, scorer: Scorer, splits, corpus, hooks, decision=None) -> Evaluation:
    experiment = run.experiment
    settings, ids = experiment.eval, [c.id for c in corpus.criteria]
    pairs = {name: cell_pairs(splits[name], scorer.probabilities(splits[name]))
             for name in ("val", "test")}
    decision = decision or decisions.fit(settings.thresholds, settings.calibration,
                                         pairs["val"], getattr(scorer.loss, "prior_shift", None))
    run.record(decision.calibrator.metrics())
    columns = {}
    for name in ("val", "test"):
        split = splits[name]
        plain = split_metrics(split, pairs[name].probs, 0.5, ids)
        tuned = {**decisions.scores(pairs[name], decision, ids),
                 **decisions.calibration_scores(pairs[name], decision, experiment.seed,
                                                settings.bootstrap_resamples),
                 **decisions.intervals(pairs[name], decision, experiment.seed,
                                       settings.bootstrap_resamples)}
        if settings.evidence:
            tuned.update(evaluate_evidence(scorer, experiment.data, cache_root() / "encoded",
                                           corpus, {p.post_id for p in split.pairs}))
        columns.update({name: plain, f"{name}_tuned": tuned})
        for column in (name, f"{name}_tuned"):
            run.record({f"{column}/{k}": v for k, v in columns[column].items()})
        artifacts = write_split_report(run.directory, name, pairs[name],
                                       [p.sentence_id for p in split.pairs], decision, ids,
                                       tuned) if run.world.main else {}
        run.record(artifacts={f"{name}/{k}": v for k, v in artifacts.items()})
        hooks.evaluated(run=run, split=name, metrics=plain, artifacts=artifacts)
    return Evaluation(decision, columns)


def evaluate_evidence(scorer, data, cache_dir, corpus, post_ids) -> dict:
    """hit@1 / hit@3 of the model's sentence ranking, and of both baselines, over the
    positive (post, criterion) cells of ``post_ids`` whose annotated sentences were found."""
    sentences = corpus_sentences(corpus, post_ids)
    texts = {p.post_id: p.text for p in corpus.posts}
    criteria = {c.id: c.text for c in corpus.criteria}
    cells = sorted(sentences.positive)
    requests = [(texts[post], sentences.spans[post], cid, criteria[cid]) for post, cid in cells]
    probs = sentence_probs(scorer, data, requests, cache_dir)
    gold = [set(sentences.positive[cell]) for cell in cells]
    overlap = [ranking(overlap_scores([text[s.start:s.end] for s in spans], criterion_text))
               for text, spans, _, criterion_text in requests]
    return evidence_metrics([ranking(p) for p in probs], overlap,
                            [len(spans) for _, spans, _, _ in requests], gold)
