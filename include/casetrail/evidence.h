/* evidence.h: a ticket's evidence bundle for disputes: one self-contained JSON document that
 * anyone can check offline (docs/audit-format.md says how): the ticket, every event with its
 * canonical encoding and hashes, the texts with their digests and salts, every message with the
 * raw webhook receipt it came in (base64, SHA-256, signature header), approvals, media hashes
 * and the chain's verification result. Each bundle given out is recorded in the access log. */
#ifndef CASETRAIL_EVIDENCE_H
#define CASETRAIL_EVIDENCE_H

#include <cjson/cJSON.h>

#include "casetrail/err.h"
#include "casetrail/model.h"

struct ct_pool;

#define CT_EVIDENCE_FORMAT "casetrail-evidence-v1"

/* Builds ticket_id's bundle for who (*out owned by the caller) and records the read in the
 * access log; no bundle is handed out unrecorded. CT_E_NOT_FOUND for an unknown ticket. */
ct_rc ct_evidence_bundle(struct ct_pool *pool, const struct ct_user *who, long long ticket_id,
                         cJSON **out, struct ct_err *err);

#endif
