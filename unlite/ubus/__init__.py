"""ubus object ``unlite`` (DESIGN.md), the two ways it exists:

- ``native``   registered by the daemon itself over ``wire`` (a stdlib ubus client) with the
               ``blobmsg`` codec: calls answered in-process, events sent without a process;
- ``rpcd``     rpcd's exec plugin ``/usr/libexec/rpcd/unlite``, a process per call, a client
               of the daemon's unix socket: the fallback (UCI ``option ubus 'rpcd'``);
- ``methods``  the one method table, argument checks and answer shapes both use.
"""
