"""Validate a produced FHIR dict with fhir.resources (R4B) and fhirclient's strict R4 models."""

from __future__ import annotations

import importlib
from typing import Any


def validate_fhir_resources(resource: dict[str, Any]) -> dict[str, Any]:
    """``model_validate`` with the R4B model; returns its JSON dump (``exclude_none``)."""
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    model = getattr(module, kind).model_validate(resource)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def validate_fhirclient(resource: dict[str, Any]) -> dict[str, Any]:
    """Build fhirclient's strict R4 model (raises on unknown or mistyped elements)."""
    kind = resource["resourceType"]
    module = importlib.import_module(f"fhirclient.models.{kind.lower()}")
    model = getattr(module, kind)(resource, strict=True)
    out: dict[str, Any] = model.as_json()
    return out
