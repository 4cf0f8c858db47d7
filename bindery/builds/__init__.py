"""Builds: the queue (dedup, slots, fairness) and the repo2docker runner."""
