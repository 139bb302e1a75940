"""Where each grid lies: its boundary, kept beside the grid cell on the master.

The boundary is GeoJSON text (the same on SQLite and PostgreSQL, no PostGIS
needed) with its bounding box in plain columns, so finding the grid of a
point reads only the few boundaries whose box holds it. Boundaries stay on
the master: tablets get their grids by sync, and the office places the cases
that come in with a position (the hotline, Open311).
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, Float, Text
from sqlmodel import Field, SQLModel


class GridBoundary(SQLModel, table=True):
    __tablename__ = "grid_boundary"
    grid_id: str = Field(primary_key=True, foreign_key="grid_cell.id")
    geojson: str = Field(sa_type=Text)
    min_x: float = Field(sa_type=Float, index=True)
    min_y: float = Field(sa_type=Float)
    max_x: float = Field(sa_type=Float)
    max_y: float = Field(sa_type=Float)
    updated_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc), sa_type=DateTime(timezone=True))
