"""What EngageLab holds, read into comparable form: shapes, drift, import, statistics. Pure."""
