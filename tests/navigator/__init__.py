"""A project shaped like dependency-injector's Django example, written afresh for our tests.

Settings hold the GitHub token and limits; ``providers.Configuration`` gets them from
Django settings with no ``from_dict`` of the project's own; views read typed options.
"""
