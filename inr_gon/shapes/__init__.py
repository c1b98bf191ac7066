"""Surfaces from signed distance functions: volumes on a grid, marching cubes, mesh files, and
previews by point splatting."""
