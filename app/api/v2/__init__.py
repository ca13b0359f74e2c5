"""Mastodon's v2 REST API, one router module per resource."""
