"""Observe: read the actual state (files, DVC, registry, deployments); change nothing."""
