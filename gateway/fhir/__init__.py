"""The FHIR R4 (4.0.1) door: registry-driven routes over the one store and the one policy."""

from gateway.fhir.routes import build_fhir_router

__all__ = ["build_fhir_router"]
