"""A research agent over Citadel's search, and a graph that asks before it publishes."""
