"""Three-level random-effects model (effects nested in clusters), as metafor's
``rma.mv(yi, V, random = ~ 1 | cluster/effect, method = "REML")``, fitted to the REML optimum.

The marginal covariance is M = V + sigma2_1 * G + sigma2_2 * I, where G marks pairs of effects in the
same cluster (level 3, between clusters) and I gives every effect its own level-2 deviation (within
clusters). V is the sampling covariance: diagonal vi, or a full matrix (the CHE working model).

REML is maximised by Newton steps on the observed information (Fisher scoring where that is not positive
definite), with step halving and an active set at the boundary sigma2 = 0, from several starting points;
the best log-likelihood wins. When V is block-diagonal by cluster (always, for the models the report
fits), so is M: every REML quantity then comes from M^-1's cluster blocks and p x p matrices (``_reml_blocks``),
about 20 times faster than k x k products for k = 400. Otherwise G = Z Z' (Z the cluster indicator) keeps
every trace to k x m products. This reaches the optimum that the oracle's
``three_level_refined`` section reports (metafor's default nlminb stops up to ~1e-4 short).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from metapsych.stats import distributions as dist
from metapsych.stats.aggregate import cluster_order

TESTS = ("z", "t")


@dataclass(frozen=True)
class MultilevelFit:
    """Result of ``fit_three_level``. ``sigma2`` is [between clusters, within clusters].

    ``I2_total``, ``I2_between``, ``I2_within`` split the variance as on the metafor website (percent).
    ``marginal`` is M (k x k) and ``x`` the model matrix, which the cluster-robust estimators reuse.
    """

    k: int
    p: int
    n_clusters: int
    test: str
    level: float
    converged: bool
    message: str | None
    beta: np.ndarray
    se: np.ndarray
    vb: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: float | None
    sigma2: np.ndarray
    Q: float
    Q_df: int
    Q_p: float
    I2_total: float
    I2_between: float
    I2_within: float
    pi_lower: float
    pi_upper: float
    loglik: float
    yi: np.ndarray
    x: np.ndarray
    marginal: np.ndarray
    cluster_codes: np.ndarray

    @property
    def estimate(self) -> float:
        """The intercept (the pooled effect of an intercept-only model)."""
        return float(self.beta[0])


def cluster_codes(cluster: Sequence[object]) -> np.ndarray:
    """Integer codes 0..n-1 of the clusters, in order of first appearance."""
    index = {c: i for i, c in enumerate(cluster_order(cluster))}
    return np.array([index[c] for c in cluster], dtype=int)


def compound_symmetric_v(vi: np.ndarray, cluster: Sequence[object], rho: float) -> np.ndarray:
    """Sampling covariance with correlation rho within clusters (clubSandwich impute_covariance_matrix)."""
    v = np.asarray(vi, dtype=float)
    codes = cluster_codes(cluster)
    same = codes[:, None] == codes[None, :]
    s = np.sqrt(v)
    out = np.where(same, rho * np.outer(s, s), 0.0)
    np.fill_diagonal(out, v)
    return out


def fit_three_level(
    yi: np.ndarray,
    V: np.ndarray,
    cluster: Sequence[object],
    X: np.ndarray | None = None,
    test: str = "z",
    level: float = 0.95,
    sigma2: Sequence[float] | None = None,
) -> MultilevelFit:
    """Fit the three-level model by REML. ``V``: vector of vi or a (k, k) sampling covariance matrix.

    ``test`` "z" (metafor's default) or "t" (t with k - p df). ``sigma2`` fixes the variance components.
    ValueError for inconsistent input.
    """
    y = np.asarray(yi, dtype=float).ravel()
    v = np.asarray(V, dtype=float)
    vmat = np.diag(v) if v.ndim == 1 else v
    k = y.size
    if vmat.shape != (k, k) or len(cluster) != k:
        raise ValueError("yi, V and cluster must describe the same k effects")
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {', '.join(TESTS)}")
    x = np.ones((k, 1)) if X is None else np.asarray(X, dtype=float)
    codes = cluster_codes(cluster)
    g = _design(codes, vmat)
    if k <= x.shape[1]:
        raise ValueError("the three-level model needs more effects than coefficients")
    if sigma2 is None:
        s2, converged, message = _maximise(y, vmat, x, g)
    else:
        s2, converged, message = np.asarray(sigma2, dtype=float), True, "sigma2 fixed by the caller"
    return _summarise(y, vmat, x, g, s2, codes, test, level, converged, message)


@dataclass(frozen=True)
class _Design:
    """Cluster structure: Z (k x m indicator of clusters), the rows of the clusters grouped by cluster size
    (for batched block inverses), the cluster order used to sum columns by cluster, and whether V is
    block-diagonal by cluster (then M^-1 is built block by block)."""

    z: np.ndarray
    codes: np.ndarray
    by_size: list[np.ndarray]
    order: np.ndarray
    starts: np.ndarray
    block_diagonal: bool

    def marginal(self, v: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """M = V + sigma2_1 Z Z' + sigma2_2 I."""
        return v + s2[0] * (self.z @ self.z.T) + s2[1] * np.eye(v.shape[0])

    def sum_columns_by_cluster(self, a: np.ndarray) -> np.ndarray:
        """a @ Z without the k x k x m product."""
        return np.add.reduceat(a[:, self.order], self.starts, axis=1)


def _design(codes: np.ndarray, v: np.ndarray) -> _Design:
    m = int(codes.max()) + 1
    z = (codes[:, None] == np.arange(m)[None, :]).astype(float)
    same = codes[:, None] == codes[None, :]
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=m)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = [np.flatnonzero(codes == j) for j in range(m)]
    by_size = [np.array([r for r in rows if r.size == n]) for n in np.unique(sizes)]
    return _Design(z, codes, by_size, order, starts, bool(np.all(v[~same] == 0)))


