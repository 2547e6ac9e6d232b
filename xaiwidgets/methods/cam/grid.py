"""Layer outputs as ``(N, C, h, w)`` grids: moved to :mod:`xaiwidgets.core.grid` (the default-layer choice in
core needs it); re-exported here for existing imports."""

from ...core.grid import ReshapeSpec, check_reshape, grid_index, grid_of, layout_of, to_grid, token_grid

__all__ = ["ReshapeSpec", "check_reshape", "grid_index", "grid_of", "layout_of", "to_grid", "token_grid"]
