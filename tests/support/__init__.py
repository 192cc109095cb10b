"""Helpers shared by every test suite (tests/ is on sys.path: ``from support.eventually import eventually``)."""
