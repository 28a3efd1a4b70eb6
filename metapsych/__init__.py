"""metapsych: a living comparative-effectiveness meta-analysis of psychotherapy trials.

The package is layered (see docs/architecture.md): ``data`` -> ``effects`` -> ``stats`` <- ``analysis``
-> ``report``; ``cli`` and ``commands`` only wire these together. Importing it tunes glibc's allocator
for vectorised batches (``metapsych._allocator``).
"""

from metapsych._allocator import keep_freed_memory

__version__ = "0.1.0"

keep_freed_memory()
