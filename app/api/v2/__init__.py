"""The client API's /api/v2 routers."""
