"""Deploys: instances, staged deploy with end-to-end verification and rollback, promote, bump, canary."""
