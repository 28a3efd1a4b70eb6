"""The frequentist contrast-based network model: netmeta's graph-theoretical fit, its DL-type tau2, REML.

For a given between-study variance tau2 the model is fitted as netmeta's ``nma_ruecker`` does: every
pairwise contrast row gets the variance vi + tau2; a multi-arm study's rows get netmeta's ``multiarm``
adjusted weights (from the pseudoinverse of its resistance matrix), which makes the weighted
least-squares fit on all rows equal to the generalised least-squares fit with the shared-arm
covariance (Gleser & Olkin) and a between-study covariance of tau2/2 between contrasts of one study.
The treatment effects theta come from the pseudoinverse of the weighted Laplacian L = B'WB.

REML maximises the restricted likelihood of the same model written as metafor's
``rma.mv(yi, V, mods = X, random = ~ comp | study, rho = 1/2)`` on each study's contrasts against one
baseline arm (the reference if the study has it, else its first arm); ``gls_effects`` gives that model's
estimates at a tau2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metapsych.stats.network_data import NetworkData, Study
from metapsych.stats.roots import uniroot


@dataclass(frozen=True)
class GraphFit:
    """Weighted least-squares network fit for one tau2 (all arrays over rows or treatments)."""

    tau2: float
    weights: np.ndarray
    theta: np.ndarray
    lplus: np.ndarray
    fitted: np.ndarray
    Q: float
    df: int
    incidence: np.ndarray

    def contrast(self, i: int, j: int) -> tuple[float, float]:
        """Estimate and variance of treatment i versus treatment j."""
        lp = self.lplus
        return float(self.theta[i] - self.theta[j]), float(lp[i, i] + lp[j, j] - 2.0 * lp[i, j])


def multiarm_weights(resistance: np.ndarray) -> np.ndarray:
    """netmeta's ``multiarm``: adjusted pairwise weights of one study from its (m x m) contrast variances.

    Lt = -1/2 P R P (P the centring matrix) is the pseudoinverse of the study's Laplacian; the
    weights are the negated off-diagonal entries of that Laplacian. Tiny negative weights (under 0.1%
    of the total) are set to zero, as netmeta does.
    """
    m = resistance.shape[0]
    centre = np.eye(m) - 1.0 / m
    lt = -0.5 * centre @ resistance @ centre
    lap = np.linalg.inv(lt + 1.0 / m) - 1.0 / m
    w = -lap
    np.fill_diagonal(w, 0.0)
    total = np.sum(np.abs(w[np.tril_indices(m, -1)]))
    w[(w < 0) & (np.abs(w) / total < 0.001)] = 0.0
    return w


def row_weights(data: NetworkData, tau2: float) -> np.ndarray:
    """Adjusted weight of every row for variance vi + tau2."""
    w = np.empty(data.yi.size)
    for s in data.studies:
        if s.n_arms == 2:
            w[s.rows[0]] = 1.0 / (data.vi[s.rows[0]] + tau2)
            continue
        local = {t: i for i, t in enumerate(s.arms)}
        res = np.zeros((s.n_arms, s.n_arms))
        for r in s.rows:
            i, j = local[int(data.treat1[r])], local[int(data.treat2[r])]
            res[i, j] = res[j, i] = data.vi[r] + tau2
        wm = multiarm_weights(res)
        for r in s.rows:
            w[r] = wm[local[int(data.treat1[r])], local[int(data.treat2[r])]]
    return w


def incidence_matrix(data: NetworkData) -> np.ndarray:
    """Edge-vertex incidence B (rows x treatments): +1 for treat1, -1 for treat2."""
    b = np.zeros((data.yi.size, data.n_treatments))
    rows = np.arange(data.yi.size)
    b[rows, data.treat1] = 1.0
    b[rows, data.treat2] = -1.0
    return b


def laplacian_pinv(lap: np.ndarray) -> np.ndarray:
    """Moore-Penrose pseudoinverse of the Laplacian of a connected graph."""
    n = lap.shape[0]
    return np.linalg.inv(lap + 1.0 / n) - 1.0 / n


def degrees_of_freedom(data: NetworkData) -> int:
    """sum over studies of (arms - 1), minus (treatments - 1)."""
    return sum(s.n_arms - 1 for s in data.studies) - (data.n_treatments - 1)


def graph_fit(data: NetworkData, tau2: float = 0.0) -> GraphFit:
    """netmeta's ``nma_ruecker`` for a connected network at a given tau2."""
    b = incidence_matrix(data)
    w = row_weights(data, tau2)
    lplus = laplacian_pinv(b.T @ (w[:, None] * b))
    theta = lplus @ (b.T @ (w * data.yi))
    theta = theta - theta[0]
    fitted = b @ theta
    q = float(np.sum(w * (data.yi - fitted) ** 2))
    return GraphFit(tau2=tau2, weights=w, theta=theta, lplus=lplus, fitted=fitted, Q=q,
                    df=degrees_of_freedom(data), incidence=b)


