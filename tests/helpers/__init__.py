"""Builders of input files and runners shared by the tests (tests/unit, tests/workflow)."""
