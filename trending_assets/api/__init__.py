"""The serving API (FastAPI); run it with `trending serve`."""
