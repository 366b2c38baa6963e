"""A project served by one real uvicorn process in ``tests/services/test_client_matrix.py``.

Each kind of value users inject (Redis, PostgreSQL pools, HTTP clients, an SQLAlchemy
engine) is a ``providers.Resource`` of its container, and reaches every kind of view.
"""
