"""The training service: catalog, trainers, sessions, certifications, rotation plans."""
