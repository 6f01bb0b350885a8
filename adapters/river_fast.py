"""River's per-candle hot paths, spelled out for the two models `adapters.river_models` builds.

Each function does on river's own objects exactly what river's public method does for the
configuration built there (`StandardScaler | LogisticRegression`, `HoeffdingTreeClassifier` with naive
Bayes leaves and Gaussian splitters, all features numeric and present, unit weights): the same state
changes and the same float operations in the same order, so every probability and every pickled state is
bit-identical; only river's generic machinery (the pipeline's plan, recursive generators for the tree
walk, a method call per Gaussian estimator and per feature) is skipped. Anything outside that common case
(an empty tree, a branch that is not a numeric binary one, a missing feature, an inactive leaf, a class
an estimator has not seen yet) is handed to river's own method. `tests/test_river_identity.py` holds the
decisions and the pickled models equal to river's on real candles; re-check it when upgrading river.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from river.compose import Pipeline
from river.linear_model import LogisticRegression
from river.optim import SGD
from river.optim.losses import Log
from river.preprocessing import StandardScaler
from river.proba.gaussian import _HALF_LOG_TAU
from river.tree import HoeffdingTreeClassifier
from river.tree.nodes.branch import NumericBinaryBranch
from river.tree.nodes.htc_nodes import LeafNaiveBayes
from river.tree.splitter import GaussianSplitter
from river.utils import VectorDict
from river.utils.math import sigmoid

_NEG_INF = -math.inf

Scales = dict[str, tuple[float, float]] | None  # the scaler's (mean, std) per feature, None: unknown
TreePath = tuple[NumericBinaryBranch | None, LeafNaiveBayes] | None  # (parent, leaf), None: river's own code


def check_logistic(model: Pipeline) -> None:
    """The configuration `logistic_learn` and `logistic_proba` replicate."""
    steps = list(model.steps.values())
    if not (type(model) is Pipeline and len(steps) == 2 and type(steps[0]) is StandardScaler
            and steps[0].with_std and steps[0].window_size is None and type(steps[1]) is LogisticRegression
            and type(steps[1].optimizer) is SGD and type(steps[1].loss) is Log
            and steps[1].l1 == 0 and steps[1].l2 == 0):
        raise TypeError(f"the fast logistic path does not replicate {model!r}")


def logistic_learn(model: Pipeline, x: dict[str, float], y: bool) -> Scales:
    """`model.learn_one(x, y)`, returning the scaler's statistics after it for `logistic_proba`.

    As the pipeline: the scaler learns x, x is scaled with the scaler's new statistics, and the logistic
    regression learns the scaled x. The statistics stay those until the next learn, so the prediction
    that follows scales with them too: each square root is taken once for both.
    """
    if model._plan is None or model._LEARN_UNSUPERVISED_DURING_PREDICT:
        model.learn_one(x, y)
        return None
    scaler, regression = model.steps.values()
    counts, means, vars_ = scaler.counts, scaler.means, scaler.vars
    scales, scaled = {}, {}
    for i, xi in x.items():  # StandardScaler.learn_one (with_std, no window), one read and write per dict
        n = counts[i] + 1
        counts[i] = n
        old_mean = means[i]
        mean = old_mean + (xi - old_mean) / n
        means[i] = mean
        var = vars_[i]
        var = var + ((xi - old_mean) * (xi - mean) - var) / n
        vars_[i] = var
        std = var**0.5
        scales[i] = (mean, std)
        scaled[i] = (xi - mean) / std if std else 0.0  # StandardScaler.transform_one, as in `_scaled`
    _regression_learn(regression, scaled, y)
    return scales


def _regression_learn(regression: LogisticRegression, x: dict[str, float], y: bool) -> None:
    """GLM.learn_one(x, y) with w=1, SGD and no l1 or l2 penalty (`check_logistic`), its calls inlined."""
    saved = regression._weights
    regression._weights = weights = VectorDict(saved, regression.initializer, x)  # _enter_learn_mode(x)
    try:
        loss_gradient = regression.loss.gradient(y_true=y, y_pred=weights.dot(x) + regression.intercept)
        loss_gradient *= 1.0
        clip = regression.clip_gradient
        loss_gradient = float(max(min(loss_gradient, clip), -clip))
        gradient = VectorDict.from_scaled(x, loss_gradient)
        optimizer = regression.optimizer
        regression.intercept -= regression.intercept_lr.get(optimizer.n_iterations) * loss_gradient
        weights.isub_scaled(gradient, optimizer.lr.get(optimizer.n_iterations))  # SGD.step
        optimizer.n_iterations += 1
    finally:
        regression._weights = saved  # _exit_learn_mode


def logistic_proba(model: Pipeline, x: dict[str, float], scales: Scales) -> dict[bool, float]:
    """`model.predict_proba_one(x)`, given what `logistic_learn` returned if the model learnt since it last
    predicted (else None)."""
    if scales is None or scales.keys() != x.keys() or model._LEARN_UNSUPERVISED_DURING_PREDICT:
        return model.predict_proba_one(x)  # builds the pipeline's plan too, the first time
    regression = model._last_step_cached
    p = sigmoid(regression._weights.dot(_scaled(x, scales)) + regression.intercept)  # Log.mean_func
    return {False: 1.0 - p, True: p}


def _scaled(x: dict[str, float], scales: dict[str, tuple[float, float]]) -> dict[str, float]:
    """StandardScaler.transform_one for features it has statistics of: (x - mean) / sqrt(var), 0 where the
    variance is 0."""
    result = {}
    for i, xi in x.items():
        mean, std = scales[i]
        result[i] = (xi - mean) / std if std else 0.0
    return result


def check_tree(model: HoeffdingTreeClassifier) -> None:
    """The configuration `tree_learn_one` and `tree_proba` replicate; anything else would need river's code."""
    if not (type(model) is HoeffdingTreeClassifier and model.leaf_prediction == "nb"
            and model.nominal_attributes is None and type(model.splitter) is GaussianSplitter):
        raise TypeError(f"the fast Hoeffding tree path does not replicate {model!r}")