def _inverse_and_logdet(v: np.ndarray, d: _Design, s2: np.ndarray) -> tuple[np.ndarray, float]:
    """M^-1 and log det M for any V; LinAlgError if M is not positive definite."""
    chol = np.linalg.cholesky(d.marginal(v, s2))
    inv = np.linalg.inv(chol)
    return inv.T @ inv, 2.0 * float(np.sum(np.log(np.diag(chol))))


def _block_inverses(v: np.ndarray, d: _Design, s2: np.ndarray) -> tuple[list[np.ndarray], float]:
    """The cluster blocks of M^-1, stacked per cluster size as ``d.by_size``, and log det M (V block-diagonal
    by cluster); LinAlgError if M is not positive definite."""
    inverses, logdet = [], 0.0
    for rows in d.by_size:  # (number of clusters of this size, size)
        n = rows.shape[1]
        blocks = v[rows[:, :, None], rows[:, None, :]] + s2[0] + s2[1] * np.eye(n)
        chol = np.linalg.cholesky(blocks)
        inv = np.linalg.inv(chol)
        inverses.append(np.swapaxes(inv, 1, 2) @ inv)
        logdet += 2.0 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
    return inverses, logdet


def _times_blocks(d: _Design, inverses: list[np.ndarray], a: np.ndarray) -> np.ndarray:
    """M^-1 @ a for a (k, q) matrix, block by block."""
    out = np.empty_like(a)
    for rows, inv in zip(d.by_size, inverses):
        out[rows] = inv @ a[rows]
    return out


@dataclass(frozen=True)
class _Reml:
    """REML log-likelihood (metafor's constant included), score, and expected and observed information."""

    loglik: float
    score: np.ndarray
    info: np.ndarray
    observed: np.ndarray


