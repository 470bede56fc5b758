/* evidence.c: assembles a ticket's evidence bundle from one REPEATABLE READ snapshot (the chain
 * as the verifier reads it, and the rows beside it), so the bundle's parts agree with each
 * other, then records who took it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casetrail/audit.h"
#include "casetrail/evidence.h"
#include "casetrail/store.h"

static void add_hex(cJSON *obj, const char *name, const unsigned char *bytes, size_t n)
{
    char hex[2 * 64 + 1];
    ct_hex_encode(bytes, n, hex);
    cJSON_AddStringToObject(obj, name, hex);
}

static void add_str_or_null(cJSON *obj, const char *name, const char *v)
{
    if (v != NULL)
        cJSON_AddStringToObject(obj, name, v);
    else
        cJSON_AddNullToObject(obj, name);
}

/* One event as the chain hashed it: its fields, the canonical encoding, prev_hash and hash. */
static cJSON *event_json(const struct ct_chain *c, const struct ct_event_row *e)
{
    char *data = NULL, *digests = NULL, *canon = NULL;
    cJSON *j = cJSON_CreateObject();
    bool ok = ct_audit_recanon(e->data, &data) && ct_audit_recanon(e->digests, &digests);
    struct ct_event_fields f = {
        .chain = c->name, .seq = e->seq, .action = e->action, .actor_type = e->actor_type,
        .actor_id = e->actor_id, .from_value = e->from_value, .to_value = e->to_value,
        .occurred_us = e->occurred_us, .recorded_us = e->recorded_us, .data = data,
        .digests = digests,
    };
    if (ok)
        canon = ct_audit_canonical(&f);
    cJSON_AddNumberToObject(j, "seq", (double)e->seq);
    cJSON_AddStringToObject(j, "action", e->action);
    cJSON_AddStringToObject(j, "actor_type", e->actor_type);
    add_str_or_null(j, "actor_id", e->actor_id);
    add_str_or_null(j, "from", e->from_value);
    add_str_or_null(j, "to", e->to_value);
    /* microsecond times as decimal strings: as JSON numbers they print in exponent form and
     * pass 2^53 in some readers, and the hash needs them digit for digit */
    char us[32];
    snprintf(us, sizeof(us), "%lld", e->occurred_us);
    cJSON_AddStringToObject(j, "occurred_us", us);
    snprintf(us, sizeof(us), "%lld", e->recorded_us);
    cJSON_AddStringToObject(j, "recorded_us", us);
    add_str_or_null(j, "data", data);
    add_str_or_null(j, "digests", digests);
    /* what was hashed, byte for byte (null when the stored row cannot be encoded: verify
     * names that event as a break) */
    add_str_or_null(j, "canonical", canon);
    add_hex(j, "prev_hash", e->prev_hash, CT_HASH_LEN);
    add_hex(j, "hash", e->hash, CT_HASH_LEN);
    free(data);
    free(digests);
    free(canon);
    return j;
}

/* The seq of event id: a chain's events are appended in order, so ids rise with seq. */
static long long seq_of(const struct ct_chain *c, long long id)
{
    size_t lo = 0, hi = c->nevents;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->events[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nevents && c->events[lo].id == id)
        return c->events[lo].seq;
    for (size_t k = 0; k < c->nevents; k++) { /* rows written some other way: still right */
        if (c->events[k].id == id)
            return c->events[k].seq;
    }
    return 0;
}

/* The texts the digests vouch for, each with its salt so the digest can be recomputed. */
static cJSON *texts_json(const struct ct_chain *c)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < c->ntexts; i++) {
        const struct ct_text_row *t = &c->texts[i];
        long long seq = seq_of(c, t->event_id);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "seq", (double)seq);
        cJSON_AddStringToObject(j, "field", t->field);
        add_str_or_null(j, "text", t->body);
        if (t->has_salt)
            add_hex(j, "salt", t->salt, CT_SALT_LEN);
        else
            cJSON_AddNullToObject(j, "salt");
        cJSON_AddItemToArray(arr, j);
    }
    return arr;
}

static cJSON *verification_json(const struct ct_verify_result *r)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "ok", r->ok);
    cJSON_AddNumberToObject(j, "events", (double)r->events);
    cJSON_AddStringToObject(j, "head", r->head);
    cJSON_AddNumberToObject(j, "redacted", (double)r->redacted);
    if (!r->ok) {
        cJSON_AddNumberToObject(j, "first_bad_seq", (double)r->first_bad_seq);
        cJSON_AddStringToObject(j, "reason", r->reason);
    }
    return j;
}

/* The ticket's leaf in the digest's Merkle tree and the path from it to the root. */
static cJSON *proof_json(struct ct_chain_head *heads, size_t n, const char *chain)
{
    unsigned char *path = NULL;
    size_t idx = 0, plen = 0;
    cJSON *j, *arr;
    if (!ct_audit_merkle_proof(heads, n, chain, &idx, &path, &plen))
        return cJSON_CreateNull(); /* not among the leaves: the checkers say so */
    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seq", (double)heads[idx].seq);
    cJSON_AddStringToObject(j, "hash", heads[idx].hash);
    cJSON_AddNumberToObject(j, "leaf_index", (double)idx);
    cJSON_AddNumberToObject(j, "tree_size", (double)n);
    arr = cJSON_AddArrayToObject(j, "path");
    for (size_t k = 0; k < plen; k++) {
        char hex[2 * CT_HASH_LEN + 1];
        ct_hex_encode(path + k * CT_HASH_LEN, CT_HASH_LEN, hex);
        cJSON_AddItemToArray(arr, cJSON_CreateString(hex));
    }
    free(path);
    return j;
}

