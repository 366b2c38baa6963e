"""In-process Django tests: the handler, injection, checks, settings, runtime, testing helpers,
the pytest plugin, probes, the runner, configuration, hardening, observability."""
