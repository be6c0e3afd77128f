"""Patient Portal Gateway: one store, three doors (Parse-compatible, FHIR R4, HL7v2)."""

__version__ = "0.1.0"
