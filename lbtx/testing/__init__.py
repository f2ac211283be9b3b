"""Fakes shared by the tests, each checked against the interface it stands in for."""
