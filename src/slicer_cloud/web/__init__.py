"""Pieces shared by the aiohttp-based services (viewer gateway, desktop)."""
