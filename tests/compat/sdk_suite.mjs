// Compatibility suite: the official Parse JavaScript SDK (npm `parse`) against a live gateway.
//
// Environment: PARSE_SERVER_URL (e.g. http://127.0.0.1:8000/parse), PARSE_APP_ID, PARSE_MASTER_KEY,
// optional COMPAT_ONLY (comma-separated substrings of check names to run); `--list` prints the check names.
// Output: one JSON line per check, {"check": name, "ok": bool, "detail": ...}, then a summary line
// {"summary": {...}}. Exit code 0 only when every check passed.
//
// The checks run in order and share state (sessions, objects created earlier); a check whose
// prerequisite failed fails with "prerequisite missing" rather than hiding the first failure.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import Parse from "parse/node"; // Parse 8 exports the Node build as `parse/node` (older majors: parse/node.js)

const SERVER_URL = process.env.PARSE_SERVER_URL;
const APP_ID = process.env.PARSE_APP_ID;
const MASTER_KEY = process.env.PARSE_MASTER_KEY;
const LIST_ONLY = process.argv.includes("--list");
const ONLY = (process.env.COMPAT_ONLY || "").split(",").map((s) => s.trim()).filter(Boolean);

const PASSWORD = "demo-pass-2026";
const RUN = randomBytes(4).toString("hex");
const MASTER = { useMasterKey: true };
const PUBLISHED = new Set(["final", "corrected", "amended"]);

const results = [];
const state = {};

function need(...keys) {
  for (const k of keys) {
    if (state[k] === undefined) throw new Error(`prerequisite missing: ${k}`);
  }
  return keys.length === 1 ? state[keys[0]] : keys.map((k) => state[k]);
}

function as(user) {
  return { sessionToken: user.getSessionToken() };
}

// GET /classes/{className}/{objectId} through Parse.Object#fetch (Parse.Query#get is a find with a where).
function fetchAs(className, objectId, user) {
  return Parse.Object.extend(className).createWithoutData(objectId).fetch(as(user));
}

function ids(objects) {
  return objects.map((o) => o.id).sort();
}

function describeError(err) {
  if (err instanceof Parse.Error || (err && typeof err.code === "number")) {
    return { code: err.code, message: err.message };
  }
  return { message: String(err && err.message ? err.message : err) };
}

async function expectParseError(promise, code, what = "request") {
  let value;
  try {
    value = await promise;
  } catch (err) {
    if (err && err.code === code) return err;
    throw new Error(`${what}: expected Parse error ${code}, got ${JSON.stringify(describeError(err))}`);
  }
  throw new Error(`${what}: expected Parse error ${code}, but it succeeded: ${JSON.stringify(value)}`);
}

const CHECKS = [];

// Registers a check; they run in registration order once every check is registered (see the end).
function check(name, fn) {
  if (CHECKS.some((c) => c.name === name)) throw new Error(`duplicate check name: ${name}`);
  CHECKS.push({ name, fn });
}

async function runCheck(name, fn) {
  const started = Date.now();
  let line;
  try {
    const detail = await fn();
    line = { check: name, ok: true, ms: Date.now() - started, ...(detail === undefined ? {} : { detail }) };
  } catch (err) {
    line = { check: name, ok: false, ms: Date.now() - started, detail: describeError(err) };
  }
  results.push(line);
  console.log(JSON.stringify(line));
}

const SORTABLE = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// ------------------------------------------------------------------ users

check("user.logIn demo users", async () => {
  for (const [key, email] of [
    ["alice", "alice@example.org"],
    ["bob", "bob@example.org"],
    ["smith", "dr.smith@example.org"],
    ["jones", "dr.jones@example.org"],
    ["admin", "admin@example.org"],
  ]) {
    const user = await Parse.User.logIn(email, PASSWORD);
    assert.ok(user.id, `${email}: no objectId`);
    assert.match(user.getSessionToken() || "", /^r:/, `${email}: session token should be revocable (r:...)`);
    assert.equal(user.get("username"), email);
    assert.equal(user.get("password"), undefined, "password must never be returned");
    state[key] = user;
  }
  assert.equal(Parse.User.current().id, state.admin.id, "current() is the last user who logged in");
});

check("user.logIn wrong password -> 101", async () => {
  await expectParseError(Parse.User.logIn("alice@example.org", "not-the-password"), 101, "bad password");
  await expectParseError(Parse.User.logIn(`nobody-${RUN}@example.org`, PASSWORD), 101, "unknown user");
});

check("user.signUp", async () => {
  const user = new Parse.User();
  const email = `compat-${RUN}@example.org`;
  user.set("username", email);
  user.set("password", "compat-pass-1234");
  user.set("email", email);
  await user.signUp();
  assert.ok(user.id);
  assert.match(user.getSessionToken() || "", /^r:/);
  assert.ok(user.createdAt instanceof Date);
  assert.equal(Parse.User.current().id, user.id, "signUp makes the new user current");
  assert.ok(user.authenticated(), "signed-up user is authenticated");
  state.newbie = user;
  state.newbieEmail = email;
});

check("user.signUp duplicate username -> 202", async () => {
  const email = need("newbieEmail");
  const dup = new Parse.User({ username: email, password: "another-pass-1234" });
  await expectParseError(dup.signUp(), 202, "duplicate username");
});

check("user.current / currentAsync", async () => {
  const alice = await Parse.User.logIn("alice@example.org", PASSWORD);
  state.alice = alice;
  const current = Parse.User.current();
  assert.ok(current, "current() after logIn");
  assert.equal(current.id, alice.id);
  assert.equal(current.getSessionToken(), alice.getSessionToken());
  assert.ok(current.isCurrent());
  const asyncCurrent = await Parse.User.currentAsync();
  assert.equal(asyncCurrent.id, alice.id);
});

check("user.become + /users/me", async () => {
  const bob = need("bob");
  const user = await Parse.User.become(bob.getSessionToken());
  assert.equal(user.id, bob.id);
  assert.equal(user.get("username"), "bob@example.org");
  assert.equal(Parse.User.current().id, bob.id, "become() makes the user current");
  await expectParseError(Parse.User.become("r:0123456789abcdef0123456789abcdef"), 209, "become with a bogus token");
});

