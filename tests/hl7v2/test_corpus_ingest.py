"""Every real-world corpus message through the ingest service, each into a fresh store."""

from __future__ import annotations

import pytest

from gateway.hl7v2 import Delivery, Ingest
from gateway.store.database import Database
from tests.hl7v2.support import CORPUS, counts, msa

EXPECTED = {
    "LAB-ORU-1": "AA",
    "LAB-ORU-2": "AA",
    "LRI_2.0-NG_CBC_Typ_Message": "AA",
    "ORU-R01-RMGEAD": "AA",
    "ORU-R01-01": "AE",  # the messy one: the mapping names what it cannot apply; nothing is stored
    "ADT-A01-01": "AA",
    "ADT-A04-01": "AA",
    "ADT-A08-01": "AA",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_corpus_message_outcome(db: Database, name: str) -> None:
    raw = (CORPUS / f"{name}.hl7").read_bytes()  # LF segment ends and a BOM, as the files come
    [reply] = await Ingest(db).handle_payload(raw, Delivery("http", "corpus"))
    assert msa(reply.ack)[1] == reply.code.value == EXPECTED[name], reply.ack.decode(errors="replace")
    totals = await counts(db)
    if reply.code.value == "AA":
        assert totals["PatientProfile"] == 1
        assert (totals["LabResult"] > 0) == name.startswith(("LAB", "LRI", "ORU"))
    else:
        assert "\rERR|" in reply.ack.decode(errors="replace")
        assert totals["PatientProfile"] == totals["LabResult"] == 0


async def test_corpus_adt_messages_reuse_one_control_id(db: Database) -> None:
    """A01, A04 and A08 all carry MSH-10 MSG00001 from the same facility: by the duplicate rule
    (DESIGN.md) only the first applies; the others are AE dead letters, not silent updates."""
    ingest = Ingest(db)
    codes = [
        (await ingest.handle((CORPUS / f"ADT-{t}-01.hl7").read_bytes(), Delivery("mllp"))).code.value
        for t in ("A01", "A04", "A08")
    ]
    assert codes == ["AA", "AE", "AE"]
