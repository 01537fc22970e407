"""Test support, not tests: fixtures, factories and helpers shared by the test modules."""