check("user.fetch self", async () => {
  const alice = need("alice");
  const copy = Parse.User.createWithoutData(alice.id);
  await copy.fetch(as(alice));
  assert.equal(copy.get("username"), "alice@example.org");
  // another patient's user row is not readable
  const bob = need("bob");
  await expectParseError(Parse.User.createWithoutData(bob.id).fetch(as(alice)), 101, "alice fetches bob's _User");
});

check("user.logOut revokes the session", async () => {
  const user = await Parse.User.logIn("bob@example.org", PASSWORD);
  const token = user.getSessionToken();
  await Parse.User.logOut();
  assert.equal(Parse.User.current(), null, "current() is null after logOut");
  await expectParseError(Parse.User.become(token), 209, "become with a logged-out token");
  await expectParseError(new Parse.Query("LabResult").find({ sessionToken: token }), 209, "query with a logged-out token");
  // the other bob session (from the first logIn) still works
  const bob = need("bob");
  const me = await Parse.User.become(bob.getSessionToken());
  assert.equal(me.id, bob.id);
});

check("session.current", async () => {
  const alice = need("alice");
  await Parse.User.become(alice.getSessionToken());
  const session = await Parse.Session.current();
  assert.equal(session.getSessionToken(), alice.getSessionToken());
  assert.equal(session.get("user").id, alice.id);
});

// ------------------------------------------------------------------ lookups (master key)

check("master key: find demo profiles", async () => {
  const profiles = await new Parse.Query("PatientProfile")
    .containedIn("medicalRecordNumber", ["DEMO-0001", "DEMO-0002"])
    .find(MASTER);
  const byMrn = Object.fromEntries(profiles.map((p) => [p.get("medicalRecordNumber"), p]));
  assert.ok(byMrn["DEMO-0001"] && byMrn["DEMO-0002"], "both demo patients found");
  state.aliceProfile = byMrn["DEMO-0001"];
  state.bobProfile = byMrn["DEMO-0002"];
  assert.equal(state.aliceProfile.get("user").id, need("alice").id, "alice's profile points at her user");
  const providers = await new Parse.Query("ProviderProfile").find(MASTER);
  for (const p of providers) {
    if (p.get("user")?.id === need("smith").id) state.smithProvider = p;
    if (p.get("user")?.id === need("jones").id) state.jonesProvider = p;
  }
  assert.ok(state.smithProvider && state.jonesProvider, "both providers found");
});

// ------------------------------------------------------------------ objects

check("object.save PatientProfile as provider (date string, pointer array)", async () => {
  const smith = need("smith");
  const patient = new Parse.Object("PatientProfile");
  patient.set({
    medicalRecordNumber: `COMPAT-${RUN}`,
    givenName: "Casey",
    familyName: "Compat",
    displayName: "Casey Compat",
    dateOfBirth: "1990-05-06",
    gender: "other",
  });
  await patient.save(null, as(smith));
  assert.ok(patient.id);
  assert.ok(patient.createdAt instanceof Date && patient.updatedAt instanceof Date);
  const fetched = await fetchAs("PatientProfile", patient.id, smith);
  assert.equal(fetched.get("dateOfBirth"), "1990-05-06");
  assert.equal(fetched.get("medicalRecordNumber"), `COMPAT-${RUN}`);
  const team = fetched.get("careTeam") || [];
  assert.ok(team.some((p) => p.id === need("smithProvider").id), "the creating provider joins the care team");
  state.newPatient = patient;
});

check("object ACL from server: role and user permissions", async () => {
  const smith = need("smith");
  const profile = await fetchAs("PatientProfile", need("aliceProfile").id, smith);
  const acl = profile.getACL();
  assert.ok(acl instanceof Parse.ACL, "ACL decoded to Parse.ACL");
  assert.equal(acl.getPublicReadAccess(), false, "no public read on a patient profile");
  assert.equal(acl.getReadAccess(need("alice").id), true, "alice may read her profile");
  assert.equal(acl.getReadAccess(need("bob").id), false, "bob may not");
  const roleRead = Object.keys(acl.toJSON()).filter((k) => k.startsWith("role:"));
  assert.ok(roleRead.length > 0, `role permissions present: ${JSON.stringify(acl.toJSON())}`);
  assert.ok(acl.getRoleReadAccess(`careTeam_${profile.id}`), "care-team role may read");
  return { acl: acl.toJSON() };
});

check("object.save client ACL cannot widen access", async () => {
  const smith = need("smith");
  const plan = new Parse.Object("TreatmentPlan");
  plan.set("patient", need("newPatient"));
  plan.set("summary", "compat plan");
  plan.set("status", "draft");
  const open = new Parse.ACL();
  open.setPublicReadAccess(true);
  open.setPublicWriteAccess(true);
  plan.setACL(open);
  await plan.save(null, as(smith));
  assert.ok(plan.id);
  const fetched = await fetchAs("TreatmentPlan", plan.id, smith);
  assert.equal(fetched.getACL().getPublicReadAccess(), false, "public read was not granted");
  assert.equal(fetched.getACL().getPublicWriteAccess(), false, "public write was not granted");
  await expectParseError(fetchAs("TreatmentPlan", plan.id, need("bob")), 101, "bob reads the plan");
  state.plan = plan;
});

check("object.save LabResult with pointers and dates (preliminary hidden from patient)", async () => {
  const smith = need("smith");
  const effectiveAt = new Date(Date.UTC(2026, 0, 15, 8, 30, 0, 123));
  const lab = new Parse.Object("LabResult");
  lab.set({
    patient: need("aliceProfile"),
    orderedBy: need("smithProvider"),
    orderId: `ORD-COMPAT-${RUN}`,
    testCode: "2951-2",
    codeSystem: "LN",
    testName: "Sodium [Moles/volume] in Serum or Plasma",
    resultValue: "140",
    valueType: "NM",
    units: "mmol/L",
    referenceRange: "136-145",
    interpretation: "N",
    status: "preliminary",
    visibility: "shared",
    effectiveAt,
    resultData: { value: 140, nested: { ok: true } },
  });
  await lab.save(null, as(smith));
  assert.ok(lab.id);
  const fetched = Parse.Object.extend("LabResult").createWithoutData(lab.id);
  await fetched.fetch(as(smith));
  assert.equal(fetched.get("patient").className, "PatientProfile");
  assert.equal(fetched.get("patient").id, need("aliceProfile").id);
  assert.equal(fetched.get("orderedBy").id, need("smithProvider").id);
  assert.ok(fetched.get("effectiveAt") instanceof Date, "date decoded to Date");
  assert.equal(fetched.get("effectiveAt").toISOString(), effectiveAt.toISOString(), "date round-trips to the ms");
  assert.deepEqual(fetched.get("resultData"), { value: 140, nested: { ok: true } });
  assert.equal(fetched.get("status"), "preliminary");
  await expectParseError(fetchAs("LabResult", lab.id, need("alice")), 101, "alice reads a preliminary result");
  state.lab = lab;
});

