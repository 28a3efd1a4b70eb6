"""metapsych: a living comparative-effectiveness meta-analysis of psychotherapy trials.

The package is layered (see docs/architecture.md): ``data`` -> ``effects`` -> ``stats`` <- ``analysis``
-> ``report``; ``cli`` and ``commands`` only wire these together.
"""

__version__ = "0.1.0"
