"""Amaranth RTL of the tile's digital periphery."""

from .boundary import BOUNDARY, analogue_signature
from .regmap import register_map
from .tile import Tile

__all__ = ["BOUNDARY", "Tile", "analogue_signature", "register_map"]