check("object.save update publishes: patient sees it only when final", async () => {
  const [smith, alice, lab] = need("smith", "alice", "lab");
  lab.set("status", "final");
  await lab.save(null, as(smith));
  const seen = await fetchAs("LabResult", lab.id, alice);
  assert.equal(seen.get("status"), "final");
  assert.ok(seen.get("publishedAt") instanceof Date, "publishedAt set by the server on publish");
  assert.equal(seen.getACL().getReadAccess(alice.id), true);
  await expectParseError(fetchAs("LabResult", lab.id, need("bob")), 101, "bob reads alice's result");
  await expectParseError(fetchAs("LabResult", lab.id, need("jones")), 101, "dr.jones reads alice's result");
});

check("object field ops: add/addUnique/remove/unset", async () => {
  const [smith, lab] = need("smith", "lab");
  const obj = Parse.Object.extend("LabResult").createWithoutData(lab.id);
  // the SDK cannot merge different array ops on one key in one save: one op per save
  for (const step of [
    () => obj.add("attachments", "a"),
    () => obj.addUnique("attachments", "b"),
    () => obj.addUnique("attachments", "a"),
    () => obj.add("attachments", "c"),
    () => obj.remove("attachments", "b"),
    () => obj.set("notes", "to be removed"),
    () => obj.unset("notes"),
  ]) {
    step();
    await obj.save(null, as(smith));
  }
  const fetched = await fetchAs("LabResult", lab.id, smith);
  assert.deepEqual(fetched.get("attachments"), ["a", "c"]);
  assert.equal(fetched.get("notes"), undefined);
  assert.ok(fetched.get("version") >= 2, `version counts changes (got ${fetched.get("version")})`);
});

check("object.fetchWithInclude dotted pointer", async () => {
  const [alice, lab] = need("alice", "lab");
  const obj = new Parse.Object("LabResult", { objectId: lab.id });
  await obj.fetchWithInclude(["patient.user", "orderedBy"], as(alice));
  assert.equal(obj.get("patient").get("medicalRecordNumber"), "DEMO-0001");
  assert.equal(obj.get("patient").get("user").get("username"), "alice@example.org");
  assert.equal(obj.get("orderedBy").get("displayName"), "Dr. Sarah Smith");
});

check("object.save Message by the patient: participants only", async () => {
  const [alice, smith, jones, aliceProfile] = need("alice", "smith", "jones", "aliceProfile");
  const msg = new Parse.Object("Message");
  // `from` is server-set to the caller (sending it is refused with 119 as mass assignment)
  msg.set({ patient: aliceProfile, to: smith, body: `compat ${RUN}`, conversationId: `compat-${RUN}` });
  await msg.save(null, as(alice));
  assert.ok(msg.id);
  assert.ok(msg.createdAt instanceof Date);
  const asSmith = await fetchAs("Message", msg.id, smith);
  assert.equal(asSmith.get("body"), `compat ${RUN}`);
  assert.equal(asSmith.get("from").id, alice.id);
  assert.equal(asSmith.get("to").id, smith.id);
  await expectParseError(fetchAs("Message", msg.id, jones), 101, "dr.jones reads alice's message");
  await expectParseError(fetchAs("Message", msg.id, need("bob")), 101, "bob reads alice's message");
  state.message = msg;
});

check("object.save for another patient is refused", async () => {
  const [alice, bobProfile, smith] = need("alice", "bobProfile", "smith");
  const msg = new Parse.Object("Message");
  msg.set({ patient: bobProfile, to: need("jones"), body: "not mine" });
  let refused = null;
  try {
    await msg.save(null, as(alice));
  } catch (err) {
    refused = err;
  }
  assert.ok(refused, "alice must not write into bob's records");
  assert.ok(
    refused.code !== 1 && refused.code !== 100,
    `a Parse refusal, not a server error: ${JSON.stringify(describeError(refused))}`,
  );
  return { code: refused.code };
});

check("object.saveAll / destroyAll via /batch (Appointment dates)", async () => {
  const [smith, patient] = need("smith", "newPatient");
  const start = new Date(Date.UTC(2026, 11, 1, 9, 0, 0));
  const appts = [0, 1].map((i) => {
    const a = new Parse.Object("Appointment");
    a.set({
      patient,
      provider: need("smithProvider"),
      startAt: new Date(start.getTime() + i * 3600_000),
      endAt: new Date(start.getTime() + i * 3600_000 + 1800_000),
      location: `Room ${i}`,
      status: "scheduled",
      reason: "compat",
    });
    return a;
  });
  await Parse.Object.saveAll(appts, as(smith));
  assert.ok(appts.every((a) => a.id), "both saved");
  const found = await new Parse.Query("Appointment").equalTo("patient", patient).ascending("startAt").find(as(smith));
  assert.deepEqual(found.map((a) => a.get("startAt").toISOString()), appts.map((a) => a.get("startAt").toISOString()));
  state.appointments = appts;
});

check("object.destroy", async () => {
  const [smith, appts] = need("smith", "appointments");
  await appts[0].destroy(as(smith));
  await expectParseError(fetchAs("Appointment", appts[0].id, smith), 101, "get after destroy");
  await Parse.Object.destroyAll([appts[1]], as(smith));
  const left = await new Parse.Query("Appointment").equalTo("patient", need("newPatient")).count(as(smith));
  assert.equal(left, 0);
});

check("object.destroy by another provider -> 101", async () => {
  const [jones, lab] = need("jones", "lab");
  await expectParseError(new Parse.Object("LabResult", { objectId: lab.id }).destroy(as(jones)), 101, "dr.jones destroys");
});

check("object.save unknown class / unknown field -> 119", async () => {
  const smith = need("smith");
  await expectParseError(new Parse.Object(`Compat${RUN}`).save({ x: 1 }, as(smith)), 119, "unknown class");
  const p = new Parse.Object("PatientProfile", { objectId: need("newPatient").id });
  await expectParseError(p.save({ notAField: 1 }, as(smith)), 119, "unknown field");
});

