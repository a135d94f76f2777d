"""The process and its edges: settings, app, auth, media routes, CLI."""
