"""The spec language: safe YAML with positions, Pydantic models, cross-section rules."""
