// An outside court system written in Node.js: what a court's case system does with Rogatory,
// using only the protos of this repository (protos/, Google's vendored in protos/google), npm's
// @grpc/grpc-js, @grpc/proto-loader, protobufjs and nats, and the event catalog
// (protos/rogatory/events/v1/catalog.json). Run by tests/e2e/test_node_client_e2e.py; docs/clients.md
// quotes it.
//
// 广州市黄埔区法院 (gd0112) registers a case, retries it safely with the same request_id and reads
// the rich errors of a bad case and of a request_id reused for another body; it delegates a
// freeze to 中牟县法院 (ha0122), which acknowledges and completes it; then gd0112 reads the case's
// and the matter's events from JetStream through its own durable consumers (one per subject
// family, named and filtered as its NATS credentials allow) and decodes each payload by its
// ce-type. Prints one JSON document on stdout; exits 1 with the error on stderr.
//
// Environment: REGISTRY_ADDR, DELEGATION_ADDR (host:port), NATS_URL, CASE_SEQUENCE (the case
// number's sequence, unique per stack); optional NATS_USER / NATS_PASSWORD (the court's NATS
// credentials from `rogatory nats-auth`), ROGATORY_PROTOS (default: the repository's protos/).

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import { AckPolicy, DeliverPolicy, connect, consumerOpts, createInbox } from "nats";
import protobuf from "protobufjs";

const PROTOS = resolve(process.env.ROGATORY_PROTOS ?? join(dirname(fileURLToPath(import.meta.url)), "../../../protos"));
const CATALOG = JSON.parse(readFileSync(join(PROTOS, "rogatory/events/v1/catalog.json"), "utf8"));
const REQUESTING = "gd0112"; // 广州市黄埔区人民法院
const ENTRUSTED = "ha0122"; // 中牟县人民法院
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTOS] };
const DECODE_OPTIONS = { longs: String, enums: String, defaults: true, oneofs: true };

// --- The contract: services for grpc-js, message types for protobufjs, from protos/ alone -----

const files = ["rogatory/registry/v1/registry.proto", "rogatory/delegation/v1/delegation.proto"];
const loaded = grpc.loadPackageDefinition(protoLoader.loadSync(files, LOADER_OPTIONS));

// The event payloads and google.rpc.Status with its details. The well-known types
// (google/protobuf/*) come with protobufjs, the Google API protos from protos/google.
// descriptor.proto (which google/api/* import) ships with protobufjs as JSON: register it the
// way its other well-known types are (proto-loader does the same, but this must not rely on it).
const require = createRequire(import.meta.url);
protobuf.common("descriptor", require("protobufjs/google/protobuf/descriptor.json").nested.google.nested.protobuf.nested);
const types = new protobuf.Root();
types.resolvePath = (_origin, target) => join(PROTOS, target);
types.loadSync([...new Set(CATALOG.events.map((e) => e.proto)), "google/rpc/status.proto", "google/rpc/error_details.proto"], { keepCase: true });

// --- Calling: the credential, promises, rich errors -------------------------------------------

