"""``manage.py runasgi``."""