def _reml(y: np.ndarray, v: np.ndarray, x: np.ndarray, d: _Design, s2: np.ndarray) -> _Reml:
    """The REML quantities at s2: block by block when V is block-diagonal by cluster and some cluster has
    several effects, else with k x k matrices (with one effect per cluster the two components are
    confounded, and the dense path's rounding steers the scoring to metafor's equal split)."""
    blocks = d.block_diagonal and d.z.shape[1] < d.z.shape[0]
    return _reml_blocks(y, v, x, d, s2) if blocks else _reml_dense(y, v, x, d, s2)


def _reml_dense(y: np.ndarray, v: np.ndarray, x: np.ndarray, d: _Design, s2: np.ndarray) -> _Reml:
    """With G1 = Z Z' and G2 = I every trace reduces to products with Z (no k x k x k products)."""
    minv, logdet_m = _inverse_and_logdet(v, d, s2)
    mx = minv @ x
    xmx = x.T @ mx
    p_mat = minv - mx @ np.linalg.solve(xmx, mx.T)
    u = p_mat @ y
    pz = d.sum_columns_by_cluster(minv) - mx @ np.linalg.solve(xmx, mx.T @ d.z)
    zpz = d.z.T @ pz
    zu = d.z.T @ u
    score = np.array([-0.5 * np.trace(zpz) + 0.5 * zu @ zu, -0.5 * np.trace(p_mat) + 0.5 * u @ u])
    i12 = 0.5 * float(np.sum(pz * pz))
    info = np.array([[0.5 * float(np.sum(zpz * zpz)), i12], [i12, 0.5 * float(np.sum(p_mat * p_mat))]])
    a = [d.z @ zu, u]
    observed = np.array([[a[i] @ p_mat @ a[j] for j in range(2)] for i in range(2)]) - info
    return _Reml(_reml_loglik(y, x, u, xmx, logdet_m), score, info, observed)


def _reml_blocks(y: np.ndarray, v: np.ndarray, x: np.ndarray, d: _Design, s2: np.ndarray) -> _Reml:
    """The REML quantities from the cluster blocks of W = M^-1 and p x p matrices, without k x k products.

    With H = W X and A = X'H, P = W - H A^-1 H'. Every trace is that of W's blocks minus a correction of
    rank p: with r = W 1 (row sums), D = Z'WZ = diag(cluster sums of r), C = Z'H and E = Z' diag(r) H,
      tr(P) = tr(W) - tr(A^-1 H'H),           tr(PP) = tr(W^2) - 2 tr(A^-1 H'WH) + tr((A^-1 H'H)^2),
      tr(Z'PZ) = tr(D) - tr(A^-1 C'C),        ||Z'PZ||^2 = ||D||^2 - 2 sum_c D_c (C A^-1 C')_cc + tr((A^-1 C'C)^2),
      ||PZ||^2 = r'r - 2 tr(A^-1 C'E) + tr(A^-1 C'C A^-1 H'H).
    """
    inverses, logdet_m = _block_inverses(v, d, s2)
    k, p = x.shape
    first = _times_blocks(d, inverses, np.column_stack([x, y, np.ones(k)]))
    h, r = first[:, :p], first[:, p + 1]
    a_mat = x.T @ h
    a_inv = np.linalg.inv(a_mat)
    u = first[:, p] - h @ (a_inv @ (h.T @ y))
    zt = d.z.T
    c, dsum, zu, e = zt @ h, zt @ r, zt @ u, zt @ (r[:, None] * h)
    hth, ctc = h.T @ h, c.T @ c
    a_hth, a_ctc = a_inv @ hth, a_inv @ ctc
    a1 = zu[d.codes]
    second = _times_blocks(d, inverses, np.column_stack([h, a1, u]))
    wh, wa = second[:, :p], second[:, p:]
    trace_w = sum(float(np.einsum("gii->", inv)) for inv in inverses)
    trace_w2 = sum(float(np.sum(inv * inv)) for inv in inverses)
    ss_p = trace_w2 - 2.0 * np.sum(a_inv * (h.T @ wh).T) + np.sum(a_hth * a_hth.T)
    ss_zpz = dsum @ dsum - 2.0 * dsum @ np.einsum("ij,ij->i", c @ a_inv, c) + np.sum(a_ctc * a_ctc.T)
    ss_pz = r @ r - 2.0 * np.sum((e @ a_inv) * c) + np.sum(a_ctc * a_hth.T)
    score = np.array([-0.5 * (dsum.sum() - np.trace(a_ctc)) + 0.5 * zu @ zu,
                      -0.5 * (trace_w - np.trace(a_hth)) + 0.5 * u @ u])
    info = 0.5 * np.array([[ss_zpz, ss_pz], [ss_pz, ss_p]])
    a = np.column_stack([a1, u])
    pa = wa - h @ (a_inv @ (h.T @ a))
    return _Reml(_reml_loglik(y, x, u, a_mat, logdet_m), score, info, a.T @ pa - info)


