"""Steering backends (paper Table I): ``nft``, ``tc``, ``ovs``. ``get(name)`` → an instance."""
from .base import Attach, SteeringError, Switch

BACKENDS = ("nft", "tc", "ovs")


def backend_class(name):
    if name == "nft":
        from .nft import NftSwitch
        return NftSwitch
    if name == "tc":
        from .tc import TcSwitch
        return TcSwitch
    if name == "ovs":
        from .ovs import OvsSwitch
        return OvsSwitch
    raise SteeringError(f"unknown steering backend '{name}' (known: {', '.join(BACKENDS)})",
                        status=400)


def get(name, **options):
    """The backend ``name``, probed: raises SteeringError saying why it cannot run here."""
    cls = backend_class(name)
    ok, reason = cls.probe()
    if not ok:
        raise SteeringError(f"steering backend '{name}' is unavailable on this node: {reason}",
                            status=400)
    sw = cls(**options)
    sw.probe_result = reason
    return sw


__all__ = ["Attach", "BACKENDS", "SteeringError", "Switch", "backend_class", "get"]
