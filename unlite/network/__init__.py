"""Steering backends (paper Table I). ``get(name)`` returns a backend instance."""
from .base import SteeringError, Switch


def get(name):
    if name == "nft":
        from .nft import NftSwitch
        return NftSwitch()
    raise SteeringError(f"unknown or unavailable steering backend '{name}' (available: nft)",
                        status=400)


__all__ = ["SteeringError", "Switch", "get"]
