"""The codes unlite's USP face answers with, in one table, and which one an error gets.

Two ranges (TR-369 "Error Codes"):

- USP's own (7000-7099): a message that cannot be done at all, answered at once (an Error, or
  a sync ``cmd_failure``: no such path, a bad argument, too many changes in flight);
- TR-181's Deployment Unit faults (7200-7299, "data model defined"): why an ``InstallDU()``,
  ``Update()`` or ``Uninstall()`` failed, in its OperationComplete ``cmd_failure`` and its
  ``DUStateChange!`` ``Fault.FaultCode``. TR-181's numbers for these are CWMP's (TR-069
  Annex A, 9010-9032: the same conditions, listed again in TR-369's "Fault Model") in the data
  model range, 72xx for 90xx, as TR-369 itself cites 7229 for 9029's "Invalid Deployment Unit
  State". TR-181's text is not in ../shared: the numbers are pinned by a test, so a change is
  deliberate.

``for_error(e)`` maps any ``UnliteError`` by its class and status, never by its words; the
fault string is always unlite's message with the JSON path in front (``$.forwarding-graph...:``).
"""
from __future__ import annotations

from enum import IntEnum


class Code(IntEnum):
    # TR-369: the message
    NOT_SUPPORTED = 7001            # message type not supported
    REQUEST_DENIED = 7002           # will not do it (a conflict with another graph)
    INTERNAL = 7003                 # a bug in unlite, said as one
    RESOURCES_EXCEEDED = 7005       # more changes in flight than the node takes
    PERMISSION_DENIED = 7006        # the USP face's tenant may not (tenants.py)
    INVALID_PATH_SYNTAX = 7008
    NOT_CREATABLE = 7019
    CMD_FAILURE = 7022              # an NF's script failed (its named fault in the string)
    INVALID_PATH = 7026
    INVALID_ARGS = 7027
    ALREADY_IN_USE = 7029           # Register: another Service owns the path
    # TR-181: a Deployment Unit's install, update, uninstall
    TRANSFER_AUTH = 7212            # the file server refused the credentials
    UNSUPPORTED_PROTOCOL = 7213     # a URL scheme unlite does not fetch
    CANNOT_CONTACT = 7216           # the file server cannot be reached
    CANNOT_ACCESS = 7217            # the server (or the file system) has no such file
    INCOMPLETE = 7218               # the transfer broke off, or ran out of time
    CORRUPTED = 7219                # not an NF-FG: not JSON, or the model refuses it
    INVALID_UUID = 7222             # not an RFC 4122 UUID, or not this graph's
    UNKNOWN_EE = 7223               # ExecutionEnvRef is not ExecEnv.1
    EE_MISMATCH = 7225              # this node cannot run it (a function, a backend, a device)
    DUPLICATE_DU = 7226             # InstallDU of a graph that is installed
    SYSTEM_RESOURCES = 7227         # the disk is full, the document too large
    UNKNOWN_DU = 7228               # the graph is gone
    INVALID_DU_STATE = 7229         # the DU is being installed, updated or uninstalled


# an UnliteError's status -> its code (the REST API's status says what kind of refusal it is)
BY_STATUS = {
    400: Code.CORRUPTED, 413: Code.SYSTEM_RESOURCES, 403: Code.PERMISSION_DENIED,
    404: Code.UNKNOWN_DU, 409: Code.REQUEST_DENIED, 422: Code.EE_MISMATCH,
    503: Code.RESOURCES_EXCEEDED, 507: Code.SYSTEM_RESOURCES, 500: Code.INTERNAL,
}
# an NF's named fault (DESIGN.md) -> its code: what the node cannot run vs a script that failed
BY_FAULT = {"Unstartable": Code.EE_MISMATCH, "DependencyFailure": Code.EE_MISMATCH}


def for_error(e) -> tuple[Code, str]:
    """(code, fault string) of an ``UnliteError``: the string is its JSON path and message,
    and an NF's named fault in brackets where it has one ("[FailureOnStart] ...")."""
    if e.fault:
        code = BY_FAULT.get(e.fault, Code.CMD_FAILURE)
    else:
        code = BY_STATUS.get(e.status or 400, Code.CMD_FAILURE)
    where = f"{e.path}: " if e.path else ""
    named = f"[{e.fault}] " if e.fault and code == Code.CMD_FAILURE else ""
    return code, f"{where}{named}{e.message}"
