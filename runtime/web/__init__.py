"""The runtime's own pages and APIs: login, settings, the JSON API, CSRF, health, internal."""
