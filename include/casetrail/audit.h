/* audit.h: the tamper-evident record. Canonical encoding of an event, the per-chain SHA-256
 * hash chain, and keyed digests of free text. Pure functions: no I/O, no SQL.
 *
 * What is hashed (DECISIONS.md): ids, action names, enum values, amounts, timestamps and
 * HMAC-SHA256 digests of free text. The free text itself lives outside the hash (event_texts),
 * so a lawful erasure can overwrite it and destroy its salt without breaking the chain. */
#ifndef CASETRAIL_AUDIT_H
#define CASETRAIL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

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

/* Writes HMAC-SHA256(salt, text) as 64 lowercase hex chars + NUL into out. */
void ct_audit_text_digest(const unsigned char *salt, size_t salt_len, const char *text,
                          char out[2 * CT_HASH_LEN + 1]);

/* Hex helpers. ct_hex_encode writes 2*len chars + NUL. ct_hex_decode returns false on bad
 * input or a length other than 2*len. */
void ct_hex_encode(const unsigned char *in, size_t len, char *out);
bool ct_hex_decode(const char *hex, unsigned char *out, size_t len);

/* Fills salt with CT_SALT_LEN random bytes; false when the random source fails. */
bool ct_audit_new_salt(unsigned char salt[CT_SALT_LEN]);

#endif
