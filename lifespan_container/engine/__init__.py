"""The engine: the whole lifecycle of a container's resources, with no Django in it.

Internal: import the public names from :mod:`lifespan_container.lifecycle` and
:mod:`lifespan_container.health`. Nothing in this package imports Django or any
module of the Django layer above it (a test asserts it); it is tested in plain
asyncio. The modules, from the bottom up:

``limits``
    Time limits: seconds with the label that failures name them by.
``steps``
    Named steps run concurrently, with a record of what failed or hung.
``graph``
    The container as a graph of resources: names, dependencies, start order,
    thread or loop, cycles. Pure and synchronous.
``guard``
    Hands an open value out, only on the event loop it belongs to.
``events``
    What happened to each resource: the log record and the listener call.
``closing``
    The end of a shutdown: wait for the closes until the deadline.
``lifecycle``
    Opens the resources (bounded, all or nothing) and closes them (bounded,
    never half way), reporting each step.
``managers``
    Lifespan managers (django-asgi-lifespan's): async context managers entered
    after the resources, their mappings merged into the state, exited before them.
``lifespan``
    One lifespan: the phase, startup with rollback, shutdown with its budget
    split between the receivers and the resources, close-on-cancel.
``protocol``
    The ASGI lifespan message loop, and the ASGI types the package uses.
``driver``
    Drives an application's lifespan from the server's side (the test helpers).
``drive``
    How each kind of value a request-scoped initializer returns is opened and
    closed (generators, context managers, coroutines), an exception passed in.
``request_scope``, ``request_close``
    One request's values: opened once; closed newest first after the response
    with the request's failure, each close bounded.
``health_checks``, ``health_runs``, ``health``
    What each resource's health check is; shared, cached runs; the results.
"""
