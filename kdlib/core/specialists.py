"""Specialists with a dustbin class, and their combination with the generalist (Section 5).

The paper's Section 5 (JFT, 15,000 classes) adds to a generalist model "specialist" models,
each for "a very confusable subset of the classes". In the order of its subsections:

* 5.3, which classes: "we apply a clustering algorithm to the covariance matrix of the
  predictions of our generalist model [...] We applied an on-line version of the K-means
  algorithm to the columns of the covariance matrix" (``confusable_groups``);
* 5.2, the specialist: "all of the classes it does not care about" are combined "into a
  single dustbin class" (``dustbin_labels``); it "is initialized with the weights of the
  generalist model" (``specialist_from_generalist``) and trained "with half its examples
  coming from its special subset and half sampled at random from the remainder of the
  training set" (``enriched_indices``); then "we can correct for the biased training set by
  incrementing the logit of the dustbin class by the log of the proportion by which the
  specialist class is oversampled" (``dustbin_correction``);
* 5.4, inference: the n most probable classes of the generalist (n = 1 in the paper), the
  specialists whose classes meet them (the active set A_k, ``active_specialists``), and the
  full distribution q = softmax(z) minimising
  KL(p^g, q) + sum_{m in A_k} KL(p^m, q) (Eq. 5), where for specialist m "we sum all of the
  probabilities that the full q distribution assigns to all the classes in m's dustbin"
  (``combination_objective``), which the paper found "by gradient descent" on z; we iterate
  its fixed point (``combine_specialists``).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Sequence

import torch

from .data import NUM_CLASSES, _check_classes
from .models import MLP


# ----------------------------------------------------------------------------- 5.3 groups
def prediction_covariance(logits, temperature: float = 1.0) -> torch.Tensor:
    """Covariance (C, C) over examples of the predicted distribution softmax(z / T), float64."""
    p = torch.softmax(torch.as_tensor(logits, dtype=torch.float64) / temperature, dim=-1)
    centred = p - p.mean(0)
    return centred.T @ centred / max(len(p) - 1, 1)


def kmeans(points: torch.Tensor, k: int, seed: int, restarts: int = 10,
           iterations: int = 100) -> torch.Tensor:
    """Cluster index (n,) of each row of ``points`` (n, d): Lloyd's K-means, k-means++ starts.

    The best of ``restarts`` runs (least within-cluster sum of squares), every start drawn
    from ``torch.Generator().manual_seed(seed)``; the paper used an on-line K-means.
    """
    x = torch.as_tensor(points, dtype=torch.float64)
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be in 1..{len(x)}, got {k}")
    g = torch.Generator().manual_seed(int(seed))
    best, best_cost = None, math.inf
    for _ in range(restarts):
        centres = x[torch.randint(len(x), (1,), generator=g)]
        while len(centres) < k:  # k-means++: next centre with probability ~ squared distance
            d2 = torch.cdist(x, centres).min(1).values ** 2
            pick = torch.multinomial(d2 + 1e-300, 1, generator=g) if d2.sum() > 0 else \
                torch.randint(len(x), (1,), generator=g)
            centres = torch.cat([centres, x[pick]])
        for _ in range(iterations):
            assign = torch.cdist(x, centres).argmin(1)
            new = torch.stack([x[assign == j].mean(0) if (assign == j).any() else centres[j]
                               for j in range(k)])
            if torch.equal(new, centres):
                break
            centres = new
        cost = float(((x - centres[assign]) ** 2).sum())
        if cost < best_cost - 1e-12:
            best, best_cost = assign, cost
    return best


def confusable_groups(logits, k: int, temperature: float = 1.0, seed: int = 0) -> list[tuple]:
    """K-means (k clusters) on the columns of the covariance of the predictions (Section 5.3).

    Returns the k groups of classes as sorted tuples, ordered by their smallest class.
    """
    cov = prediction_covariance(logits, temperature)
    assign = kmeans(cov.T, k, seed)
    groups = [tuple(int(c) for c in torch.nonzero(assign == j).flatten()) for j in range(k)]
    return sorted((g for g in groups if g), key=lambda g: g[0])


# ----------------------------------------------------------------------------- 5.2 training
def dustbin_labels(labels: torch.Tensor, classes) -> torch.Tensor:
    """Labels of a specialist: special class ``classes[i]`` -> i, every other class -> len(classes)."""
    classes = _check_classes(classes)
    table = torch.full((NUM_CLASSES,), len(classes), dtype=torch.long, device=labels.device)
    table[torch.tensor(classes, device=labels.device)] = torch.arange(len(classes), device=labels.device)
    return table[labels]


def enriched_indices(labels: torch.Tensor, classes, seed: int) -> torch.Tensor:
    """Sorted indices: every example of ``classes`` and as many others drawn without replacement
    (all the others if there are fewer), from ``torch.Generator().manual_seed(seed)``."""
    labels = torch.as_tensor(labels).cpu()
    special = torch.isin(labels, torch.tensor(_check_classes(classes)))
    inside, outside = torch.nonzero(special).flatten(), torch.nonzero(~special).flatten()
    g = torch.Generator().manual_seed(int(seed))
    drawn = outside[torch.randperm(len(outside), generator=g)[:len(inside)]]
    return torch.sort(torch.cat([inside, drawn])).values


def dustbin_correction(special_share_true: float, special_share_train: float) -> float:
    """What to add to the dustbin logit after training on an enriched set.

    The special classes are a share s of the natural data and s' of the enriched training
    set, so their odds against the dustbin were oversampled by (s' / (1 - s')) / (s / (1 - s));
    the log of that ratio, added to the dustbin logit, restores the natural prior odds (the
    paper's "log of the proportion by which the specialist class is oversampled", read as
    odds so that it is exact for any s).
    """
    for v in (special_share_true, special_share_train):
        if not 0 < v < 1:
            raise ValueError(f"class shares must be in (0, 1), got {v}")
    odds = lambda s: s / (1 - s)  # noqa: E731
    return math.log(odds(special_share_train) / odds(special_share_true))


@torch.no_grad()
def specialist_from_generalist(generalist: MLP, classes) -> MLP:
    """A specialist of the generalist's shape, initialised from its weights (Section 5.2).

    Hidden layers are copied; the output layer keeps the special classes' units and adds a
    dustbin unit whose weights are the mean of the other classes' and whose bias is their
    mean bias + log(number of others) (ours: the log-sum-exp of the other logits when they
    are equal, so the specialist starts as the generalist with the others merged).
    """
    if generalist.num_models != 1:
        raise ValueError("the generalist must be a single model (num_models == 1)")
    classes = _check_classes(classes)
    num_out = generalist.weights[-1].shape[2]
    others = [c for c in range(num_out) if c not in classes]
    if not others:
        raise ValueError("a specialist needs at least one class in its dustbin")
    spec = MLP(generalist.widths, input_dropout=generalist.input_dropout,
               hidden_dropout=generalist.hidden_dropout, max_norm=generalist.max_norm,
               in_features=generalist.weights[0].shape[1], out_features=len(classes) + 1,
               seeds=[0]).to(generalist.device)
    for dst, src in zip(list(spec.weights)[:-1] + list(spec.biases)[:-1],
                        list(generalist.weights)[:-1] + list(generalist.biases)[:-1]):
        dst.copy_(src)
    w, b = generalist.weights[-1], generalist.biases[-1]
    spec.weights[-1].copy_(torch.cat([w[..., classes], w[..., others].mean(-1, keepdim=True)], -1))
    spec.biases[-1].copy_(torch.cat([b[..., classes], b[..., others].mean(-1, keepdim=True)
                                     + math.log(len(others))], -1))
    return spec


# ----------------------------------------------------------------------------- 5.4 inference
def group_matrix(groups: Sequence[Sequence[int]], num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(M, C) bool: does specialist m have class c among its special classes?"""
    out = torch.zeros(len(groups), num_classes, dtype=torch.bool)
    for m, classes in enumerate(groups):
        out[m, _check_classes(classes)] = True
    if (out.sum(1) == num_classes).any():
        raise ValueError("a specialist needs at least one class in its dustbin")
    return out