def tau2_dl(data: NetworkData, fit: GraphFit | None = None) -> float:
    """netmeta's DL-type (generalised method of moments) tau2 from the common-effect fit.

    tau2 = max(0, (Q - df) / tr((I - H) K W)), H = B L+ B'W the hat matrix and K the between-study
    covariance pattern of the rows (1 on the diagonal, +-1/2 for contrasts of one study sharing an arm).
    """
    fit = fit or graph_fit(data, 0.0)
    if fit.df <= 0:
        return 0.0
    denom = dl_denominator(data, fit)
    return max(0.0, (fit.Q - fit.df) / denom)


def dl_denominator(data: NetworkData, fit: GraphFit) -> float:
    """tr((I - H) K W): the expected excess of Q per unit of tau2 (the DL-type denominator).

    With H = B L+ B'W, tr(H K W) = tr(L+ B'(W K W)B), and W K W is block-diagonal by study.
    """
    b, w = fit.incidence, fit.weights
    total = np.zeros((data.n_treatments, data.n_treatments))
    for s in data.studies:
        rows = np.array(s.rows)
        bs = b[rows]
        ks = (bs @ bs.T) / 2.0
        total += bs.T @ (w[rows, None] * ks * w[None, rows]) @ bs
    return float(np.sum(w) - np.sum(fit.lplus * total))


@dataclass(frozen=True)
class BaselineModel:
    """Each study's contrasts against its baseline arm: y, X and the blocks of V, grouped by block size.

    ``groups`` holds, per block size m, the row indices (nb, m) and the sampling covariance blocks
    (nb, m, m); tau2 adds tau2 (I + J)/2 to every block. Working block by block keeps every step O(k).
    """

    y: np.ndarray
    x: np.ndarray
    groups: tuple[tuple[np.ndarray, np.ndarray], ...]


def baseline_model(data: NetworkData, reference: int) -> BaselineModel:
    """Contrasts a - b of every study against its baseline b (the reference if present, else first arm).

    Cov(a - b, c - b) = (vi(a,b) + vi(c,b) - vi(a,c)) / 2 (the shared arm's variance); tau2 enters as
    tau2 on the diagonal and tau2/2 off it within a study. X has a column per non-reference treatment.
    """
    ys: list[float] = []
    xrows: list[np.ndarray] = []
    by_size: dict[int, tuple[list[list[int]], list[np.ndarray]]] = {}
    for s in data.studies:
        y_s, v_s, arms = study_baseline(data, s, reference)
        idx, blocks = by_size.setdefault(len(y_s), ([], []))
        idx.append(list(range(len(ys), len(ys) + len(y_s))))
        blocks.append(v_s)
        ys.extend(y_s)
        for a, base in arms:
            row = np.zeros(data.n_treatments)
            row[a], row[base] = 1.0, -1.0
            xrows.append(np.delete(row, reference))
    groups = tuple((np.array(idx), np.array(blocks)) for _, (idx, blocks) in sorted(by_size.items()))
    return BaselineModel(y=np.array(ys), x=np.array(xrows), groups=groups)


def study_baseline(data: NetworkData, s: Study, reference: int, sorted_arms: bool = False
                   ) -> tuple[list[float], np.ndarray, list[tuple[int, int]]]:
    """A study's contrasts of every arm against its baseline arm, with their covariance (the shared arm's
    variance, solved from the pairwise variances: cov(a-base, c-base) = (v_ab + v_cb - v_ac) / 2).

    The baseline is the reference when the study has it, else its first arm (as rma.mv's data are given) or,
    with ``sorted_arms``, its lowest-numbered arm with the others in order (as netmeta's nma.krahn).
    """
    yv: dict[tuple[int, int], tuple[float, float]] = {}
    for r in s.rows:
        a, b = int(data.treat1[r]), int(data.treat2[r])
        yv[(a, b)] = (float(data.yi[r]), float(data.vi[r]))
        yv[(b, a)] = (-float(data.yi[r]), float(data.vi[r]))
    arms = sorted(s.arms) if sorted_arms else list(s.arms)
    base = reference if reference in arms else arms[0]
    others = [t for t in arms if t != base]
    v = np.array([[yv[(a, base)][1] if a == c else (yv[(a, base)][1] + yv[(c, base)][1] - yv[(a, c)][1]) / 2.0
                   for c in others] for a in others]).reshape(len(others), len(others))
    return [yv[(a, base)][0] for a in others], v, [(a, base) for a in others]


