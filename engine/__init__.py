"""routerbench.engine: outcome data, loaders and pure NumPy kernels (no Ray, no S3 client)."""

from routerbench.engine.data import PAPER_FAMILIES, RoutingData, family_of
from routerbench.engine.errors import DataError

__all__ = ["PAPER_FAMILIES", "DataError", "RoutingData", "family_of"]
