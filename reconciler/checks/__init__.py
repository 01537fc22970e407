"""Send-time and copy checks, and the firing timeline, of the desired state. Pure."""
