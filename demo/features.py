"""Kept only for demo/ui.py's `from demo.features import SetupError`: import it from demo.pipeline instead,
then delete this module."""
from selfmm.features.pipeline import SetupError  # noqa: F401
