"""The spec language: YAML specs and templates to the exact API bodies of the desired state."""
