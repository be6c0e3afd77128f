"""SQL tables for every class in DESIGN.md, declared once as SQLAlchemy 2 models.

Column names are the Parse field names, so a Parse key maps to a column with no
translation table; pointer columns hold the target's ``objectId`` and carry a real
foreign key. Columns whose name starts with ``_`` are internal and never serialized.
The Parse schema (``gateway.native.schema``) is derived from these declarations.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.store.types import JSONType, UTCDateTime

ID = String(32)


def _ptr(target: str, *, nullable: bool = True, ondelete: str = "RESTRICT") -> Any:
    return mapped_column(ID, ForeignKey(f"{target}.objectId", ondelete=ondelete), nullable=nullable)


def _array() -> Any:
    return mapped_column(JSONType, nullable=True, info={"parse_type": "Array"})


def _object() -> Any:
    return mapped_column(JSONType, nullable=True, info={"parse_type": "Object"})


class Base(DeclarativeBase):
    pass


class ParseObject:
    """Columns every Parse class has; ``_rperm``/``_wperm`` are the ACL flattened for SQL filtering."""

    objectId: Mapped[str] = mapped_column(ID, primary_key=True)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updatedAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ACL: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, info={"parse_type": "ACL"})
    _rperm: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    _wperm: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)


class Versioned:
    """Clinical classes: ``version`` counts the rows written to ``_Version`` for the object."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)


class User(ParseObject, Base):
    __tablename__ = "_User"
    username: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    emailVerified: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    _hashed_password: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Session(ParseObject, Base):
    __tablename__ = "_Session"
    user: Mapped[str] = _ptr("_User", nullable=False, ondelete="CASCADE")
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    createdWith: Mapped[dict[str, Any] | None] = _object()
    installationId: Mapped[str | None] = mapped_column(String(64), nullable=True)
    restricted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    _token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)


class Role(ParseObject, Base):
    __tablename__ = "_Role"
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)


class RoleUser(Base):
    """Parse ``_Role.users`` relation."""

    __tablename__ = "_Join_users_Role"
    owningId: Mapped[str] = mapped_column(ID, ForeignKey("_Role.objectId", ondelete="CASCADE"), primary_key=True)
    relatedId: Mapped[str] = mapped_column(ID, ForeignKey("_User.objectId", ondelete="CASCADE"), primary_key=True)
    __table_args__ = (Index("ix_role_users_user", "relatedId"),)


class RoleRole(Base):
    """Parse ``_Role.roles`` relation: users of a child role inherit the owning role."""

    __tablename__ = "_Join_roles_Role"
    owningId: Mapped[str] = mapped_column(ID, ForeignKey("_Role.objectId", ondelete="CASCADE"), primary_key=True)
    relatedId: Mapped[str] = mapped_column(ID, ForeignKey("_Role.objectId", ondelete="CASCADE"), primary_key=True)
    __table_args__ = (Index("ix_role_roles_child", "relatedId"),)


class PatientProfile(ParseObject, Versioned, Base):
    __tablename__ = "PatientProfile"
    user: Mapped[str | None] = _ptr("_User")
    medicalRecordNumber: Mapped[str] = mapped_column(String(64), nullable=False)
    mrnAuthority: Mapped[str] = mapped_column(String(64), nullable=False, default="", server_default="")
    """The authority that assigned the MRN (HL7 PID-3.4); '' for a locally assigned MRN. The
    identity of a patient is the pair: the same MRN from two authorities is two patients."""
    displayName: Mapped[str | None] = mapped_column(String(255))
    givenName: Mapped[str | None] = mapped_column(String(255))
    familyName: Mapped[str | None] = mapped_column(String(255))
    dateOfBirth: Mapped[str | None] = mapped_column(String(10), info={"format": "date"})
    gender: Mapped[str | None] = mapped_column(String(16))
    primaryClinic: Mapped[str | None] = mapped_column(String(255))
    contact: Mapped[dict[str, Any] | None] = _object()
    isActive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    __table_args__ = (
        UniqueConstraint("user", name="uq_patient_user"),
        UniqueConstraint("medicalRecordNumber", "mrnAuthority", name="uq_patient_mrn"),
    )