def gls_effects(data: NetworkData, reference: int, tau2: float) -> np.ndarray:
    """rma.mv's estimates at tau2: every treatment versus the reference (0 for the reference), by GLS on each
    study's contrasts against its baseline arm. Equal to the graph fit's unless a multi-arm study's
    contrasts are inconsistent (then rma.mv uses only those against the baseline)."""
    model = baseline_model(data, reference)
    p = model.x.shape[1]
    xtvx, xtvy = np.zeros((p, p)), np.zeros(p)
    for idx, blocks in model.groups:
        inv = np.linalg.inv(blocks + tau2 * (np.eye(idx.shape[1]) + 1.0) / 2.0)
        xs = model.x[idx]
        xtvx += np.einsum("bip,bij,bjq->pq", xs, inv, xs)
        xtvy += np.einsum("bip,bij,bj->p", xs, inv, model.y[idx])
    return np.insert(np.linalg.solve(xtvx, xtvy), reference, 0.0)


@dataclass(frozen=True)
class _RemlParts:
    """Pieces of the REML likelihood and score at one tau2."""

    logdet: float
    rss: float
    tr_pk: float
    py_k_py: float


def _reml_parts(model: BaselineModel, tau2: float) -> _RemlParts:
    """log|V| + log|X'V^-1X|, y'Py, tr(PK) and y'PKPy, with P the REML projection, block by block."""
    x, y = model.x, model.y
    vinv_x = np.empty_like(x)
    vinv_y = np.empty_like(y)
    logdet_v = tr_vk = 0.0
    inverses = []
    for idx, blocks in model.groups:
        m = idx.shape[1]
        kpat = (np.eye(m) + 1.0) / 2.0
        inv = np.linalg.inv(blocks + tau2 * kpat)
        logdet_v += float(np.sum(np.linalg.slogdet(blocks + tau2 * kpat)[1]))
        tr_vk += float(np.sum(inv * kpat))
        vinv_x[idx] = np.einsum("bij,bjp->bip", inv, x[idx])
        vinv_y[idx] = np.einsum("bij,bj->bi", inv, y[idx])
        inverses.append((idx, inv, kpat))
    xtvx = x.T @ vinv_x
    beta = np.linalg.solve(xtvx, x.T @ vinv_y)
    py = vinv_y - vinv_x @ beta
    middle = np.zeros_like(xtvx)
    py_k_py = 0.0
    for idx, _, kpat in inverses:
        a = vinv_x[idx]
        middle += np.einsum("bip,ij,bjq->pq", a, kpat, a)
        py_k_py += float(np.einsum("bi,ij,bj->", py[idx], kpat, py[idx]))
    tr_pk = tr_vk - float(np.sum(np.linalg.inv(xtvx) * middle))
    return _RemlParts(logdet=logdet_v + np.linalg.slogdet(xtvx)[1], rss=float(y @ py), tr_pk=tr_pk,
                      py_k_py=py_k_py)


def reml_score(model: BaselineModel, tau2: float) -> float:
    """Derivative of the REML log-likelihood with respect to tau2: (y'PKPy - tr(PK)) / 2."""
    parts = _reml_parts(model, tau2)
    return 0.5 * (parts.py_k_py - parts.tr_pk)


def reml_loglik(model: BaselineModel, tau2: float) -> float:
    """REML log-likelihood as metafor's rma.mv reports it (with the 1/2 log|X'X| term)."""
    parts = _reml_parts(model, tau2)
    n, p = model.x.shape
    xtx = np.linalg.slogdet(model.x.T @ model.x)[1]
    return float(-0.5 * (n - p) * np.log(2.0 * np.pi) + 0.5 * xtx - 0.5 * parts.logdet - 0.5 * parts.rss)


def tau2_reml(data: NetworkData, reference: int, start: float | None = None) -> float:
    """REML tau2: the root of the score on [0, inf), or 0 when the score is negative at 0."""
    model = baseline_model(data, reference)
    if model.y.size <= model.x.shape[1] or reml_score(model, 0.0) <= 0.0:
        return 0.0
    upper = max(start or 0.0, 0.01)
    while reml_score(model, upper) > 0.0:
        upper *= 4.0
        if upper > 1e8:
            raise ArithmeticError("REML tau2 diverges")
    return uniroot(lambda t: reml_score(model, t), 0.0, upper, tol=1e-15)