check("AuditLog is read-only even for the master key", async () => {
  const entry = new Parse.Object("AuditLog");
  entry.set({ action: "create", summary: "forged" });
  let failed = false;
  try {
    await entry.save(null, MASTER);
  } catch (err) {
    failed = true;
    assert.ok(err.code !== 100, `a refusal, not a transport error: ${JSON.stringify(describeError(err))}`);
  }
  assert.ok(failed, "saving an AuditLog entry must fail");
});

check("AuditLog: a patient reads only entries about herself and cannot change them", async () => {
  const [alice, aliceProfile, admin] = need("alice", "aliceProfile", "admin");
  const mine = await new Parse.Query("AuditLog").descending("createdAt").limit(1000).find(as(alice));
  assert.ok(mine.length > 0, "alice has audit entries");
  for (const e of mine) {
    const patient = e.get("patient");
    const patientId = typeof patient === "string" ? patient : patient?.id;
    assert.equal(patientId, aliceProfile.id, "only entries about alice");
  }
  const all = await new Parse.Query("AuditLog").limit(1000).find(as(admin));
  assert.ok(all.length > mine.length, "admin sees more");
  for (const opts of [as(alice), as(admin), MASTER]) {
    const entry = Parse.Object.extend("AuditLog").createWithoutData(mine[0].id);
    entry.set("summary", "tampered");
    let refused = null;
    try {
      await entry.save(null, opts);
    } catch (err) {
      refused = err;
    }
    assert.ok(refused && ![1, 100].includes(refused.code), `update refused: ${JSON.stringify(refused && describeError(refused))}`);
    let destroyRefused = null;
    try {
      await Parse.Object.extend("AuditLog").createWithoutData(mine[0].id).destroy(opts);
    } catch (err) {
      destroyRefused = err;
    }
    assert.ok(destroyRefused && ![1, 100].includes(destroyRefused.code), "destroy refused");
  }
  const still = await new Parse.Query("AuditLog").get(mine[0].id, MASTER);
  assert.notEqual(still.get("summary"), "tampered");
  return { alice: mine.length, admin: all.length };
});

check("object.saveAll with one invalid object reports the error per object", async () => {
  const [smith, patient] = need("smith", "newPatient");
  const good = new Parse.Object("Appointment");
  good.set({ patient, startAt: new Date(Date.UTC(2027, 0, 1, 9)), status: "scheduled", reason: "batch-good" });
  const bad = new Parse.Object("Appointment");
  bad.set({ patient, startAt: new Date(Date.UTC(2027, 0, 1, 10)), status: "not-a-status", reason: "batch-bad" });
  let failure = null;
  try {
    await Parse.Object.saveAll([good, bad], as(smith));
  } catch (err) {
    failure = err;
  }
  assert.ok(failure, "saveAll rejects");
  const codes = (failure.errors || [failure]).map((e) => e.code);
  assert.ok(codes.every((c) => ![1, 100].includes(c)), `Parse errors, not server errors: ${JSON.stringify(codes)}`);
  assert.equal(bad.id, undefined, "the invalid object was not saved");
  const saved = await new Parse.Query("Appointment").equalTo("reason", "batch-bad").count(as(smith));
  assert.equal(saved, 0);
  return { code: failure.code, codes };
});

// ------------------------------------------------------------------ queries

check("query security: alice's LabResult find returns only her published results", async () => {
  const alice = need("alice");
  const labs = await new Parse.Query("LabResult").limit(1000).find(as(alice));
  assert.ok(labs.length >= 7, `alice sees her published results (got ${labs.length})`);
  for (const lab of labs) {
    assert.equal(lab.get("patient").id, need("aliceProfile").id, "only her own");
    assert.ok(PUBLISHED.has(lab.get("status")), `only published (got ${lab.get("status")})`);
    assert.notEqual(lab.get("visibility"), "provider-only");
  }
  const prelim = await new Parse.Query("LabResult").equalTo("status", "preliminary").find(as(alice));
  assert.equal(prelim.length, 0, "no preliminary result");
  state.aliceLabs = labs;
  return { count: labs.length };
});

check("query security: where on another patient's pointer returns nothing", async () => {
  const [alice, bobProfile] = need("alice", "bobProfile");
  const q = new Parse.Query("LabResult").equalTo("patient", bobProfile);
  assert.equal((await q.find(as(alice))).length, 0);
  assert.equal(await q.count(as(alice)), 0);
  assert.equal(await q.first(as(alice)), undefined);
  const profiles = await new Parse.Query("PatientProfile").find(as(alice));
  assert.deepEqual(ids(profiles), [need("aliceProfile").id], "alice sees only her own profile");
});

check("query security: dr.jones cannot get alice's PatientProfile -> 101", async () => {
  const [jones, aliceProfile] = need("jones", "aliceProfile");
  await expectParseError(new Parse.Query("PatientProfile").get(aliceProfile.id, as(jones)), 101, "dr.jones get");
  await expectParseError(fetchAs("PatientProfile", aliceProfile.id, jones), 101, "dr.jones fetch");
  const visible = await new Parse.Query("PatientProfile").find(as(jones));
  assert.ok(!visible.some((p) => p.id === aliceProfile.id), "not in dr.jones's find either");
});

// Constraint checks compare the server's answer with the same filter evaluated here on alice's results.
function constraintCheck(name, build, predicate) {
  check(`query.${name}`, async () => {
    const [alice, all] = need("alice", "aliceLabs");
    const q = build(new Parse.Query("LabResult"), all);
    const got = await q.limit(1000).find(as(alice));
    const expected = all.filter((o) => predicate(o, all));
    assert.deepEqual(ids(got), ids(expected));
    return { matched: got.length };
  });
}

const codes = () => state.aliceLabs.map((l) => l.get("testCode")).sort(SORTABLE);
const middleDate = (all) => {
  const dates = all.map((l) => l.get("effectiveAt").getTime()).sort((a, b) => a - b);
  return new Date(dates[Math.floor(dates.length / 2)]);
};