class CareTeam(Base):
    """``PatientProfile.careTeam``: an array of ProviderProfile pointers kept as a join table."""

    __tablename__ = "_Join_careTeam_PatientProfile"
    owningId: Mapped[str] = mapped_column(
        ID, ForeignKey("PatientProfile.objectId", ondelete="CASCADE"), primary_key=True
    )
    relatedId: Mapped[str] = mapped_column(
        ID, ForeignKey("ProviderProfile.objectId", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    __table_args__ = (Index("ix_careteam_provider", "relatedId"),)


class ProviderProfile(ParseObject, Versioned, Base):
    __tablename__ = "ProviderProfile"
    user: Mapped[str | None] = _ptr("_User")
    displayName: Mapped[str | None] = mapped_column(String(255))
    npi: Mapped[str | None] = mapped_column(String(32), unique=True)
    specialty: Mapped[str | None] = mapped_column(String(255))
    clinic: Mapped[str | None] = mapped_column(String(255))
    contact: Mapped[dict[str, Any] | None] = _object()
    isActive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    __table_args__ = (UniqueConstraint("user", name="uq_provider_user"),)


class LabResult(ParseObject, Versioned, Base):
    __tablename__ = "LabResult"
    patient: Mapped[str] = _ptr("PatientProfile", nullable=False)
    orderedBy: Mapped[str | None] = _ptr("ProviderProfile")
    orderId: Mapped[str | None] = mapped_column(String(128))
    testCode: Mapped[str | None] = mapped_column(String(64))
    codeSystem: Mapped[str | None] = mapped_column(String(64))
    testName: Mapped[str | None] = mapped_column(String(255))
    resultValue: Mapped[str | None] = mapped_column(Text)
    valueType: Mapped[str | None] = mapped_column(String(16))
    units: Mapped[str | None] = mapped_column(String(64))
    referenceRange: Mapped[str | None] = mapped_column(String(128))
    interpretation: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="preliminary")
    effectiveAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    publishedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    visibility: Mapped[str] = mapped_column(String(32), nullable=False, default="shared")
    notes: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any] | None] = _array()
    resultData: Mapped[dict[str, Any] | None] = _object()
    sourceMessageId: Mapped[str | None] = mapped_column(String(128))
    __table_args__ = (
        Index("ix_labresult_order", "orderId"),
        Index("ix_labresult_ordered_by", "orderedBy"),
    )


# A patient's results newest first, in the order both doors page them (the date descending,
# then objectId ascending), so SQLite reads a page off the index and stops at its limit
# instead of sorting all the patient's rows (migration 0009).
Index("ix_labresult_patient_published", LabResult.patient, LabResult.publishedAt.desc(), LabResult.objectId)
Index("ix_labresult_patient_effective", LabResult.patient, LabResult.effectiveAt.desc(), LabResult.objectId)


class TreatmentPlan(ParseObject, Versioned, Base):
    __tablename__ = "TreatmentPlan"
    patient: Mapped[str] = _ptr("PatientProfile", nullable=False)
    createdBy: Mapped[str | None] = _ptr("_User")
    provider: Mapped[str | None] = _ptr("ProviderProfile")
    summary: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), nullable=False, default="draft")
    startDate: Mapped[datetime | None] = mapped_column(UTCDateTime())
    endDate: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approvedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledgedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_treatmentplan_patient", "patient", "updatedAt"),)


