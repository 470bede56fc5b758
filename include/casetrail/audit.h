/* audit.h: the tamper-evident record. Canonical encoding of an event, the per-chain SHA-256
 * hash chain, and keyed digests of free text. Pure functions: no I/O, no SQL.
 *
 * What is hashed (docs/DECISIONS.md#audit-chain): ids, action names, enum values, amounts,
 * timestamps and HMAC-SHA256 digests of free text. The free text itself lives outside the hash
 * (event_texts), so a lawful erasure can overwrite it and destroy its salt without breaking
 * the chain. */
#ifndef CASETRAIL_AUDIT_H
#define CASETRAIL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/text.h" /* ct_hex_*, used with every digest */

#define CT_HASH_LEN 32
#define CT_SALT_LEN 32

/* The hashed fields of one event. Strings are borrowed; NULL means SQL NULL. */
struct ct_event_fields {
    const char *chain;        /* "ticket:<id>" or "user:<id>" */
    long long seq;            /* 1-based, gapless within the chain */
    const char *action;       /* "user.created", "status.changed", ... */
    const char *actor_type;   /* "agent" | "system" | "customer" */
    const char *actor_id;     /* user id, "cli", wa_id ... */
    const char *from_value;   /* enum value or id, never free text */
    const char *to_value;
    long long occurred_us;    /* Unix microseconds */
    long long recorded_us;
    const char *data;         /* canonical JSON (ct_audit_canonical_json) or NULL */
    const char *digests;      /* canonical JSON {"field":"hex digest"} or NULL */
};

/* hash = SHA-256(prev || canonical(ev)). prev is CT_HASH_LEN bytes (all zero for seq 1). */
void ct_audit_event_hash(const unsigned char prev[CT_HASH_LEN], const struct ct_event_fields *ev,
                         unsigned char out[CT_HASH_LEN]);

/* Returns the canonical encoding as a newly allocated string (caller frees), NULL on OOM.
 * Exposed for tests and for documentation of the format. */
char *ct_audit_canonical(const struct ct_event_fields *ev);

/* Canonical JSON of a cJSON tree: object keys sorted bytewise, no spaces, integers only.
 * Returns a newly allocated string (caller frees); NULL when the tree holds a non-integer
 * number or on OOM. */
char *ct_audit_canonical_json(const cJSON *item);

/* A stored jsonb text (data, digests) in the canonical form it was hashed in, newly allocated
 * into *out (NULL stays NULL). false on OOM or when the value has no canonical form (then it
 * cannot be what was hashed). */
bool ct_audit_recanon(const char *stored, char **out);

/* Writes HMAC-SHA256(salt, text) as 64 lowercase hex chars + NUL into out. */
void ct_audit_text_digest(const unsigned char *salt, size_t salt_len, const char *text,
                          char out[2 * CT_HASH_LEN + 1]);

/* Fills salt with CT_SALT_LEN random bytes; false when the random source fails. */
bool ct_audit_new_salt(unsigned char salt[CT_SALT_LEN]);

/* ---- verification ---- */

/* One stored event as read back. Strings are owned by the row (freed by ct_chain_free). */
struct ct_event_row {
    long long id, seq;
    char *action, *actor_type, *actor_id, *from_value, *to_value;
    char *data, *digests;            /* jsonb as text, or NULL */
    long long occurred_us, recorded_us;
    unsigned char prev_hash[CT_HASH_LEN], hash[CT_HASH_LEN];
};

/* One free text that an event's digests vouch for (event_texts, or a message body). */
struct ct_text_row {
    long long event_id;
    char *field;
    char *body;                      /* NULL once erased */
    bool has_salt;                   /* false once the salt was destroyed */
    unsigned char salt[CT_SALT_LEN];
};

/* One field of a row people see through the API, as stored now (read in the same snapshot as
 * the chain): the verifier compares it with what the chain's events say it must be. */
struct ct_fact {
    char table[20];                  /* "tickets", "approvals", "messages", "webhook_receipts",
                                      * "users" */
    long long id;
    char field[24];
    char *value;                     /* text form; NULL for SQL NULL; owned */
};

struct ct_chain {
    char name[48];                   /* "ticket:12" or "user:3" */
    struct ct_event_row *events;     /* by seq */
    size_t nevents;
    struct ct_text_row *texts;       /* by event_id */
    size_t ntexts;
    struct ct_fact *facts;           /* the rows this chain vouches for or that claim it */
    size_t nfacts;
    long long head_seq;              /* what the owner row says the chain holds */
    bool has_head;
    unsigned char head[CT_HASH_LEN];
};

void ct_chain_free(struct ct_chain *c);

struct ct_verify_result {
    bool ok;
    long long events;
    char head[2 * CT_HASH_LEN + 1];  /* hex of the last hash ("" for an empty chain) */
    long long redacted;              /* texts erased or whose salt was destroyed */
    long long first_bad_seq;         /* when !ok; for a row no event records, 0 */
    char reason[240];
    /* when a stored row disagrees with the chain: which one ("" otherwise) */
    char table[20];
    long long row;
    char field[24];
};

