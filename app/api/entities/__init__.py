"""The client API's JSON, one module per Mastodon entity, built from the read model's views (the
same the web pages show). Ids are strings of digits; times carry milliseconds."""
