"""Models with as many coefficients as studies, and R^2 where the model without moderators does not
converge: as metafor 3.8-1 handles them (found by comparing random meta-regressions with metafor, helper H22).

R: ``y``, ``v``, ``x1``, ``g`` as below; ``r <- rma(y, v, mods = ~ x1 + g, method = "EE")`` and
``format(c(r$QM, r$QMp, r$beta, r$se), digits = 17)``; ``rma(..., method = "DL")`` stops with "Number of
parameters to be estimated is larger than the number of observations." The R^2 case: the 15 rows below with
``rma(yi, vi, mods = ~ x1, method = "EB", control = list(threshold = 1e-10))`` give tau2 0 and R2 NA, because
the model without moderators does not converge with full steps (metafor does not retry it).
"""

from __future__ import annotations

import numpy as np
import pytest

from metapsych.stats.rma import fit

Y = np.array([0.63765301934522, 0.2713732625555798, 0.3996307587879474, 0.7224384053381842, 0.21273462172606947])
V = np.array([0.025359903031058395, 0.023888722405205162, 0.040233450312210386, 0.0939203570648454,
              0.0001611132517812734])
X = np.column_stack([np.ones(5), [0.447, -0.245, 0.619, 0.52, -0.461], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0],
                     [0, 0, 0, 1, 1]])


def test_a_saturated_common_effect_model_is_fitted_as_metafor_fits_it() -> None:
    """It raised ZeroDivisionError in the adjusted R^2 (k - p = 0)."""
    f = fit(Y, V, X, estimator="EE")
    assert f.QM == pytest.approx(10.7624089895931724925, rel=1e-10)
    assert f.QM_p == pytest.approx(0.0293680590243520848, rel=1e-8)
    assert np.allclose(f.beta, [0.4054026714608063853, 0.5195757223364702027, -0.0067333569327713838,
                                -0.3273892847991521915, 0.0468563582624087968], rtol=1e-9)
    assert np.allclose(f.se, [0.2118807464957698505, 0.3126677155921091522, 0.3099401506832591968,
                              0.2616973781617252803, 0.3253048966073344705], rtol=1e-9)
    assert f.Q == 0 and f.Q_p == 1 and np.isnan(f.R2)


@pytest.mark.parametrize("estimator", ["DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ"])
def test_a_saturated_random_effects_model_stops_as_metafor_does(estimator: str) -> None:
    """DL, HS and GENQ gave tau^2 = 0 and R^2 = 100; the others a ZeroDivisionError or a uniroot error."""
    with pytest.raises(ValueError, match="Number of parameters to be estimated is larger than the number of obs"):
        fit(Y, V, X, estimator=estimator)
    assert fit(Y[:1], V[:1]).estimate == Y[0]  # k = 1 stays the one study's estimate


YI = np.array([0.69963443520212576, -1.6000728686046823, 0.29770476650237543, 1.4056229076778415,
               2.7859509361022123, 3.2210088212232888, 0.14498584428694705, 1.0953017291516949,
               0.26478070630260964, 0.18539668383744923, 1.0712472712334984, 1.0771036822331759,
               0.033257342234964488, 0.20262014149110619, -1.0051750014291727])
VI = np.array([0.1891488901373026, 86.251183553624614, 3.4159215230269648, 6.5484888030812209, 21.309550812132713,
               11.852962301592052, 37.517332539137236, 0.028168487160353889, 0.012330213277193124,
               0.70450974347837469, 0.46159787790673906, 9.3809424472160128, 0.071817560156410595,
               18.054806264788542, 4.3335070389105264])
X1 = np.array([-1.309, -1.17, -0.198, 0.349, 0.062, -1.061, 0.029, 0.324, -1.445, 0.905, 0.761, 0.494, -1.798,
               -0.027, -0.567])


def test_r2_is_missing_where_the_model_without_moderators_needs_step_halving() -> None:
    """metapsych retried the reduced model with half steps and reported R^2 = 99.99999999999999."""
    f = fit(YI, VI, np.column_stack([np.ones(15), X1]), estimator="EB")
    assert f.converged and f.tau2 == 0 and f.R2 is None


def test_a_model_matrix_metafor_calls_rank_deficient_is_refused() -> None:
    """metafor also stops when an eigenvalue of X'X is at or below evtol = 1e-7 (absolute): R 4.2,
    ``set.seed(1); yi <- rnorm(10, .3, .3); vi <- runif(10, .02, .2); x <- rnorm(10) * 1e-4;
    rma(yi, vi, mods = ~ x)`` gives "Model matrix not of full rank. Cannot fit model." (eigenvalues 10 and
    6.99e-8); metapsych returned coefficients of no meaning."""
    yi = [0.112063856777300269, 0.355092997266624688, 0.049311416276985875, 0.778584240641337466,
          0.398852331544608141, 0.053859484764595428, 0.446228715728545555, 0.521497411538765165,
          0.472734405496047672, 0.208383483853093188]
    vi = [0.188246941599063577, 0.058185653830878439, 0.137301277895458040, 0.042599917273037136,
          0.068099720370955769, 0.089500536657869834, 0.022410259968601166, 0.088829832272604117,
          0.176544352229684592, 0.081262819403782494]
    x = [-4.4933609015230856e-06, -1.6190263098946088e-06, 9.4383621068529932e-05, 8.2122119509808853e-05,
         5.9390132121750883e-05, 9.1897737160821823e-05, 7.8213630073106717e-05, 7.4564983365190605e-06,
         -1.9893516958633729e-04, 6.1982574789471028e-05]
    X = np.column_stack([np.ones(10), x])
    with pytest.raises(ValueError, match="Model matrix not of full rank"):
        fit(np.array(yi), np.array(vi), X)
    assert fit(np.array(yi), np.array(vi), np.column_stack([np.ones(10), np.array(x) * 1e4])).converged