def tree_path(model: HoeffdingTreeClassifier, x: dict[str, float]) -> TreePath:
    """(parent, leaf) of x as river's walk finds them; None: a case river's own code must handle.

    Exact type checks, not isinstance: river's node classes are ABCs, whose isinstance is slow.
    """
    parent, node = None, model._root
    while type(node) is NumericBinaryBranch:
        feature = node.feature
        if feature not in x:
            return None
        parent, node = node, node.children[0 if x[feature] <= node.threshold else 1]
    if type(node) is not LeafNaiveBayes or node.splitters is None:  # also: no root yet, an inactive leaf
        return None
    return parent, node


def tree_learn_one(model: HoeffdingTreeClassifier, x: dict[str, float], y: bool, path: TreePath) -> None:
    """`model.learn_one(x, y)` (HoeffdingTreeClassifier.learn_one with w=1); `path`: `tree_path(model, x)`."""
    if path is None:
        model.learn_one(x, y)
        return
    parent, leaf = path
    model.classes.add(y)
    model._train_weight_seen_by_model += 1.0
    stats = leaf.stats
    try:  # LeafMajorityClass.update_stats
        stats[y] += 1.0
    except KeyError:
        stats[y] = 1.0
    _update_splitters(leaf, model, x, y)
    if model._growth_allowed:  # the leaf is active
        if leaf.depth >= model.max_depth:
            leaf.deactivate()
            model._n_active_leaves -= 1
            model._n_inactive_leaves += 1
        else:
            weight_seen = sum(stats.values()) if stats else 0
            if weight_seen - leaf.last_split_attempt_at >= model.grace_period:
                branch = parent.branch_no(x) if parent is not None else None
                model._attempt_to_split(leaf, parent, branch)
                leaf.last_split_attempt_at = weight_seen
    if model._train_weight_seen_by_model % model.memory_estimate_period == 0:
        model._estimate_model_size()