class Message(ParseObject, Versioned, Base):
    __tablename__ = "Message"
    conversationId: Mapped[str | None] = mapped_column(String(64))
    from_: Mapped[str | None] = mapped_column(
        "from", ID, ForeignKey("_User.objectId", ondelete="RESTRICT"), nullable=True
    )
    to: Mapped[str | None] = _ptr("_User")
    patient: Mapped[str] = _ptr("PatientProfile", nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any] | None] = _array()
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="sent")
    isRead: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    sentAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    readAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (
        Index("ix_message_patient_sent", "patient", "sentAt"),
        Index("ix_message_conversation", "conversationId", "sentAt"),
    )


class Appointment(ParseObject, Versioned, Base):
    __tablename__ = "Appointment"
    patient: Mapped[str] = _ptr("PatientProfile", nullable=False)
    provider: Mapped[str | None] = _ptr("ProviderProfile")
    startAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    endAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    location: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="scheduled")
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_appointment_patient_start", "patient", "startAt"),)


class AuditLog(ParseObject, Base):
    """Append-only; ``seq`` orders the hash chain (``prevHash`` -> ``hash``)."""

    __tablename__ = "AuditLog"
    seq: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    actor: Mapped[str | None] = mapped_column(ID, info={"pointer": "_User"})
    """Not a foreign key: deleting a user must not rewrite (SET NULL) a hashed field of the trail."""
    actorName: Mapped[str | None] = mapped_column(String(255))
    entityType: Mapped[str | None] = mapped_column(String(64))
    entityId: Mapped[str | None] = mapped_column(String(255))
    patient: Mapped[str | None] = mapped_column(ID, info={"pointer": "PatientProfile"})
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    summary: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column(
        "metadata", JSONType, nullable=True, info={"parse_type": "Object"}
    )
    outcome: Mapped[str] = mapped_column(String(16), nullable=False, default="success")
    clientId: Mapped[str | None] = mapped_column(String(128))
    sourceAddress: Mapped[str | None] = mapped_column(String(64))
    requestId: Mapped[str | None] = mapped_column(String(64))
    prevHash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)
    """Not indexed: the chain is walked by ``seq``; an index here only cost every audited read (0008)."""
    __table_args__ = (
        Index("ix_auditlog_entity", "entityType", "entityId"),
        Index("ix_auditlog_patient", "patient", "createdAt"),
    )


class AuditHead(Base):
    """One row holding the chain head; updating it serializes concurrent audit writers."""

    __tablename__ = "_AuditHead"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class AuthEpoch(Base):
    """One row counting changes to what a session token resolves to (session, user, roles, own
    patient); SQLite triggers bump it (migration 0010) and ``gateway.store.sessionmemo`` reads it."""

    __tablename__ = "_AuthEpoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False)


class ClassEpoch(Base):
    """One row with a column per class counting updates and deletes of its objects; SQLite
    triggers bump them (migration 0011) and ``gateway.store.changes`` reads them."""

    __tablename__ = "_ClassEpoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[int] = mapped_column("_User", Integer, nullable=False, server_default="0")
    session: Mapped[int] = mapped_column("_Session", Integer, nullable=False, server_default="0")
    role: Mapped[int] = mapped_column("_Role", Integer, nullable=False, server_default="0")
    patient_profile: Mapped[int] = mapped_column("PatientProfile", Integer, nullable=False, server_default="0")
    provider_profile: Mapped[int] = mapped_column("ProviderProfile", Integer, nullable=False, server_default="0")
    lab_result: Mapped[int] = mapped_column("LabResult", Integer, nullable=False, server_default="0")
    treatment_plan: Mapped[int] = mapped_column("TreatmentPlan", Integer, nullable=False, server_default="0")
    message: Mapped[int] = mapped_column("Message", Integer, nullable=False, server_default="0")
    appointment: Mapped[int] = mapped_column("Appointment", Integer, nullable=False, server_default="0")
    audit_log: Mapped[int] = mapped_column("AuditLog", Integer, nullable=False, server_default="0")