constraintCheck("equalTo", (q) => q.equalTo("testCode", "2345-7"), (o) => o.get("testCode") === "2345-7");
constraintCheck("notEqualTo", (q) => q.notEqualTo("testCode", "2345-7"), (o) => o.get("testCode") !== "2345-7");
constraintCheck(
  "containedIn",
  (q) => q.containedIn("testCode", codes().slice(0, 2)),
  (o) => codes().slice(0, 2).includes(o.get("testCode")),
);
constraintCheck(
  "notContainedIn",
  (q) => q.notContainedIn("testCode", codes().slice(0, 2)),
  (o) => !codes().slice(0, 2).includes(o.get("testCode")),
);
constraintCheck(
  "lessThan (Date)",
  (q, all) => q.lessThan("effectiveAt", middleDate(all)),
  (o, all) => o.get("effectiveAt") < middleDate(all),
);
constraintCheck(
  "lessThanOrEqualTo (Date)",
  (q, all) => q.lessThanOrEqualTo("effectiveAt", middleDate(all)),
  (o, all) => o.get("effectiveAt") <= middleDate(all),
);
constraintCheck(
  "greaterThan (Date)",
  (q, all) => q.greaterThan("effectiveAt", middleDate(all)),
  (o, all) => o.get("effectiveAt") > middleDate(all),
);
constraintCheck(
  "greaterThanOrEqualTo (Date)",
  (q, all) => q.greaterThanOrEqualTo("effectiveAt", middleDate(all)),
  (o, all) => o.get("effectiveAt") >= middleDate(all),
);
constraintCheck(
  "greaterThan/lessThan (number: version)",
  (q) => q.greaterThan("version", 1).lessThanOrEqualTo("version", 100),
  (o) => o.get("version") > 1 && o.get("version") <= 100,
);
constraintCheck("exists", (q) => q.exists("notes"), (o) => o.get("notes") !== undefined && o.get("notes") !== null);
constraintCheck(
  "doesNotExist",
  (q) => q.doesNotExist("notes"),
  (o) => o.get("notes") === undefined || o.get("notes") === null,
);
constraintCheck(
  "Parse.Query.or",
  () =>
    Parse.Query.or(
      new Parse.Query("LabResult").equalTo("testCode", "2345-7"),
      new Parse.Query("LabResult").equalTo("status", "corrected"),
    ),
  (o) => o.get("testCode") === "2345-7" || o.get("status") === "corrected",
);
constraintCheck(
  "Parse.Query.and",
  (q, all) =>
    Parse.Query.and(
      new Parse.Query("LabResult").greaterThan("effectiveAt", new Date(0)),
      new Parse.Query("LabResult").notEqualTo("testCode", "2345-7"),
    ),
  (o) => o.get("testCode") !== "2345-7",
);

constraintCheck(
  "startsWith ($regex)",
  (q) => q.startsWith("testName", "Hemoglobin"),
  (o) => (o.get("testName") || "").startsWith("Hemoglobin"),
);

constraintCheck(
  "endsWith ($regex)",
  (q) => q.endsWith("testName", "in Blood"),
  (o) => (o.get("testName") || "").endsWith("in Blood"),
);
constraintCheck(
  "contains ($regex)",
  (q) => q.contains("testName", "[Mass/volume]"),
  (o) => (o.get("testName") || "").includes("[Mass/volume]"),
);
constraintCheck(
  "matches ($regex with options)",
  (q) => q.matches("testName", "^hemoglobin", "i"),
  (o) => /^hemoglobin/i.test(o.get("testName") || ""),
);

constraintCheck(
  "equalTo (Date)",
  (q, all) => q.equalTo("effectiveAt", middleDate(all)),
  (o, all) => o.get("effectiveAt").getTime() === middleDate(all).getTime(),
);
constraintCheck(
  "greaterThan (createdAt)",
  (q, all) => q.greaterThanOrEqualTo("createdAt", all[Math.floor(all.length / 2)].createdAt),
  (o, all) => o.createdAt >= all[Math.floor(all.length / 2)].createdAt,
);
constraintCheck(
  "equalTo (objectId)",
  (q, all) => q.equalTo("objectId", all[0].id),
  (o, all) => o.id === all[0].id,
);
constraintCheck(
  "containedIn (pointers, one of them another patient's)",
  (q) => q.containedIn("patient", [state.aliceProfile, state.bobProfile]),
  () => true,
);
constraintCheck(
  "notEqualTo (pointer)",
  (q) => q.notEqualTo("patient", state.bobProfile),
  () => true,
);
constraintCheck(
  "Parse.Query.or with another patient's pointer",
  () =>
    Parse.Query.or(
      new Parse.Query("LabResult").equalTo("patient", state.bobProfile),
      new Parse.Query("LabResult").equalTo("testCode", "718-7"),
    ),
  (o) => o.get("testCode") === "718-7",
);
constraintCheck("exists (Date)", (q) => q.exists("publishedAt"), (o) => o.get("publishedAt") instanceof Date);
constraintCheck(
  "containedIn (number)",
  (q) => q.containedIn("version", [2, 3]),
  (o) => [2, 3].includes(o.get("version")),
);

check("query.matchesQuery / doesNotMatchQuery", async () => {
  const [smith, admin] = need("smith", "admin");
  // admin sees every patient's results, so both halves are non-empty
  const all = await new Parse.Query("LabResult").include("patient").limit(1000).find(as(admin));
  const inner = () => new Parse.Query("PatientProfile").equalTo("medicalRecordNumber", "DEMO-0001");
  const matched = await new Parse.Query("LabResult").matchesQuery("patient", inner()).limit(1000).find(as(admin));
  const notMatched = await new Parse.Query("LabResult").doesNotMatchQuery("patient", inner()).limit(1000).find(as(admin));
  const expected = all.filter((l) => l.get("patient").get("medicalRecordNumber") === "DEMO-0001");
  assert.ok(expected.length > 0 && expected.length < all.length, "results of alice and of others");
  assert.deepEqual(ids(matched), ids(expected));
  assert.deepEqual(ids(notMatched), ids(all.filter((l) => !expected.includes(l))));
  // the inner query runs with the caller's rights: bob's profile does not match for dr.smith
  const bobInner = new Parse.Query("PatientProfile").equalTo("medicalRecordNumber", "DEMO-0002");
  assert.equal((await new Parse.Query("LabResult").matchesQuery("patient", bobInner).find(as(smith))).length, 0);
  return { matched: matched.length, notMatched: notMatched.length };
});

