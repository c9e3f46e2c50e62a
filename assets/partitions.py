"""Partition definitions shared by assets (dynamic: partitions are added as data arrives)."""

import dagster as dg

WORLDS = dg.DynamicPartitionsDefinition(name="worlds")
VIDEOS = dg.DynamicPartitionsDefinition(name="videos")  # one per ingested video or item
GENERATION_BATCHES = dg.DynamicPartitionsDefinition(name="generation_batches")  # generated videos
WORLD_REQUESTS = dg.DynamicPartitionsDefinition(name="world_requests")  # one per world request
