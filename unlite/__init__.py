"""unlite: a small NFV node for OpenWrt gateways running Native Network Functions.

Layout: ``model`` (NF-FG parsing), ``compute`` (native NNF driver, packages), ``network``
(steering backends), ``node`` (deploy/update/delete as transactions), ``store`` (desired and
runtime state), ``api`` (REST), ``cli`` (command line), ``sh`` (every external command).
"""
__version__ = "0.1.0"