check("query oracles on data the caller cannot read find nothing (A02/H03)", async () => {
  const alice = need("alice");
  const users = await new Parse.Query(Parse.User).matches("username", "^bob").find(as(alice));
  assert.equal(users.length, 0, "no _User rows of others by regex");
  assert.equal(await new Parse.Query(Parse.User).count(as(alice)), 1, "alice counts only herself");
  const bobMrn = new Parse.Query("PatientProfile").equalTo("medicalRecordNumber", "DEMO-0002");
  assert.equal(await new Parse.Query("LabResult").matchesQuery("patient", bobMrn).count(as(alice)), 0);
  const prelim = new Parse.Query("LabResult").equalTo("status", "preliminary");
  assert.equal(await Parse.Query.or(prelim, new Parse.Query("LabResult").equalTo("testCode", "1742-6")).count(as(alice)), 0,
    "preliminary results are not countable");
  const sorted = await new Parse.Query("PatientProfile").ascending("medicalRecordNumber").find(as(alice));
  assert.deepEqual(ids(sorted), [need("aliceProfile").id]);
});

check("_User objects never carry secrets (H01)", async () => {
  const [alice, smith] = need("alice", "smith");
  const rows = await new Parse.Query("LabResult").include("patient.user").limit(3).find(as(alice));
  const me = await Parse.User.createWithoutData(alice.id).fetch(as(alice));
  const docs = [me, ...rows.map((r) => r.get("patient").get("user"))];
  for (const u of docs) {
    const json = u.toJSON();
    for (const secret of ["password", "_hashed_password", "hashedPassword", "authData", "_rperm", "_wperm"]) {
      assert.equal(json[secret], undefined, `${secret} not serialized`);
    }
  }
  const asProvider = await new Parse.Query(Parse.User).find(as(smith));
  for (const u of asProvider) {
    assert.ok(u.id === smith.id || u.get("email") === undefined, "no email of other users");
    assert.equal(u.get("sessionToken"), undefined);
  }
});

check("query.ascending / descending", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const asc = await new Parse.Query("LabResult").ascending("effectiveAt").find(as(alice));
  const desc = await new Parse.Query("LabResult").descending("effectiveAt").find(as(alice));
  const times = (xs) => xs.map((o) => o.get("effectiveAt").getTime());
  const sorted = times(all).sort((a, b) => a - b);
  assert.deepEqual(times(asc), sorted);
  assert.deepEqual(times(desc), [...sorted].reverse());
  const multi = await new Parse.Query("LabResult").ascending("status").addDescending("effectiveAt").find(as(alice));
  const expected = [...all].sort(
    (a, b) => SORTABLE(a.get("status"), b.get("status")) || b.get("effectiveAt") - a.get("effectiveAt"),
  );
  assert.deepEqual(multi.map((o) => o.id), expected.map((o) => o.id));
});

check("query.limit / skip", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const order = [...all].sort((a, b) => a.get("effectiveAt") - b.get("effectiveAt")).map((o) => o.id);
  const page = await new Parse.Query("LabResult").ascending("effectiveAt").skip(2).limit(3).find(as(alice));
  assert.deepEqual(page.map((o) => o.id), order.slice(2, 5));
  const first2 = await new Parse.Query("LabResult").ascending("effectiveAt").limit(2).find(as(alice));
  assert.deepEqual(first2.map((o) => o.id), order.slice(0, 2));
  const beyond = await new Parse.Query("LabResult").skip(order.length).find(as(alice));
  assert.equal(beyond.length, 0);
  const clamped = await new Parse.Query("LabResult").limit(5000).find(as(alice));
  assert.equal(clamped.length, order.length, "a limit above the max is clamped, not refused");
});

check("query.select", async () => {
  const alice = need("alice");
  const rows = await new Parse.Query("LabResult").select("testCode", "effectiveAt").find(as(alice));
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.ok(r.id && r.get("testCode"), "selected key present");
    assert.ok(r.get("effectiveAt") instanceof Date);
    assert.equal(r.get("testName"), undefined, "unselected key absent");
    assert.equal(r.get("resultValue"), undefined, "unselected key absent");
  }
});

check("query.include (pointer and dotted path patient.user)", async () => {
  const alice = need("alice");
  const rows = await new Parse.Query("LabResult").include("orderedBy").include("patient.user").find(as(alice));
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.equal(r.get("patient").get("medicalRecordNumber"), "DEMO-0001");
    assert.equal(r.get("patient").get("user").get("username"), "alice@example.org");
    assert.ok(r.get("orderedBy").get("displayName"), "orderedBy included");
  }
});

check("query.include never returns an unreadable object", async () => {
  const smith = need("smith");
  // dr.smith may read alice's profile but not alice's _User row: the pointer stays a bare pointer.
  const rows = await new Parse.Query("LabResult")
    .equalTo("patient", need("aliceProfile"))
    .include("patient.user")
    .find(as(smith));
  assert.ok(rows.length > 0);
  for (const r of rows) {
    assert.equal(r.get("patient").get("medicalRecordNumber"), "DEMO-0001", "patient included");
    const user = r.get("patient").get("user");
    if (user) assert.equal(user.get("username"), undefined, "alice's _User is not expanded for dr.smith");
  }
});

check("query.count", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  assert.equal(await new Parse.Query("LabResult").count(as(alice)), all.length);
  assert.equal(await new Parse.Query("LabResult").equalTo("testCode", "2345-7").count(as(alice)), 1);
});

check("query.withCount / each", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const page = await new Parse.Query("LabResult").withCount().limit(2).find(as(alice));
  assert.equal(page.count, all.length);
  assert.equal(page.results.length, Math.min(2, all.length));
  const seen = [];
  await new Parse.Query("LabResult").each((o) => seen.push(o.id), { ...as(alice), batchSize: 3 });
  assert.deepEqual(seen.sort(), ids(all));
});

check("query.first", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const latest = await new Parse.Query("LabResult").descending("effectiveAt").first(as(alice));
  const expected = [...all].sort((a, b) => b.get("effectiveAt") - a.get("effectiveAt"))[0];
  assert.equal(latest.id, expected.id);
  assert.equal(await new Parse.Query("LabResult").equalTo("testCode", "no-such-code").first(as(alice)), undefined);
});