/** The development credential of a court; under mutual TLS the certificate says who calls. */
function asCourt(court) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer dev:court:${court}`);
  return metadata;
}

function call(client, method, request, metadata) {
  return new Promise((done, fail) => {
    client[method](request, metadata, { deadline: Date.now() + 10_000 }, (error, response) =>
      error ? fail(error) : done(response),
    );
  });
}

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

/** A failed call's google.rpc.Status details (ErrorInfo, BadRequest, …), from its trailers. */
function richError(error) {
  const [bytes] = error.metadata?.get("grpc-status-details-bin") ?? [];
  const out = { code: CODE_NAMES[error.code], message: error.details, reason: null, domain: null, field_violations: [] };
  if (!bytes) return out;
  const status = types.lookupType("google.rpc.Status").decode(bytes);
  for (const any of status.details) {
    const type = types.lookupType(any.type_url.slice(any.type_url.lastIndexOf("/") + 1));
    const detail = type.toObject(type.decode(any.value), DECODE_OPTIONS);
    if (type.fullName === ".google.rpc.ErrorInfo") Object.assign(out, { reason: detail.reason, domain: detail.domain });
    if (type.fullName === ".google.rpc.BadRequest") {
      out.field_violations = detail.field_violations.map((v) => ({ field: v.field, reason: v.reason, description: v.description }));
    }
  }
  return out;
}

async function expectError(promise) {
  try {
    await promise;
  } catch (error) {
    if (error.code !== undefined) return richError(error);
    throw error;
  }
  throw new Error("the call was expected to fail");
}

// --- The court system's work -------------------------------------------------------------------

function caseRequest(requestId, sequence, description = "应收账款在河南省，需委托当地法院冻结") {
  return {
    parent: `courts/${REQUESTING}`,
    request_id: requestId,
    case: {
      case_number: `（2023）粤0112执${sequence}号`,
      parties: [
        { role: "APPLICANT", kind: "ORGANIZATION", display_name: "广州某科技有限公司" },
        { role: "RESPONDENT", kind: "ORGANIZATION", display_name: "河南某建设工程有限公司", id_number: "91110000600037341L" },
      ],
      amount_owed: { currency_code: "CNY", units: "7000000", nanos: 0 },
      description,
    },
  };
}

function attachment(kind, name, digestByte) {
  return { kind, name, size_bytes: "120000", sha256: digestByte.repeat(32) };
}

function freezeRequest(caseName) {
  return {
    parent: `courts/${REQUESTING}`,
    request_id: randomUUID(),
    delegation: {
      case: caseName,
      entrusted_court: `courts/${ENTRUSTED}`,
      matter_kind: "DEPOSITS",
      description: "冻结被执行人对河南某公司的应收账款 7,000,000 元",
      deposits: {
        bank_name: "中国工商银行中牟支行",
        account_number: "6222021001123456789",
        account_holder: "河南某建设工程有限公司",
        measure: "FREEZE",
        amount_fen: "700000000",
      },
      attachments: [
        attachment("DELEGATION_LETTER", "委托执行函.pdf", "01"),
        attachment("RULING", "执行裁定书.pdf", "02"),
        attachment("ASSISTANCE_NOTICE", "协助冻结存款通知书.pdf", "03"),
      ],
      requesting_officer: { display_name: "陈法官", phone: "020-82212345" },
    },
  };
}

async function registerCase(registry, sequence) {
  const request = caseRequest(randomUUID(), sequence);
  const created = await call(registry, "CreateCase", request, asCourt(REQUESTING));
  // A retry (say, after a timeout) sends the very same request: the first answer comes back.
  const retried = await call(registry, "CreateCase", request, asCourt(REQUESTING));
  const changed = caseRequest(request.request_id, sequence, "another body under the same request_id");
  const reused = await expectError(call(registry, "CreateCase", changed, asCourt(REQUESTING)));
  const bad = caseRequest(randomUUID(), sequence);
  bad.case.case_number = `（2023）粤0112执0${sequence}号`; // a sequence with a leading zero
  bad.case.parties[1].id_number = "91110000600037341X"; // a wrong check character
  const invalid = await expectError(call(registry, "CreateCase", bad, asCourt(REQUESTING)));
  return { created, retried, reused, invalid };
}

/** The case reaches the delegation service by event: retry the same request while it is not there yet. */
async function delegate(delegation, caseName) {
  const request = freezeRequest(caseName);
  for (let attempt = 1; ; attempt++) {
    try {
      return { created: await call(delegation, "CreateDelegation", request, asCourt(REQUESTING)), attempts: attempt };
    } catch (error) {
      if (richError(error).reason !== "CASE_NOT_REGISTERED" || attempt === 100) throw error;
      await new Promise((wake) => setTimeout(wake, 100));
    }
  }
}

async function actAsEntrustedCourt(delegation, created) {
  const court = asCourt(ENTRUSTED);
  const officer = { display_name: "李法官", phone: "0371-62171234" };
  const acknowledged = await call(delegation, "AcknowledgeDelegation", { name: created.name, officer, etag: created.etag }, court);
  const completion = {
    outcome: "EXECUTED",
    amount_fen: "700000000",
    result_documents: [attachment("ASSISTANCE_RECEIPT", "协助冻结回执.pdf", "04")],
    note: "应收账款 7,000,000 元已冻结",
  };
  const completed = await call(
    delegation,
    "CompleteDelegation",
    { name: created.name, completion, etag: acknowledged.etag },
    court,
  );
  return [acknowledged, completed];
}

// --- Events: a durable consumer per subject family, payloads decoded by ce-type ----------------

/** `rogatory.v1.delegation.{requesting_court}.{entrusted_court}.submitted` → a regular expression. */
function subjectPattern(template) {
  const tokens = template.split(".").map((t) => (/^\{.*\}$/.test(t) ? "[^.]+" : t.replace(/[-]/g, "\\-")));
  return new RegExp(`^${tokens.join("\\.")}$`);
}

const EVENT_TYPES = new Map(CATALOG.events.map((e) => [e.type, { ...e, pattern: subjectPattern(e.subject) }]));

function decodeEvent(msg) {
  const ceType = msg.headers.get("ce-type");
  const entry = EVENT_TYPES.get(ceType);
  if (!entry) throw new Error(`event type ${ceType} is not in the catalog`);
  if (!entry.pattern.test(msg.subject)) throw new Error(`${ceType} arrived on ${msg.subject}, not ${entry.subject}`);
  const type = types.lookupType(entry.payload);
  return { type: ceType, id: msg.headers.get("ce-id"), subject: msg.subject, payload: entry.payload, body: type.toObject(type.decode(msg.data), DECODE_OPTIONS) };
}

/** The court's consumer on a subject family, as its NATS user may create it: `court-{id}-{family}`, one filter. */
function courtConsumer(court, family) {
  const { filter, consumer } = CATALOG.consumers.court[family];
  return { name: consumer.replace("{court}", court), filter: filter.replace("{court}", court) };
}

async function readFamily(nc, court, family, since, wanted, timeoutMs = 15_000) {
  const { name, filter } = courtConsumer(court, family);
  const jsm = await nc.jetstreamManager({ checkAPI: false }); // a court's user may not call $JS.API.INFO
  await jsm.consumers.delete(CATALOG.stream, name).catch((error) => {
    if (error.api_error?.err_code !== 10014) throw error; // 10014: consumer not found, nothing to start over from
  });
  await jsm.consumers.add(CATALOG.stream, {
    name,
    durable_name: name,
    filter_subject: filter, // created on $JS.API.CONSUMER.CREATE.ROGATORY.{name}.{filter}
    deliver_subject: createInbox(nc.options.inboxPrefix),
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: since.toISOString(),
    ack_policy: AckPolicy.Explicit,
  });
  const sub = await nc.jetstream().subscribe(filter, consumerOpts().bind(CATALOG.stream, name).manualAck());
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  const events = [];
  try {
    for await (const msg of sub) {
      const event = decodeEvent(msg);
      msg.ack(); // after the effect: here, after decoding; a real system after its own commit
      if (wanted.match(event)) events.push(event);
      if (wanted.done(events)) break;
    }
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
    await jsm.consumers.delete(CATALOG.stream, name); // the test leaves the shared stack as it found it
  }
  return { consumer: name, filter, events };
}

// --- Main ---------------------------------------------------------------------------------------

async function main() {
  const since = new Date(Date.now() - 1_000);
  const channel = grpc.credentials.createInsecure(); // production: grpc.credentials.createSsl(ca, key, cert)
  const registry = new loaded.rogatory.registry.v1.RegistryService(process.env.REGISTRY_ADDR, channel);
  const delegation = new loaded.rogatory.delegation.v1.DelegationService(process.env.DELEGATION_ADDR, channel);
  const user = process.env.NATS_USER;
  const nc = await connect({
    servers: process.env.NATS_URL,
    ...(user ? { user, pass: process.env.NATS_PASSWORD } : {}),
    inboxPrefix: `_INBOX_${user ?? `court-${REQUESTING}`}`, // replies come to the court's own inbox only
  });
  try {
    const registered = await registerCase(registry, process.env.CASE_SEQUENCE);
    const caseName = registered.created.name;
    const { created, attempts } = await delegate(delegation, caseName);
    const [acknowledged, completed] = await actAsEntrustedCourt(delegation, created);
    const fetched = await call(delegation, "GetDelegation", { name: created.name }, asCourt(REQUESTING));

    const ofCase = (e) => e.body.case?.name === caseName;
    const ofMatter = (e) => e.body.delegation?.name === created.name;
    const cases = await readFamily(nc, REQUESTING, "cases", since, { match: ofCase, done: (es) => es.length >= 1 });
    const sent = await readFamily(nc, REQUESTING, "sent", since, { match: ofMatter, done: (es) => es.length >= 3 });
    const summary = (family) => ({
      consumer: family.consumer,
      filter: family.filter,
      events: family.events.map((e) => ({
        type: e.type,
        payload: e.payload,
        subject: e.subject,
        name: (e.body.delegation ?? e.body.case).name,
        state: e.body.delegation?.state ?? null,
        action: e.body.transition?.action ?? null,
      })),
    });
    const result = {
      case: {
        name: caseName,
        case_number: registered.created.case_number,
        retry_same_request_id: registered.retried.name,
      },
      request_id_reused: registered.reused,
      invalid_case: registered.invalid,
      delegation: {
        name: created.name,
        create_attempts: attempts,
        states: [created, acknowledged, completed].map((d) => d.state),
        fetched_state: fetched.state,
        completed_amount_fen: fetched.completion?.amount_fen ?? null,
      },
      events: { cases: summary(cases), sent: summary(sent) },
    };
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  } finally {
    registry.close();
    delegation.close();
    await nc.drain();
  }
}

main().catch((error) => {
  process.stderr.write(`court_system failed: ${error.stack ?? error}\n${error.metadata ? JSON.stringify(richError(error)) : ""}\n`);
  process.exit(1);
});