class Hl7ResultIds(Base):
    """One row: whether the store holds HL7 feed results under their pre-clustering 10-character
    ids (migration 0012 computes it; ``hl7v2.apply.has_legacy_result_ids`` reads it)."""

    __tablename__ = "_Hl7ResultIds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    legacy: Mapped[bool] = mapped_column(Boolean, nullable=False)


class Version(Base):
    """Snapshot of a clinical object after each change (FHIR vread/history read these)."""

    __tablename__ = "_Version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    className: Mapped[str] = mapped_column(String(64), nullable=False)
    objectId: Mapped[str] = mapped_column(ID, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    actor: Mapped[str | None] = mapped_column(String(255))
    __table_args__ = (UniqueConstraint("className", "objectId", "version", name="uq_version"),)


class SchemaCLP(Base):
    """Class-level permissions set through ``/parse/schemas`` (defaults live in gateway.policy)."""

    __tablename__ = "_SCHEMA"
    className: Mapped[str] = mapped_column(String(64), primary_key=True)
    classLevelPermissions: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)


class PortalActivation(Base):
    """Single-use, expiring codes that link a signed-up user to an existing PatientProfile."""

    __tablename__ = "_PortalActivation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    codeHash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    patient: Mapped[str] = mapped_column(ID, ForeignKey("PatientProfile.objectId", ondelete="CASCADE"), nullable=False)
    issuedBy: Mapped[str | None] = mapped_column(String(255))
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    usedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failedAttempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


