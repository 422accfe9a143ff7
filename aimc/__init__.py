"""Digital periphery of an analogue in-memory-compute tile: RTL, crossbar model, cosimulation."""

from .config import INPUT_MODES, TileConfig

__version__ = "0.1.0"
VERSION = (0, 1, 0)

__all__ = ["INPUT_MODES", "TileConfig", "VERSION", "__version__"]
