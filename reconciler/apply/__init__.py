"""The applier: makes EngageLab match a plan, one handler per action, the remote names."""
