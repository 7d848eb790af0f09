"""The hub's old home: ``catzilla.hub`` holds it now (the in-process hub and the Redis one)."""

from catzilla.hub import Broadcast, ChannelStats, RedisBroadcast, Subscription

__all__ = ["Broadcast", "ChannelStats", "RedisBroadcast", "Subscription"]
