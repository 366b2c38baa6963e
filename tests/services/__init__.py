"""Tests whose point is the real PostgreSQL and Redis (marker ``services``)."""