def _reml_loglik(y: np.ndarray, x: np.ndarray, u: np.ndarray, xmx: np.ndarray, logdet_m: float) -> float:
    """The restricted log-likelihood from log det M, X'M^-1X and u = P y (metafor's constant included)."""
    logdet = logdet_m + np.linalg.slogdet(xmx)[1] - np.linalg.slogdet(x.T @ x)[1]
    logdet += (x.shape[0] - x.shape[1]) * np.log(2.0 * np.pi)
    return float(-0.5 * (logdet + y @ u))


def _maximise(y, v, x, g) -> tuple[np.ndarray, bool, str | None]:
    """Best of scoring runs from several starts (the REML surface can have flat ridges).

    With a single cluster the between-cluster variance is confounded with the intercept; it is held at 0.
    """
    resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
    scale = max(float(np.var(resid)) - float(np.mean(np.diag(v))), 0.01 * float(np.mean(np.diag(v))), 1e-8)
    single = g.z.shape[1] == 1
    movable = np.array([not single, True])
    starts = [np.array([scale, scale]) / 2, np.array([scale, 0.0]), np.array([0.0, scale])]
    runs = [_scoring(y, v, x, g, s * movable, movable) for s in starts]
    ok = [r for r in runs if r[1]]
    if not ok:
        return runs[0][0], False, "REML did not converge for the three-level model"
    best = max(ok, key=lambda r: r[2])
    note = "a single cluster: the between-cluster variance is not identifiable and was set to 0" if single else None
    return best[0], True, note


def _scoring(
    y, v, x, g, s2: np.ndarray, movable: np.ndarray, max_iter: int = 500
) -> tuple[np.ndarray, bool, float]:
    """Newton / Fisher scoring with an active set at sigma2 = 0 and step halving; returns (sigma2, ok, loglik).

    A step is taken only if it does not lower the log-likelihood (halved up to 60 times); when no step
    helps, the log-likelihood is at its maximum to machine precision. Without this, scoring can cycle
    between two points near a flat optimum.
    """
    cur = _reml(y, v, x, g, s2)
    for _ in range(max_iter):
        free = ((s2 > 0) | (cur.score > 0)) & movable
        step = np.zeros(2)
        if np.any(free):
            step[free] = _direction(cur, free)
        moved = _halve(y, v, x, g, s2, step, cur.loglik)
        if moved is None:
            return s2, True, cur.loglik
        new, nxt = moved
        done = np.all(np.abs(new - s2) <= 1e-13 * np.maximum(1.0, s2))
        s2, cur = new, nxt
        if done:
            return s2, True, cur.loglik
    return s2, False, cur.loglik


def _direction(cur: _Reml, free: np.ndarray) -> np.ndarray:
    """Newton step (observed information) where it is positive definite, else the Fisher scoring step.

    Least squares: with one effect per cluster the two components are confounded (singular information).
    """
    sub = np.ix_(free, free)
    observed = cur.observed[sub]
    if np.all(np.linalg.eigvalsh((observed + observed.T) / 2) > 0):
        return np.linalg.solve(observed, cur.score[free])
    return np.linalg.lstsq(cur.info[sub], cur.score[free], rcond=None)[0]


