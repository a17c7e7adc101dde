"""Example third-party cm plugin."""
