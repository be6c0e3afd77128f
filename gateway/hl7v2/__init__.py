"""The HL7 v2 door: ingest service, MLLP listener, HTTP route and feed keys.

Parsing, mapping and ACK text are pure (``mappings.hl7v2``); this package owns the
I/O: the transaction per message, the message log, the sockets and the route.
"""

from __future__ import annotations

from gateway.hl7v2.ingest import Delivery, Ingest, Reply

__all__ = ["Delivery", "Ingest", "Reply"]