metadata = Base.metadata


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as a ``Table`` (``__table__`` is typed as a FromClause)."""
    return cast(Table, model.__table__)


class Hl7Message(Base):
    """The HL7 v2 message log: every message received over MLLP or HTTP, its outcome and its ACK.

    ``controlKey`` is MSH-10 for a message that owns its control id (AA, or AE when
    understood but not applied); with ``sendingFacility`` it is unique, so a repeat of
    the same MSH-10 from the same facility finds the original row and its ACK. Rows that
    do not own the id (AR, or the same MSH-10 with different content) keep it NULL
    (NULLs are distinct on both backends). Dead letters are the AE/AR rows.
    """

    __tablename__ = "_Hl7Message"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    receivedAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    transport: Mapped[str] = mapped_column(String(8), nullable=False)
    feed: Mapped[str | None] = mapped_column(String(64))
    sourceAddress: Mapped[str | None] = mapped_column(String(64))
    sendingApplication: Mapped[str | None] = mapped_column(String(255))
    sendingFacility: Mapped[str | None] = mapped_column(String(255))
    controlId: Mapped[str | None] = mapped_column(String(255))
    controlKey: Mapped[str | None] = mapped_column(String(255))
    messageType: Mapped[str | None] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    outcome: Mapped[str] = mapped_column(String(2), nullable=False)
    ack: Mapped[str] = mapped_column(Text, nullable=False)
    reason: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    effects: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    __table_args__ = (
        UniqueConstraint("sendingFacility", "controlKey", name="uq_hl7message_control"),
        Index("ix_hl7message_outcome", "outcome", "receivedAt"),
    )


class Hl7Feed(Base):
    """A sender allowed to POST /hl7v2: the SHA-256 of its API key, never the key."""

    __tablename__ = "_Hl7Feed"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    keyHash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    isActive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class OAuthClient(Base):
    """A registered SMART app or back end (``portal-gateway clients add``).

    ``clientType`` is ``public``, ``confidential-symmetric`` (``secretHash`` is the
    SHA-256 of a generated 256-bit secret) or ``confidential-asymmetric`` (``jwks``
    or ``jwksUrl`` holds its public keys). Redirect URIs match exactly.
    """

    __tablename__ = "_OAuthClient"
    clientId: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    clientType: Mapped[str] = mapped_column(String(32), nullable=False)
    secretHash: Mapped[str | None] = mapped_column(String(64))
    redirectUris: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    jwksUrl: Mapped[str | None] = mapped_column(String(1024))
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    isActive: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class OAuthCode(Base):
    """An authorization code, stored as its SHA-256; single use (``usedAt``), short-lived.

    ``grantId`` names the token family the code's exchange starts, so a replayed code
    revokes every token issued from it (RFC 6749 §4.1.2).
    """

    __tablename__ = "_OAuthCode"
    codeHash: Mapped[str] = mapped_column(String(64), primary_key=True)
    clientId: Mapped[str] = mapped_column(
        String(128), ForeignKey("_OAuthClient.clientId", ondelete="CASCADE"), nullable=False
    )
    redirectUri: Mapped[str] = mapped_column(Text, nullable=False)
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    user: Mapped[str] = mapped_column(ID, ForeignKey("_User.objectId", ondelete="CASCADE"), nullable=False)
    patient: Mapped[str | None] = mapped_column(ID)
    fhirUser: Mapped[str | None] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(String(255))
    codeChallenge: Mapped[str] = mapped_column(String(128), nullable=False)
    codeChallengeMethod: Mapped[str] = mapped_column(String(8), nullable=False)
    needPatientBanner: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    grantId: Mapped[str] = mapped_column(String(32), nullable=False)
    sessionId: Mapped[str | None] = mapped_column(ID)
    """The ``_Session`` of the sign-in that approved the code (an ``online_access`` grant lives as long as it)."""
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    usedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OAuthRefreshToken(Base):
    """A refresh token (SHA-256 only). Rotation marks the old one ``rotatedAt``; presenting
    a rotated token again revokes its whole ``grantId`` family (RFC 9700 §4.14)."""

    __tablename__ = "_OAuthRefreshToken"
    tokenHash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grantId: Mapped[str] = mapped_column(String(32), nullable=False)
    clientId: Mapped[str] = mapped_column(
        String(128), ForeignKey("_OAuthClient.clientId", ondelete="CASCADE"), nullable=False
    )
    user: Mapped[str] = mapped_column(ID, ForeignKey("_User.objectId", ondelete="CASCADE"), nullable=False)
    patient: Mapped[str | None] = mapped_column(ID)
    fhirUser: Mapped[str | None] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(Text, nullable=False)
    needPatientBanner: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    sessionId: Mapped[str | None] = mapped_column(ID)
    """Set for an ``online_access`` (not offline) token: the ``_Session`` whose end ends the token."""
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    rotatedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revokedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_oauthrefresh_grant", "grantId"),)


class OAuthAccessToken(Base):
    """Every issued access token's ``jti`` (the JWT itself is not stored): revocation and
    introspection look it up, so a revoked token is dead on its next request."""

    __tablename__ = "_OAuthAccessToken"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    grantId: Mapped[str | None] = mapped_column(String(32))
    clientId: Mapped[str] = mapped_column(
        String(128), ForeignKey("_OAuthClient.clientId", ondelete="CASCADE"), nullable=False
    )
    user: Mapped[str | None] = mapped_column(ID, ForeignKey("_User.objectId", ondelete="CASCADE"))
    sessionId: Mapped[str | None] = mapped_column(ID)
    """Set for an ``online_access`` grant: the token dies with that ``_Session`` (however it is ended)."""
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revokedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_oauthaccess_grant", "grantId"),)


class OAuthAssertionJti(Base):
    """``jti`` values of accepted client assertions, kept until they expire (replay check)."""

    __tablename__ = "_OAuthAssertionJti"
    clientId: Mapped[str] = mapped_column(String(128), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


class SmartLaunch(Base):
    """An EHR launch context from ``createSmartLaunch``: single use, short-lived, hashed."""

    __tablename__ = "_SmartLaunch"
    launchHash: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient: Mapped[str] = mapped_column(ID, ForeignKey("PatientProfile.objectId", ondelete="CASCADE"), nullable=False)
    issuedBy: Mapped[str | None] = mapped_column(String(255))
    createdAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expiresAt: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    usedAt: Mapped[datetime | None] = mapped_column(UTCDateTime())
