"""Tests that start real server processes (marker ``server``); ``process`` starts and stops them."""
