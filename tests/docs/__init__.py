"""The docs, the tutorial and the README examples, run as written."""
