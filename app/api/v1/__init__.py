"""Mastodon's REST API, one router module per resource."""
