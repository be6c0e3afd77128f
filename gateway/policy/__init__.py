"""Who may see and do what: one policy for the native, FHIR and HL7 doors.

Record rules become server-set ACLs (``rules``), class rules are CLPs (``clp``),
field rules guard mass assignment (``fields``), and ``filters`` turns the ACL into
SQL so lists and counts never include what the caller may not read.
"""

from gateway.policy.acl import allows, build_acl, flatten, validate_acl
from gateway.policy.clp import DEFAULT_CLPS, Op, check, effective_clp
from gateway.policy.fields import Relation, check_writable
from gateway.policy.filters import read_filter, write_filter
from gateway.policy.principal import (
    ANONYMOUS,
    Principal,
    PrincipalKind,
    RequestInfo,
    Role,
    master,
    role_perm,
    system,
)
from gateway.policy.rules import PatientLink, care_team_role, patient_can_see, record_acl

__all__ = [
    "ANONYMOUS",
    "DEFAULT_CLPS",
    "Op",
    "PatientLink",
    "Principal",
    "PrincipalKind",
    "Relation",
    "RequestInfo",
    "Role",
    "allows",
    "build_acl",
    "care_team_role",
    "check",
    "check_writable",
    "effective_clp",
    "flatten",
    "master",
    "patient_can_see",
    "read_filter",
    "record_acl",
    "role_perm",
    "system",
    "validate_acl",
    "write_filter",
]
