"""Notification: each person's in-app inbox, filled from the other services' events."""
