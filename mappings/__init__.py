"""Pure translations between native entities, FHIR R4 and HL7v2.

Nothing in this package performs I/O or imports ``gateway``: a test enforces it.
"""
