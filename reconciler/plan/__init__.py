"""The planner: changes from desired state and state, gates, saved plans. Pure but saved plans."""
