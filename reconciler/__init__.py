"""reconcile: campaign-as-code for EngageLab push notifications."""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
DIST_NAME = "engagelab-reconcile"  # on PyPI; "reconcile" and "reconciler" are other projects
