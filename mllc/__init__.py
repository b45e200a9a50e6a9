"""mllc: a GitOps lifecycle manager for machine-learning models."""

__version__ = "0.1.0"
