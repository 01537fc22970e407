"""Pytest fixtures that start the local EngageLab emulator on a free loopback port."""