/* Recomputes the chain: gapless seqs, each prev_hash linking, each hash over its fields, each
 * text present and matching its digest (a missing text or salt is a break unless the chain
 * records an erasure), the owner's head matching the last event, and then every fact: each row
 * field the chain vouches for must hold what replaying its events gives, each row the events
 * name must exist, and no row may claim the chain without an event (ct_audit_reconcile). */
void ct_audit_verify_chain(const struct ct_chain *c, struct ct_verify_result *r);

/* The fact check alone (called by ct_audit_verify_chain once the chain itself verifies):
 * replays the events into the fields they determine and compares them with c->facts. The
 * first difference fills r (table, row, field and a reason naming both values). */
void ct_audit_reconcile(const struct ct_chain *c, struct ct_verify_result *r);

/* What an evidence bundle held, once checked. */
struct ct_bundle_counts {
    size_t events, texts, receipts;
    long long digest_seq;  /* the digest covers seq 1..digest_seq (0: no digest) */
    char digest_time[40];  /* that digest's time */
    bool digest_signed;    /* its signature was checked with the key */
};

/* Checks an evidence bundle (docs/audit-format.md) with no database: seqs, links, hashes and
 * head; every text against its digest and every digest against a text; every raw receipt
 * against its SHA-256 and, given app_secret, its X-Hub-Signature-256; events against the
 * receipts and messages they name; the signed digest's proof and, given verify_key (a PEM
 * file), its signature (a bundle without a digest fails then). false with the first bad item
 * named in why. */
bool ct_audit_check_bundle(const cJSON *bundle, const char *app_secret, const char *verify_key,
                           struct ct_bundle_counts *n, char *why, size_t len);

/* One chain head as it stands at a digest point. */
struct ct_chain_head {
    char chain[48];
    long long seq;
    char hash[2 * CT_HASH_LEN + 1];
};

/* Version 1 root over heads: SHA-256 of "chain seq hash\n" lines sorted by chain (bytewise).
 * Sorts heads in place. Writes hex into root. Kept to check digests made before version 2. */
void ct_audit_root(struct ct_chain_head *heads, size_t n, char root[2 * CT_HASH_LEN + 1]);

/* Version 2: a Merkle tree (RFC 9162's shape) over the heads sorted by chain, leaf i being
 * SHA-256(0x00 || "chain seq hash") and a node SHA-256(0x01 || left || right), so one ticket's
 * inclusion is proved by about log2(chains) hashes instead of every chain's head. Sorts heads
 * in place; writes the root's hex. */
void ct_audit_merkle_root(struct ct_chain_head *heads, size_t n, char root[2 * CT_HASH_LEN + 1]);

/* The inclusion proof of chain's head: its index among the sorted heads and the sibling hashes
 * from leaf to root (*path newly allocated, CT_HASH_LEN bytes each, caller frees). Sorts heads
 * in place. false when chain has no head among them (or out of memory). */
bool ct_audit_merkle_proof(struct ct_chain_head *heads, size_t n, const char *chain,
                           size_t *index, unsigned char **path, size_t *plen);

/* The leaf hash of one head. */
void ct_audit_merkle_leaf(const char *chain, long long seq, const char *hash_hex,
                          unsigned char out[CT_HASH_LEN]);

/* Folds a leaf with its proof (RFC 9162 section 2.1.3.2) into out; false when the path does not
 * fit a tree of that size at that index. */
bool ct_audit_merkle_fold(const unsigned char leaf[CT_HASH_LEN], size_t index, size_t size,
                          const unsigned char *path, size_t plen, unsigned char out[CT_HASH_LEN]);

struct ct_digest {
    int version;                     /* 1 (flat root) or 2 (Merkle root, chains counted) */
    char time[40];                   /* ISO 8601 UTC */
    long long events;                /* events recorded up to the digest point */
    long long chains;                /* version 2: chains with an event up to it (the leaves) */
    long long upto_id;               /* the digest point: every event with id <= upto_id */
    char root[2 * CT_HASH_LEN + 1];
    char signature[2 * 64 + 1];      /* hex Ed25519 signature, "" when unsigned */
};

/* The exact text that is signed and printed (without the signature), newly allocated. */
char *ct_audit_digest_payload(const struct ct_digest *d);
/* The one-line JSON of a digest (with its signature when present), newly allocated. */
char *ct_audit_digest_json(const struct ct_digest *d);
/* Parses a digest line; false (with reason) when malformed. */
bool ct_audit_digest_parse(const char *json, struct ct_digest *d, char *reason, size_t len);
/* Signs d with the Ed25519 private key in the PEM file at key_path. */
bool ct_audit_digest_sign(struct ct_digest *d, const char *key_path, char *reason, size_t len);
/* Checks d's signature with the key in the PEM file at key_path (public or private). */
bool ct_audit_digest_check(const struct ct_digest *d, const char *key_path, char *reason,
                           size_t len);

#endif
