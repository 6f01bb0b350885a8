"""HTTP routes by area; each module exports ROUTES."""
