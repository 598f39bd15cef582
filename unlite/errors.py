"""The one shape of an error unlite answers with: what went wrong, where, and how to say it.

Every layer raises a subclass of ``UnliteError``; the REST API (``api.ErrorPlugin``), the ubus
object and the USP Service turn any of them into the same answer without knowing the layer:

- ``message``  the sentence a user reads;
- ``path``     the JSON path of the value at fault (``$.forwarding-graph.VNFs[0].name``), or None;
- ``status``   the HTTP status (400 a bad document, 403, 404, 409 a conflict, 422 cannot be
               done here, 503 busy, 507 the disk);
- ``fault``    the NF's named fault (``FailureOnStart``, ``DependencyFailure``…; DESIGN.md), or
               None;
- ``extra``    further fields of the error body (a change's record, the list of errors).

A subclass sets its own default ``status`` and ``fault`` as class attributes and keeps the
constructor its callers know. Stdlib only: the model, the store and the rpcd plugin load it.
"""
from __future__ import annotations


class UnliteError(Exception):
    status: int = 400
    fault: str | None = None

    def __init__(self, message, path=None, status=None, fault=None, extra=None):
        super().__init__(message)
        self.message, self.path = message, path
        if status is not None:
            self.status = status
        if fault is not None:
            self.fault = fault
        self.extra = extra or {}

    def __str__(self):
        return self.message

    def describe(self):
        """(status, message, path, fault, extra): the answer's parts."""
        return self.status or 400, self.message, self.path, self.fault, self.extra or None
