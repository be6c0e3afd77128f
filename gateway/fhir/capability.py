"""``GET /fhir/metadata``: the CapabilityStatement (FHIR R4 4.0.1), generated from the registry.

Nothing here is written by hand per resource: interactions, search parameters and
versioning come from ``registry.RESOURCES``, which also generates the routes.
"""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.fhir.context import FhirContext
from gateway.fhir.registry import (
    RESOURCES,
    SYSTEM_INTERACTIONS,
    Interaction,
    ResourceDef,
    includes_of,
    revincludes_of,
)
from gateway.smart.discovery import security_extension
from gateway.store.classes import CLASSES

FHIR_VERSION = "4.0.1"
RELEASE_DATE = "2026-01-01"
_ORDER = list(Interaction)


def _resource(rdef: ResourceDef) -> dict[str, Any]:
    versioned = CLASSES[rdef.class_name].versioned
    out: dict[str, Any] = {
        "type": rdef.type,
        "interaction": [{"code": i.value} for i in sorted(rdef.interactions, key=_ORDER.index)],
        "versioning": "versioned" if versioned else "no-version",
        "readHistory": versioned and rdef.supports(Interaction.VREAD),
        "updateCreate": False,
        "conditionalCreate": rdef.supports(Interaction.CREATE),
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchInclude": includes_of(rdef),
        "searchRevInclude": revincludes_of(rdef),
        "searchParam": [
            {"name": p.name, "type": p.type, "documentation": p.documentation} for p in rdef.params.values()
        ],
    }
    for key in ("searchInclude", "searchRevInclude"):
        if not out[key]:
            del out[key]
    if rdef.admin_only:
        out["documentation"] = (
            "Administrators and the master key; a SMART token with scopes for it (patient/, user/, system/) "
            "under the record rules."
        )
    return out


def capability_statement(ctx: FhirContext) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "kind": "instance",
        "software": {"name": "portal-gateway", "version": __version__},
        "implementation": {"description": "Patient Portal Gateway FHIR door", "url": ctx.fhir_base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": True,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [security_extension(ctx.settings)],
                    "description": (
                        "SMART on FHIR access tokens (see .well-known/smart-configuration); "
                        "Parse session token as 'Authorization: Bearer r:...' or X-Parse-Session-Token; "
                        "master key (X-Parse-Master-Key with X-Parse-Application-Id) for tooling."
                    ),
                },
                "resource": [_resource(rdef) for rdef in RESOURCES.values()],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }
