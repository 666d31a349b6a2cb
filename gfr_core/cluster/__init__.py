"""Restoring archives beyond one process: ``gfr restore --engine ray`` (Ray Data, ``pip install -e '.[cluster]'``)."""

from .ray_engine import restore_on_ray

__all__ = ["restore_on_ray"]
