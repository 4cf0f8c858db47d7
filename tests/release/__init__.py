"""Tests of bindery/release: pure git + filesystem, no stack."""
