"""Media service: assets (photos, video, documents), reviewed publishing and live courses."""
