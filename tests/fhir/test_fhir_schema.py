"""Every shape the FHIR door returns passes the official FHIR R4 JSON schema (and the R4B models)."""

from __future__ import annotations

from gateway.fhir.registry import RESOURCES
from tests.api_support import Api
from tests.fhir.support import fget, schema_errors, search, valid


def test_the_schema_check_can_fail() -> None:
    assert schema_errors({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}) == []
    assert schema_errors({"resourceType": "Observation", "status": "nope", "code": {"text": "x"}})
    assert schema_errors({"resourceType": "Observation", "status": "final"}), "code is required"
    assert schema_errors({"resourceType": "Patient", "bogus": 1}), "no unknown elements"


async def test_every_type_every_row_and_every_history_entry(demo: Api) -> None:
    await demo.get(f"/parse/classes/PatientProfile/{demo.ids['alice:patient']}", "smith")
    for rtype in RESOURCES:
        bundle = await search(demo, f"/fhir/{rtype}", "admin", _count="1000", _total="accurate")
        assert bundle.get("entry"), rtype
        first = bundle["entry"][0]["resource"]["id"]
        r = await fget(demo, f"/fhir/{rtype}/{first}", "admin")
        assert r.status_code == 200
        valid(r.json())
    valid(await search(demo, "/fhir/_history", "admin", _count="1000"))
    valid((await demo.client.get("/fhir/metadata")).json())
    r = await fget(demo, "/fhir/Observation", "admin", bogus="1")
    valid(r.json())


def test_mandatory_elements_table_matches_the_schema() -> None:
    """``_elements`` keeps registry.MANDATORY. The official schema requires the complex ones (a
    primitive may come as ``_status`` alone, so JSON schema cannot require it); the R4B models flag
    the primitive ones: together they must be exactly the table."""
    from fhir.resources.R4B import get_fhir_model_class

    from gateway.fhir.registry import MANDATORY
    from tests.fhir.support import _definitions

    for rtype in RESOURCES:
        complex_ = set(_definitions()[rtype].get("required", [])) - {"resourceType"}
        fields = get_fhir_model_class(rtype).model_fields
        primitive = {
            (f.alias or name).removesuffix("__ext")
            for name, f in fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("element_required")
        }
        assert complex_ | primitive == set(MANDATORY[rtype]), (rtype, complex_, primitive)
