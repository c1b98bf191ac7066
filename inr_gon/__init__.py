"""inr-gon: Gradient Origin Networks for implicit neural representations."""

__version__ = "0.1.0"

from inr_gon.run import Run, load_run  # noqa: E402

__all__ = ["Run", "load_run", "__version__"]