def _update_splitters(leaf: LeafNaiveBayes, model: HoeffdingTreeClassifier, x: dict[str, float], y: bool) -> None:
    """HTLeaf.update_splitters, with GaussianSplitter.update and Gaussian/Var/Mean.update inlined (w=1)."""
    if leaf._disabled_attrs:  # never for naive Bayes leaves: their disable_attribute does nothing
        leaf.update_splitters(x, y, 1.0, model.nominal_attributes)
        return
    splitters = leaf.splitters
    for att_id, value in x.items():
        splitter = splitters.get(att_id)
        if splitter is None:
            nominal = model.nominal_attributes
            if (nominal is not None and att_id in nominal) or not isinstance(value, numbers.Number):
                splitter = leaf.new_nominal_splitter()
            else:
                splitter = leaf.splitter.clone()
            splitters[att_id] = splitter
        # A GaussianSplitter makes only Gaussians; a class it has not seen yet gets one in its own update.
        distribution = splitter._att_dist_per_class.get(y) if type(splitter) is GaussianSplitter else None
        if distribution is None or value is None:
            splitter.update(value, y, 1.0)
            continue
        if value < splitter._min_per_class[y]:
            splitter._min_per_class[y] = value
        if value > splitter._max_per_class[y]:
            splitter._max_per_class[y] = value
        var = distribution._var
        mean = var.mean
        mean_old = mean._mean
        n = mean.n + 1.0
        mean.n = n
        mean_new = mean_old + (1.0 / n) * (value - mean_old)
        mean._mean = mean_new
        var._S += 1.0 * (value - mean_old) * (value - mean_new)


def tree_proba(model: HoeffdingTreeClassifier, x: dict[str, float], path: TreePath) -> dict[bool, float]:
    """What `model.predict_proba_one(x)` adds to its classes' zeros (read it with `.get(label, 0.0)`);
    `path`: `tree_path(model, x)`."""
    if path is None:
        return model.predict_proba_one(x)
    leaf = path[1]
    threshold = model.nb_threshold
    if threshold > 0 and leaf.total_weight < threshold:  # a weight is never negative
        return leaf.prediction(x, tree=model)
    proba = _naive_bayes(x, leaf.stats, leaf.splitters)
    return leaf.prediction(x, tree=model) if proba is None else proba


def _naive_bayes(x: dict[str, float], observed: dict[bool, float], splitters: dict[str, Any]
                 ) -> dict[bool, float] | None:
    """river.tree.utils.do_naive_bayes_prediction with GaussianSplitter.cond_log_proba and Gaussian.log_pdf
    inlined; None if a splitter is not a Gaussian one."""
    total_weight = sum(observed.values())
    if not observed or total_weight == 0:
        return {}
    present = []
    for att_id, splitter in splitters.items():
        if att_id in x:
            if type(splitter) is not GaussianSplitter:
                return None
            present.append((splitter._att_dist_per_class, x[att_id]))
    log, half_log_tau, neg_inf = math.log, _HALF_LOG_TAU, _NEG_INF
    votes = {}
    for label, weight in observed.items():
        if not weight > 0:
            votes[label] = 0.0
            continue
        vote = log(weight / total_weight)
        for distributions, value in present:
            distribution = distributions.get(label)
            if distribution is None:
                continue
            var = distribution._var
            mean, ddof = var.mean, var.ddof
            n = mean.n
            if n > ddof:
                variance = var._S / (n - ddof)
                if variance > 0.0:
                    log_p = (value - mean._mean) ** 2 / (-2.0 * variance) - half_log_tau - 0.5 * log(variance)
                    if log_p > neg_inf:
                        vote += log_p
        votes[label] = vote
    max_ll = max(votes.values())
    lse = max_ll + log(sum(math.exp(log_proba - max_ll) for log_proba in votes.values()))
    return {label: math.exp(vote - lse) for label, vote in votes.items()}
