"""reconcile: campaign-as-code for EngageLab push notifications."""

__version__ = "0.1.0"
