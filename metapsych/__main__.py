"""Allow ``python -m metapsych``."""

from metapsych.cli import main

main()
