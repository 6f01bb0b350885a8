"""The application layer: one module per use case; entrypoints call these, these call ports."""