def _halve(y, v, x, g, s2, step, ll) -> tuple[np.ndarray, _Reml] | None:
    """Take the scoring step, halving it until the log-likelihood does not fall; None if nothing works."""
    factor = 1.0
    for _ in range(60):
        new = np.maximum(s2 + factor * step, 0.0)
        if np.array_equal(new, s2):
            return None
        try:
            nxt = _reml(y, v, x, g, new)
        except np.linalg.LinAlgError:
            nxt = None
        if nxt is not None and nxt.loglik >= ll:
            return new, nxt
        factor /= 2.0
    return None


def _summarise(y, v, x, g, s2, codes, test, level, converged, message) -> MultilevelFit:
    k, p = x.shape
    m = g.marginal(v, s2)
    weigh = _weigher(v, g, s2)
    wx = weigh(x)
    vb = np.linalg.inv(x.T @ wx)
    beta = vb @ (wx.T @ y)
    se = np.sqrt(np.diag(vb))
    stat = beta / se
    alpha = dist.alpha_from_level(level)
    if test == "z":
        df, pval, crit = None, dist.norm_two_sided_p(stat), dist.norm_crit(alpha)
    else:
        df = float(k - p)
        pval, crit = dist.t_two_sided_p(stat, df), float(dist.t_crit(alpha, df))
    q, q_df = _q_statistic(y, x, _weigher(v, g, np.zeros(2)))
    i2 = _i2_split(np.diag(v), x, s2)
    half = crit * np.sqrt(se[0] ** 2 + np.sum(s2))
    return MultilevelFit(
        k=k, p=p, n_clusters=int(codes.max()) + 1, test=test, level=level, converged=converged,
        message=message, beta=beta, se=se, vb=vb, statistic=stat, p_value=np.asarray(pval),
        ci_lower=beta - crit * se, ci_upper=beta + crit * se, df=df, sigma2=np.asarray(s2, dtype=float),
        Q=q, Q_df=q_df, Q_p=float(dist.chi2_sf(q, q_df)), I2_total=i2[0], I2_between=i2[1],
        I2_within=i2[2], pi_lower=float(beta[0] - half), pi_upper=float(beta[0] + half),
        loglik=_reml(y, v, x, g, s2).loglik, yi=y, x=x, marginal=m, cluster_codes=codes,
    )


def _weigher(v: np.ndarray, d: _Design, s2: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """a -> M^-1 a for M = V + sigma2_1 Z Z' + sigma2_2 I: block by block when V is block-diagonal by cluster."""
    if d.block_diagonal:
        inverses = _block_inverses(v, d, s2)[0]
        return lambda a: _times_blocks(d, inverses, a.reshape(a.shape[0], -1)).reshape(a.shape)
    minv = _inverse_and_logdet(v, d, s2)[0]
    return lambda a: minv @ a


def _q_statistic(y: np.ndarray, x: np.ndarray, weigh: Callable[[np.ndarray], np.ndarray]) -> tuple[float, int]:
    """metafor's QE for rma.mv: residual sum of squares of the GLS fit with weights V^-1 (``weigh``)."""
    wx = weigh(x)
    b = np.linalg.solve(x.T @ wx, wx.T @ y)
    r = y - x @ b
    return float(r @ weigh(r)), x.shape[0] - x.shape[1]


def _i2_split(vi: np.ndarray, x: np.ndarray, s2: np.ndarray) -> tuple[float, float, float]:
    """I2 per level: typical vi = (k - p) / tr(P) with W = diag(1/vi); I2_j = sigma2_j / (sum + typical)."""
    w = np.diag(1.0 / vi)
    wx = w @ x
    p_mat = w - wx @ np.linalg.solve(x.T @ wx, wx.T)
    typical = (x.shape[0] - x.shape[1]) / np.trace(p_mat)
    total = float(np.sum(s2)) + typical
    return 100 * float(np.sum(s2)) / total, 100 * float(s2[0]) / total, 100 * float(s2[1]) / total
