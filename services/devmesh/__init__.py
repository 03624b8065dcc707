"""Runs the mesh on one machine from packages alone: databases, services and the edge."""
