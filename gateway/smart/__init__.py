"""SMART on FHIR authorization server (App Launch 2, Backend Services) on authlib: see ``server``."""