/* The newest signed digest covering the ticket, as signed, with the ticket's inclusion proof;
 * JSON null when none covers it yet. */
static ct_rc digest_json(struct ct_tx *tx, long long ticket_id, const char *chain, cJSON **out,
                         struct ct_err *err)
{
    char *payload = NULL, signature[129] = "";
    struct ct_chain_head *heads = NULL;
    size_t n = 0;
    long long covers = 0;
    ct_rc rc =
        ct_store_digest_covering(tx, ticket_id, &payload, signature, &covers, &heads, &n, err);
    *out = NULL;
    if (rc != CT_OK)
        return rc;
    if (payload == NULL) {
        *out = cJSON_CreateNull();
        return CT_OK;
    }
    *out = cJSON_CreateObject();
    cJSON_AddStringToObject(*out, "payload", payload);
    cJSON_AddStringToObject(*out, "alg", "ed25519");
    cJSON_AddStringToObject(*out, "signature", signature);
    cJSON_AddItemToObject(*out, "proof", proof_json(heads, n, chain));
    free(payload);
    free(heads);
    return CT_OK;
}

struct bundle_job {
    long long id;
    cJSON *bundle;
};

static ct_rc bundle_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct bundle_job *j = arg;
    struct ct_chain c;
    struct ct_verify_result r;
    cJSON *ticket = NULL, *rows = NULL, *digest = NULL, *events;
    ct_rc rc;

    cJSON_Delete(j->bundle); /* a retried transaction starts over */
    j->bundle = NULL;
    rc = ct_store_chain_load(tx, "ticket", j->id, &c, err); /* first: it sets the snapshot */
    if (rc != CT_OK)
        return rc;
    rc = ct_store_ticket_get(tx, j->id, &ticket, err);
    if (rc == CT_OK)
        rc = ct_store_evidence_rows(tx, j->id, &rows, err);
    if (rc == CT_OK)
        rc = digest_json(tx, j->id, c.name, &digest, err);
    if (rc != CT_OK) {
        cJSON_Delete(ticket);
        cJSON_Delete(rows);
        ct_chain_free(&c);
        return rc;
    }
    ct_audit_verify_chain(&c, &r);
    j->bundle = cJSON_CreateObject();
    cJSON_AddStringToObject(j->bundle, "format", CT_EVIDENCE_FORMAT);
    cJSON_AddStringToObject(j->bundle, "chain", c.name);
    cJSON_AddItemToObject(j->bundle, "ticket", ticket);
    events = cJSON_AddArrayToObject(j->bundle, "events");
    for (size_t i = 0; i < c.nevents; i++)
        cJSON_AddItemToArray(events, event_json(&c, &c.events[i]));
    cJSON_AddItemToObject(j->bundle, "texts", texts_json(&c));
    cJSON_AddItemToObject(j->bundle, "head", cJSON_CreateObject());
    cJSON *head = cJSON_GetObjectItemCaseSensitive(j->bundle, "head");
    cJSON_AddNumberToObject(head, "seq", (double)c.head_seq);
    add_hex(head, "hash", c.head, CT_HASH_LEN);
    for (const char *part = "messages\0receipts\0approvals\0media\0"; *part != '\0';
         part += strlen(part) + 1)
        cJSON_AddItemToObject(j->bundle, part, cJSON_DetachItemFromObject(rows, part));
    cJSON_AddItemToObject(j->bundle, "verification", verification_json(&r));
    cJSON_AddItemToObject(j->bundle, "digest", digest);
    cJSON_Delete(rows);
    ct_chain_free(&c);
    return CT_OK;
}

struct log_job {
    const struct ct_user *who;
    long long ticket_id;
    long long items;
};

static ct_rc log_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct log_job *j = arg;
    return ct_store_access_log(tx, j->who->id, "evidence", j->ticket_id, NULL, j->items, err);
}

ct_rc ct_evidence_bundle(struct ct_pool *pool, const struct ct_user *who, long long ticket_id,
                         cJSON **out, struct ct_err *err)
{
    struct bundle_job j = {ticket_id, NULL};
    struct log_job l = {who, ticket_id, 0};
    char at[32];
    time_t now = time(NULL);
    struct tm tm;
    ct_rc rc;

    *out = NULL;
    rc = ct_store_in_tx(pool, bundle_tx, &j, err);
    if (rc != CT_OK) {
        cJSON_Delete(j.bundle);
        return rc == CT_E_NOT_FOUND
                   ? ct_err_set(err, CT_E_NOT_FOUND, "ticket_not_found", "ticket %lld not found",
                                ticket_id)
                   : rc;
    }
    l.items = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j.bundle, "events"));
    rc = ct_store_in_tx(pool, log_tx, &l, err);
    if (rc != CT_OK) {
        cJSON_Delete(j.bundle);
        return rc;
    }
    gmtime_r(&now, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(j.bundle, "generated_at", at);
    cJSON_AddStringToObject(j.bundle, "generated_for", who->name);
    *out = j.bundle;
    return CT_OK;
}
