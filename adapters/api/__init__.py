"""The HTTP side: REST read models and control, the `/ws` update stream, the dashboard (Litestar)."""