check("query.get", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const one = await new Parse.Query("LabResult").get(all[0].id, as(alice));
  assert.equal(one.id, all[0].id);
  await expectParseError(new Parse.Query("LabResult").get("doesNotExist0", as(alice)), 101, "get unknown id");
});

check("query on an array of pointers: equalTo(careTeam) and include(careTeam)", async () => {
  const [smith, smithProvider, aliceProfile, bobProfile] = need("smith", "smithProvider", "aliceProfile", "bobProfile");
  const mine = await new Parse.Query("PatientProfile").equalTo("careTeam", smithProvider).include("careTeam").find(as(smith));
  const got = ids(mine);
  assert.ok(got.includes(aliceProfile.id), "alice is on dr.smith's list");
  assert.ok(!got.includes(bobProfile.id), "bob is not");
  const alice = mine.find((p) => p.id === aliceProfile.id);
  const team = alice.get("careTeam");
  assert.ok(Array.isArray(team) && team.length >= 1);
  assert.equal(team.find((t) => t.id === smithProvider.id).get("displayName"), "Dr. Sarah Smith", "array include");
});

check("Parse.Object.fetchAll", async () => {
  const [alice, all] = need("alice", "aliceLabs");
  const stubs = all.slice(0, 3).map((o) => Parse.Object.extend("LabResult").createWithoutData(o.id));
  const fetched = await Parse.Object.fetchAll(stubs, as(alice));
  assert.deepEqual(fetched.map((o) => o.id), all.slice(0, 3).map((o) => o.id));
  assert.ok(fetched.every((o) => o.get("testCode")), "data loaded");
});

check("Parse.Session query returns only the caller's sessions", async () => {
  const alice = need("alice");
  const sessions = await new Parse.Query(Parse.Session).find(as(alice));
  assert.ok(sessions.length >= 1);
  for (const sess of sessions) assert.equal(sess.get("user").id, alice.id);
});

check("query on ProviderProfile directory as a patient", async () => {
  const alice = need("alice");
  const providers = await new Parse.Query("ProviderProfile").ascending("displayName").find(as(alice));
  assert.ok(providers.length >= 2);
  assert.deepEqual(
    providers.map((p) => p.get("displayName")),
    [...providers.map((p) => p.get("displayName"))].sort(SORTABLE),
  );
});

check("query without a session on a sign-in class -> 101 or empty", async () => {
  // make a throwaway session current and log it out, so no other check's session is revoked
  await Parse.User.logIn("bob@example.org", PASSWORD);
  await Parse.User.logOut();
  assert.equal(Parse.User.current(), null);
  try {
    const rows = await new Parse.Query("LabResult").find();
    assert.equal(rows.length, 0, "anonymous sees nothing");
  } catch (err) {
    assert.ok([101, 119, 209].includes(err.code), `refused with a Parse code: ${JSON.stringify(describeError(err))}`);
  }
});

// ------------------------------------------------------------------ cloud functions

check("Parse.Cloud.run myAccessLog", async () => {
  const alice = need("alice");
  const log = await Parse.Cloud.run("myAccessLog", {}, as(alice));
  // the same call with the session taken implicitly from Parse.User.current()
  await Parse.User.become(alice.getSessionToken());
  const implicit = await Parse.Cloud.run("myAccessLog");
  assert.ok(Array.isArray(implicit) && implicit.length >= log.length, "current user's session is sent");
  assert.ok(Array.isArray(log), "an array");
  assert.ok(log.length > 0, "alice has access history (her records were written)");
  for (const entry of log) {
    assert.ok(entry.action, "entry has an action");
    assert.ok(entry.when, "entry has a time");
  }
  return { entries: log.length };
});

check("Parse.Cloud.run unknown function -> 141", async () => {
  await expectParseError(Parse.Cloud.run(`noSuchFunction${RUN}`, {}, as(need("alice"))), 141, "unknown function");
});

check("Parse.Cloud.run issuePortalActivation (staff only)", async () => {
  const [smith, patient] = need("smith", "newPatient");
  await expectParseError(
    Parse.Cloud.run("issuePortalActivation", { patientId: patient.id }, as(need("jones"))),
    101,
    "dr.jones (not on the care team) issues a code",
  );
  await expectParseError(
    Parse.Cloud.run("issuePortalActivation", { patientId: patient.id }, as(need("alice"))),
    101,
    "a patient issues a code",
  );
  const issued = await Parse.Cloud.run("issuePortalActivation", { patientId: patient.id }, as(smith));
  assert.equal(typeof issued.code, "string");
  assert.ok(issued.code.length >= 6);
  assert.ok(issued.expiresAt instanceof Date, "expiresAt decoded to a Date");
  assert.ok(issued.expiresAt > new Date());
  state.activationCode = issued.code;
});

check("Parse.Cloud.run activatePortal (wrong DOB -> 141, then success, then reuse -> 141)", async () => {
  const [code, patient] = need("activationCode", "newPatient");
  const user = new Parse.User();
  const email = `activate-${RUN}@example.org`;
  user.set({ username: email, email, password: "activate-pass-1234" });
  await user.signUp();
  await expectParseError(fetchAs("PatientProfile", patient.id, user), 101, "before activation");
  await expectParseError(
    Parse.Cloud.run("activatePortal", { code, dateOfBirth: "1990-06-05" }, as(user)),
    141,
    "wrong date of birth",
  );
  const result = await Parse.Cloud.run("activatePortal", { code, dateOfBirth: "1990-05-06" }, as(user));
  assert.ok(result.patient, "result has patient");
  assert.equal(result.patient.id, patient.id);
  const mine = await fetchAs("PatientProfile", patient.id, user);
  assert.equal(mine.get("medicalRecordNumber"), `COMPAT-${RUN}`);
  assert.equal(mine.get("user").id, user.id);
  const other = new Parse.User();
  const otherEmail = `activate2-${RUN}@example.org`;
  other.set({ username: otherEmail, email: otherEmail, password: "activate-pass-1234" });
  await other.signUp();
  await expectParseError(
    Parse.Cloud.run("activatePortal", { code, dateOfBirth: "1990-05-06" }, as(other)),
    141,
    "code reused",
  );
  state.activated = user;
});

check("activated patient: own records visible, draft plan hidden", async () => {
  const [user, plan] = need("activated", "plan");
  await expectParseError(fetchAs("TreatmentPlan", plan.id, user), 101, "draft plan");
  const plans = await new Parse.Query("TreatmentPlan").find(as(user));
  assert.equal(plans.length, 0);
  const profiles = await new Parse.Query("PatientProfile").find(as(user));
  assert.deepEqual(ids(profiles), [need("newPatient").id]);
});

