"""The views of plans and statistics: text, markdown, JSON, CSV. Pure."""