def active_specialists(generalist_probs, groups, top_n: int = 1) -> torch.Tensor:
    """(N, M) bool: specialist m is active for case i when its classes meet the generalist's
    ``top_n`` most probable classes (the active set A_k of Section 5.4)."""
    p = torch.as_tensor(generalist_probs)
    top = p.topk(top_n, dim=-1).indices  # (N, n)
    member = group_matrix(groups, p.shape[-1]).to(p.device)  # (M, C)
    return member[:, top].any(-1).T


def coverage(labels, groups) -> torch.Tensor:
    """How many specialists have each example's true class among their classes (N,)."""
    return group_matrix(groups).sum(0)[torch.as_tensor(labels).cpu()]


def _kl(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    return (torch.xlogy(p, p) - p * log_q).sum(-1)


def combination_objective(z: torch.Tensor, generalist_probs: torch.Tensor,
                          specialist_probs: Sequence[torch.Tensor], groups, active) -> torch.Tensor:
    """Eq. 5 per case (N,): KL(p^g, q) + sum over active m of KL(p^m, q^m), q = softmax(z).

    ``specialist_probs[m]`` (N, |S_m| + 1) ends with the dustbin; q^m is q on S_m followed by
    the sum of q over the other classes.
    """
    log_q = torch.log_softmax(z, dim=-1)
    total = _kl(generalist_probs, log_q)
    member = group_matrix(groups, z.shape[-1])
    for m, p_m in enumerate(specialist_probs):
        inside, outside = member[m].to(z.device), ~member[m].to(z.device)
        log_qm = torch.cat([log_q[:, inside], torch.logsumexp(log_q[:, outside], -1, keepdim=True)], -1)
        total = total + active[:, m].to(z.dtype) * _kl(p_m, log_qm)
    return total


def combine_specialists(generalist_logits, specialist_logits: Sequence, groups, top_n: int = 1,
                        max_iter: int = 100_000, tol: float = 1e-12) -> torch.Tensor:
    """The distribution q (N, C) of Section 5.4 for every case, float64.

    ``specialist_logits[m]`` (N, |S_m| + 1) are specialist m's logits (dustbin last, its
    correction already added). The gradient of Eq. 5 in z is (1 + |A_k|) q - p^g - sum_m t^m
    (``combination_objective``), so its minimum is a fixed point of
    q <- (p^g + sum_{m in A_k} t^m(q)) / (1 + |A_k|), t^m_i = p^m_i on S_m and
    p^m_dustbin q_i / sum_{j not in S_m} q_j off it: an EM step, which never increases the
    objective. Iterated from q = p^g, batched, each case until its q moves less than ``tol``
    (the paper used gradient descent on z; same objective, a faster route on a CPU). Cases
    without an active specialist keep q = p^g.
    """
    z_g = torch.as_tensor(generalist_logits, dtype=torch.float64)
    p_g = torch.softmax(z_g, -1)
    p_m = [torch.softmax(torch.as_tensor(s, dtype=torch.float64), -1) for s in specialist_logits]
    if len(p_m) != len(groups):
        raise ValueError(f"{len(p_m)} specialists' logits for {len(groups)} groups")
    active = active_specialists(p_g, groups, top_n)
    rows = torch.nonzero(active.any(1)).flatten()
    q = p_g.clone()
    if len(rows) == 0:
        return q
    member = group_matrix(groups, z_g.shape[-1]).to(z_g.device)
    outside = (~member).to(torch.float64)                              # (M, C)
    act = active[rows].to(torch.float64)                               # (R, M)
    fixed = p_g[rows].clone()                                          # p^g + the S_m parts of t^m
    for m, p in enumerate(p_m):
        fixed[:, member[m]] += act[:, m:m + 1] * p[rows][:, :-1]
    dustbin = torch.stack([p[rows][:, -1] for p in p_m], 1) * act      # (R, M)
    norm = 1.0 + act.sum(1, keepdim=True)
    x = p_g[rows].clone()
    moving = torch.arange(len(rows))                                   # cases not converged yet
    with _one_thread():  # thousands of tiny steps: thread hand-offs would cost more than the math
        _iterate(x, moving, fixed, dustbin, outside, norm, max_iter, tol)
    q[rows] = x
    return q


@contextmanager
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _iterate(x, moving, fixed, dustbin, outside, norm, max_iter, tol):
    """``combine_specialists``' fixed-point steps on ``x`` (in place), each case (``moving``:
    row indices) until it stops moving."""
    for _ in range(max_iter):
        xm = x[moving]
        per_mass = dustbin[moving] / (xm @ outside.T).clamp_min(1e-300)  # p^m_dust / Q_m
        new = (fixed[moving] + xm * (per_mass @ outside)) / norm[moving]
        x[moving] = new
        moving = moving[(new - xm).abs().amax(1) >= tol]
        if len(moving) == 0:
            break
    else:
        raise RuntimeError(f"the specialist combination did not converge in {max_iter} steps")