// ------------------------------------------------------------------ roles

check("Parse.Role: non-admin cannot create a role", async () => {
  const acl = new Parse.ACL();
  acl.setPublicReadAccess(true);
  const role = new Parse.Role(`compat-forbidden-${RUN}`, acl);
  let failed = false;
  try {
    await role.save(null, as(need("alice")));
  } catch (err) {
    failed = true;
    assert.ok([119, 101].includes(err.code), `refused: ${JSON.stringify(describeError(err))}`);
  }
  assert.ok(failed, "a patient must not create roles");
});

check("Parse.Role: master key creates a role and adds a user", async () => {
  const newbie = need("newbie");
  const acl = new Parse.ACL();
  acl.setPublicReadAccess(false);
  const name = `compatRole_${RUN}`;
  const role = new Parse.Role(name, acl);
  await role.save(null, MASTER);
  assert.ok(role.id);
  role.getUsers().add(newbie);
  await role.save(null, MASTER);
  const found = await new Parse.Query(Parse.Role).equalTo("name", name).find(MASTER);
  assert.deepEqual(ids(found), [role.id]);
  assert.equal(found[0].getName(), name);
  const members = await found[0].getUsers().query().find(MASTER);
  assert.deepEqual(ids(members), [newbie.id]);
  state.role = role;
});

check("Parse.Role: role ACL lets members read the role, not others", async () => {
  const [role, newbie, bob] = need("role", "newbie", "bob");
  const asMember = await new Parse.Query(Parse.Role).equalTo("name", role.getName()).find(as(newbie));
  assert.deepEqual(ids(asMember), [role.id], "member reads its role");
  const asOther = await new Parse.Query(Parse.Role).equalTo("name", role.getName()).find(as(bob));
  assert.equal(asOther.length, 0, "non-member does not see the role");
});

check("Parse.Role: care-team role grants the provider access", async () => {
  const [smith, aliceProfile] = need("smith", "aliceProfile");
  const roles = await new Parse.Query(Parse.Role).equalTo("name", `careTeam_${aliceProfile.id}`).find(as(smith));
  assert.equal(roles.length, 1, "dr.smith sees alice's care-team role");
  const members = await roles[0].getUsers().query().find(MASTER);
  assert.ok(members.some((u) => u.id === smith.id), "dr.smith is a member");
  const profile = await fetchAs("PatientProfile", aliceProfile.id, smith);
  assert.ok(profile.getACL().getRoleReadAccess(roles[0]), "profile ACL names the role");
});

check("Parse.Role: remove user from role", async () => {
  const [role, newbie] = need("role", "newbie");
  role.getUsers().remove(newbie);
  await role.save(null, MASTER);
  const members = await role.getUsers().query().find(MASTER);
  assert.equal(members.length, 0);
  const asFormer = await new Parse.Query(Parse.Role).equalTo("name", role.getName()).find(as(newbie));
  assert.equal(asFormer.length, 0, "former member no longer reads the role");
});

check("user.save: change own password, then logIn with it", async () => {
  const email = `pw-${RUN}@example.org`;
  const user = await Parse.User.signUp(email, "first-pass-1234", { email });
  user.setPassword("second-pass-5678");
  await user.save(null, as(user));
  const again = await Parse.User.logIn(email, "second-pass-5678");
  assert.equal(again.id, user.id);
  await expectParseError(Parse.User.logIn(email, "first-pass-1234"), 101, "old password");
  // another user's row cannot be changed
  const other = Parse.User.createWithoutData(need("bob").id);
  other.set("email", `hijack-${RUN}@example.org`);
  let refused = null;
  try {
    await other.save(null, as(user));
  } catch (err) {
    refused = err;
  }
  assert.ok(refused && ![1, 100].includes(refused.code), `refused: ${JSON.stringify(refused && describeError(refused))}`);
  return { refusedWith: refused.code };
});

// ------------------------------------------------------------------ schemas (master key)

check("Parse.Schema.all / get (master key)", async () => {
  const all = await Parse.Schema.all();
  const names = all.map((c) => c.className);
  for (const c of ["_User", "_Role", "_Session", "PatientProfile", "ProviderProfile", "LabResult", "TreatmentPlan",
    "Message", "Appointment", "AuditLog"]) {
    assert.ok(names.includes(c), `schema lists ${c}`);
  }
  const lab = await new Parse.Schema("LabResult").get();
  assert.equal(lab.className, "LabResult");
  assert.deepEqual(lab.fields.patient, { type: "Pointer", targetClass: "PatientProfile", ...(lab.fields.patient.required === undefined ? {} : { required: lab.fields.patient.required }) });
  assert.equal(lab.fields.effectiveAt.type, "Date");
  assert.equal(lab.fields.ACL.type, "ACL");
  assert.ok(lab.classLevelPermissions, "CLPs present");
  return { classes: names.length };
});

// ------------------------------------------------------------------ run

if (LIST_ONLY) {
  for (const { name } of CHECKS) console.log(JSON.stringify({ check: name }));
  process.exit(0);
}
if (!SERVER_URL || !APP_ID || !MASTER_KEY) {
  console.error("PARSE_SERVER_URL, PARSE_APP_ID and PARSE_MASTER_KEY must be set");
  process.exit(2);
}
Parse.initialize(APP_ID);
Parse.serverURL = SERVER_URL;
Parse.masterKey = MASTER_KEY;
Parse.User.enableUnsafeCurrentUser(); // Node has no browser storage: opt in to current() as the docs say
// The SDK retries every 5xx five times with back-off; one attempt makes a 5xx visible at once
// (the 5xx itself is a failure: the contract says a write must never answer 5xx).
Parse.CoreManager.set("REQUEST_ATTEMPT_LIMIT", 1);

for (const { name, fn } of CHECKS) {
  if (ONLY.length && !ONLY.some((s) => name.includes(s))) continue;
  await runCheck(name, fn);
}

const failed = results.filter((r) => !r.ok);
console.log(
  JSON.stringify({
    summary: { total: results.length, passed: results.length - failed.length, failed: failed.map((r) => r.check) },
  }),
);
process.exit(failed.length ? 1 : 0);
