"""Management commands of django-lifespan-container."""
