"""Effect sizes with provenance, identical to metafor escalc.

``continuous``, ``binary`` and ``convert`` hold vectorised formulas in escalc's own orientation (arm 1 minus
arm 2); ``nnt`` the Furukawa-Leucht NNT; ``checks`` the plausibility checks; ``compute.compute_effects`` turns
a comparison table into effect sizes, choosing and recording the formula for every row.
"""
