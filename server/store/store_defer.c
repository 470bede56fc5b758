/* store_defer.c: the set-based writes of a group commit. In a batched transaction the message
 * rows and chain events of every webhook in the group are held in memory and written just
 * before COMMIT in two statements (one for the messages, one for the events, their texts and
 * the chains' heads), instead of one round trip and one executor start per row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "casetrail/audit.h"
#include "store_internal.h"

struct dchain {
    bool ticket;
    long long id;
    long long last_seq;              /* seqs handed out so far, written or not */
    unsigned char head[CT_HASH_LEN]; /* hash of the last event hashed (at flush) */
    bool dirty;                      /* has events since the last flush */
    bool touch;
    long long touch_us;
};

struct dsalt {
    char *scope;
    unsigned char salt[CT_SALT_LEN];
};

struct dmsg {
    char *wamid, *direction, *type, *body, *payload, *context_wamid, *target_wamid;
    long long ticket_id, contact_id, receipt_id, sent_us, received_us;
    long long id; /* 0 until written */
    char sha256[65];
};

struct devent {
    int chain;
    long long seq;
    char *action, *actor_type, *actor_id, *from_value, *to_value;
    cJSON *data; /* owned; a message event's ids are filled in at flush */
    char *digests, *texts;
    long long occurred_us, recorded_us;
    int msg; /* the deferred message this event tells of, -1 for none */
};

struct drule {
    char *text;
    long long rule_id; /* 0: no rule matches */
    char pattern[1024];
};

struct ct_defer {
    struct drule *rules; /* complaint-rule answers fetched for the whole group */
    size_t nrules, caprules;
    struct dchain *chains;
    size_t nchains, capchains;
    struct dsalt *salts;
    size_t nsalts, capsalts;
    struct dmsg *msgs;
    size_t nmsgs, capmsgs, written; /* msgs[0..written) are in the database */
    struct devent *events;
    size_t nevents, capevents;
};

/* Grows *arr (of elem-sized items) to hold one more; false on OOM. */
static bool grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* strdup that keeps NULL; *ok turns false on OOM. */
static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *c = strdup(s);
    if (c == NULL)
        *ok = false;
    return c;
}

struct ct_defer *ct_defer_new(void)
{
    return calloc(1, sizeof(struct ct_defer));
}

static void free_msg(struct dmsg *m)
{
    free(m->wamid);
    free(m->direction);
    free(m->type);
    free(m->body);
    free(m->payload);
    free(m->context_wamid);
    free(m->target_wamid);
}

static void free_event(struct devent *e)
{
    free(e->action);
    free(e->actor_type);
    free(e->actor_id);
    free(e->from_value);
    free(e->to_value);
    cJSON_Delete(e->data);
    free(e->digests);
    free(e->texts);
}

void ct_defer_free(struct ct_defer *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nsalts; i++) {
        OPENSSL_cleanse(d->salts[i].salt, CT_SALT_LEN);
        free(d->salts[i].scope);
    }
    for (size_t i = 0; i < d->nmsgs; i++)
        free_msg(&d->msgs[i]);
    for (size_t i = 0; i < d->nevents; i++)
        free_event(&d->events[i]);
    for (size_t i = 0; i < d->nrules; i++)
        free(d->rules[i].text);
    free(d->rules);
    free(d->chains);
    free(d->salts);
    free(d->msgs);
    free(d->events);
    free(d);
}

int ct_defer_chain_find(const struct ct_defer *d, bool ticket, long long id)
{
    for (size_t i = 0; i < d->nchains; i++)
        if (d->chains[i].ticket == ticket && d->chains[i].id == id)
            return (int)i;
    return -1;
}

int ct_defer_chain_add(struct ct_defer *d, bool ticket, long long id, long long last_seq,
                       const unsigned char head[CT_HASH_LEN])
{
    if (!grow((void **)&d->chains, &d->capchains, d->nchains, sizeof(*d->chains)))
        return -1;
    struct dchain *c = &d->chains[d->nchains];
    memset(c, 0, sizeof(*c));
    c->ticket = ticket;
    c->id = id;
    c->last_seq = last_seq;
    memcpy(c->head, head, CT_HASH_LEN);
    return (int)d->nchains++;
}

bool ct_defer_salt_find(const struct ct_defer *d, const char *scope,
                        unsigned char salt[CT_SALT_LEN])
{
    for (size_t i = 0; i < d->nsalts; i++) {
        if (strcmp(d->salts[i].scope, scope) == 0) {
            memcpy(salt, d->salts[i].salt, CT_SALT_LEN);
            return true;
        }
    }
    return false;
}

void ct_defer_salt_add(struct ct_defer *d, const char *scope, const unsigned char salt[CT_SALT_LEN])
{
    for (size_t i = 0; i < d->nsalts; i++)
        if (strcmp(d->salts[i].scope, scope) == 0)
            return; /* a scope's salt never changes within the transaction */
    /* a full memo only costs a lookup next time */
    if (!grow((void **)&d->salts, &d->capsalts, d->nsalts, sizeof(*d->salts)))
        return;
    char *s = strdup(scope);
    if (s == NULL)
        return;
    d->salts[d->nsalts].scope = s;
    memcpy(d->salts[d->nsalts].salt, salt, CT_SALT_LEN);
    d->nsalts++;
}

bool ct_defer_rule_find(const struct ct_defer *d, const char *text, long long *rule_id,
                        char pattern[1024])
{
    for (size_t i = 0; i < d->nrules; i++) {
        if (strcmp(d->rules[i].text, text) == 0) {
            *rule_id = d->rules[i].rule_id;
            memcpy(pattern, d->rules[i].pattern, sizeof(d->rules[i].pattern));
            return true;
        }
    }
    return false;
}

void ct_defer_rule_add(struct ct_defer *d, const char *text, long long rule_id,
                       const char *pattern)
{
    /* a full memo only costs the query next time */
    if (!grow((void **)&d->rules, &d->caprules, d->nrules, sizeof(*d->rules)))
        return;
    struct drule *r = &d->rules[d->nrules];
    if ((r->text = strdup(text)) == NULL)
        return;
    r->rule_id = rule_id;
    snprintf(r->pattern, sizeof(r->pattern), "%s", pattern);
    d->nrules++;
}

bool ct_defer_has_wamid(const struct ct_defer *d, const char *wamid)
{
    for (size_t i = d->written; i < d->nmsgs; i++)
        if (strcmp(d->msgs[i].wamid, wamid) == 0)
            return true;
    return false;
}

ct_rc ct_defer_message(struct ct_defer *d, const struct ct_message_new *m, long long *placeholder,
                       struct ct_err *err)
{
    bool ok = true;
    if (!grow((void **)&d->msgs, &d->capmsgs, d->nmsgs, sizeof(*d->msgs)))
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    struct dmsg *x = &d->msgs[d->nmsgs];
    memset(x, 0, sizeof(*x));
    x->wamid = dup_or_null(m->wamid, &ok);
    x->direction = dup_or_null(m->direction, &ok);
    x->type = dup_or_null(m->type, &ok);
    x->body = dup_or_null(m->body, &ok);
    x->payload = dup_or_null(m->payload, &ok);
    x->context_wamid = dup_or_null(m->context_wamid, &ok);
    x->target_wamid = dup_or_null(m->target_wamid, &ok);
    x->ticket_id = m->ticket_id;
    x->contact_id = m->contact_id;
    x->receipt_id = m->receipt_id;
    x->sent_us = m->sent_us;
    x->received_us = ct_store_now_us();
    if (!ok || x->wamid == NULL || x->payload == NULL) {
        free_msg(x);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    d->nmsgs++;
    *placeholder = -(long long)d->nmsgs; /* message k is -(k + 1) */
    return CT_OK;
}

ct_rc ct_defer_event(struct ct_defer *d, int chain, const struct ct_event_new *ev, char *digests,
                     char *texts, long long *seq_out, struct ct_err *err)
{
    bool ok = true;
    if (!grow((void **)&d->events, &d->capevents, d->nevents, sizeof(*d->events))) {
        free(digests);
        free(texts);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    struct dchain *c = &d->chains[chain];
    struct devent *e = &d->events[d->nevents];
    memset(e, 0, sizeof(*e));
    e->chain = chain;
    e->digests = digests;
    e->texts = texts;
    e->action = dup_or_null(ev->action, &ok);
    e->actor_type = dup_or_null(ev->actor_type, &ok);
    e->actor_id = dup_or_null(ev->actor_id, &ok);
    e->from_value = dup_or_null(ev->from_value, &ok);
    e->to_value = dup_or_null(ev->to_value, &ok);
    e->msg = -1;
    if (ev->data != NULL) {
        e->data = cJSON_Duplicate(ev->data, true);
        ok = ok && e->data != NULL;
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(ev->data, "message_id");
        if (cJSON_IsNumber(mid) && mid->valuedouble < 0) {
            long long k = -(long long)mid->valuedouble - 1;
            if (k >= (long long)d->nmsgs) {
                free_event(e);
                return ct_err_set(err, CT_E_INTERNAL, "internal", "unknown message placeholder");
            }
            e->msg = (int)k;
        }
    }
    if (!ok) {
        free_event(e);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    e->recorded_us = ct_store_now_us();
    e->occurred_us = ev->occurred_us != 0 ? ev->occurred_us : e->recorded_us;
    e->seq = ++c->last_seq;
    c->dirty = true;
    if (c->ticket && ev->touch) {
        c->touch = true;
        if (ev->touch_us > c->touch_us)
            c->touch_us = ev->touch_us;
    }
    if (seq_out != NULL)
        *seq_out = e->seq;
    d->nevents++;
    return CT_OK;
}

/* ---- flush ---- */

static bool add_ts(cJSON *o, const char *k, long long us)
{
    char ts[48];
    ct_store_fmt_ts(us, ts);
    return cJSON_AddStringToObject(o, k, ts) != NULL;
}

static bool add_id(cJSON *o, const char *k, long long v)
{
    return v != 0 ? ct_json_add_int(o, k, v) : cJSON_AddNullToObject(o, k) != NULL;
}

static cJSON *msg_json(const struct dmsg *m, size_t i)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    bool ok = ct_json_add_int(o, "i", (long long)i) &&
              ct_json_add_str(o, "wamid", m->wamid) &&
              add_id(o, "ticket_id", m->ticket_id) && add_id(o, "contact_id", m->contact_id) &&
              ct_json_add_str(o, "direction", m->direction) &&
              ct_json_add_str(o, "type", m->type) && ct_json_add_str(o, "body", m->body) &&
              ct_json_add_raw(o, "payload", m->payload) &&
              ct_json_add_str(o, "context_wamid", m->context_wamid) &&
              add_ts(o, "sent_at", m->sent_us) && add_id(o, "receipt_id", m->receipt_id) &&
              add_ts(o, "received_at", m->received_us) &&
              ct_json_add_str(o, "target_wamid", m->target_wamid);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The rows' order is the arrival order, so ids grow as they would one by one. A wamid another
 * transaction stored meanwhile comes back missing: the group is then written again without
 * deferring, where that message is a duplicate or a reused id like any other. */
#define MESSAGES_SQL                                                                          \
    "INSERT INTO messages (wamid, ticket_id, contact_id, direction, type, body, payload,"     \
    " context_wamid, sent_at, receipt_id, received_at, target_wamid)"                        \
    " SELECT wamid, ticket_id, contact_id, direction, type, body, payload, context_wamid,"   \
    " sent_at, receipt_id, received_at, target_wamid FROM jsonb_to_recordset($1::jsonb) AS r" \
    " (i int, wamid text, ticket_id bigint, contact_id bigint, direction text, type text,"   \
    " body text, payload jsonb, context_wamid text, sent_at timestamptz, receipt_id bigint," \
    " received_at timestamptz, target_wamid text) ORDER BY i"                                \
    " ON CONFLICT (wamid) DO NOTHING RETURNING wamid, id,"                                   \
    " encode(sha256(convert_to(payload::text, 'UTF8')), 'hex')"

static ct_rc flush_messages(struct ct_tx *tx, struct ct_defer *d, struct ct_err *err)
{
    size_t n = d->nmsgs - d->written;
    cJSON *arr = cJSON_CreateArray();
    PGresult *res = NULL;
    ct_rc rc = CT_OK;

    for (size_t i = d->written; arr != NULL && i < d->nmsgs; i++) {
        if (!ct_json_append(arr, msg_json(&d->msgs[i], i)))
            goto oom;
    }
    res = ct_tx_query_json(tx, MESSAGES_SQL, arr, NULL, err);
    if (res == NULL) {
        rc = err->rc;
        goto out;
    }
    if ((size_t)PQntuples(res) != n) {
        rc = ct_err_set(err, CT_E_CONFLICT, "batch_conflict",
                        "a message of the group was stored meanwhile");
        err->retryable = false;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *w = PQgetvalue(res, r, 0);
        for (size_t i = d->written; i < d->nmsgs; i++) {
            if (d->msgs[i].id == 0 && strcmp(d->msgs[i].wamid, w) == 0) {
                d->msgs[i].id = atoll(PQgetvalue(res, r, 1));
                ct_store_copy(d->msgs[i].sha256, sizeof(d->msgs[i].sha256), res, r, 2);
                break;
            }
        }
    }
    for (size_t i = d->written; i < d->nmsgs; i++) {
        if (d->msgs[i].id == 0) {
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "a deferred message was not written");
            goto out;
        }
    }
    d->written = d->nmsgs;
    goto out;
oom:
    rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
out:
    PQclear(res);
    cJSON_Delete(arr);
    return rc;
}

/* Fills a message event's placeholder with its message's id and payload hash, then hashes the
 * event onto its chain. *row gets the event's row for the statement. */
static ct_rc hash_event(struct ct_defer *d, struct devent *e, cJSON **row, struct ct_err *err)
{
    struct dchain *c = &d->chains[e->chain];
    unsigned char prev[CT_HASH_LEN], hash[CT_HASH_LEN];
    char chain[48], prev_hex[2 * CT_HASH_LEN + 1], hash_hex[2 * CT_HASH_LEN + 1];
    char *data = NULL;

    *row = NULL;
    if (e->msg >= 0) {
        const struct dmsg *m = &d->msgs[e->msg];
        /* each item belongs to e->data once replaced: freed here only when it was not */
        cJSON *id = cJSON_CreateNumber((double)m->id);
        if (id == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(e->data, "message_id", id)) {
            cJSON_Delete(id);
            return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        }
        cJSON *sha = cJSON_CreateString(m->sha256);
        if (sha == NULL ||
            !cJSON_ReplaceItemInObjectCaseSensitive(e->data, "payload_sha256", sha)) {
            cJSON_Delete(sha);
            return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
        }
        e->msg = -1;
    }
    if (e->data != NULL && (data = ct_audit_canonical_json(e->data)) == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "event data is not canonical");
    snprintf(chain, sizeof(chain), "%s:%lld", c->ticket ? CT_CHAIN_TICKET : CT_CHAIN_USER, c->id);
    struct ct_event_fields f = {
        .chain = chain, .seq = e->seq, .action = e->action, .actor_type = e->actor_type,
        .actor_id = e->actor_id, .from_value = e->from_value, .to_value = e->to_value,
        .occurred_us = e->occurred_us, .recorded_us = e->recorded_us, .data = data,
        .digests = e->digests,
    };
    memcpy(prev, c->head, CT_HASH_LEN);
    ct_audit_event_hash(prev, &f, hash);
    memcpy(c->head, hash, CT_HASH_LEN);
    ct_hex_encode(prev, CT_HASH_LEN, prev_hex);
    ct_hex_encode(hash, CT_HASH_LEN, hash_hex);

    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && ct_json_add_int(o, "i", (long long)(e - d->events)) &&
              add_id(o, "ticket_id", c->ticket ? c->id : 0) &&
              add_id(o, "user_id", c->ticket ? 0 : c->id) &&
              ct_json_add_int(o, "seq", e->seq) &&
              ct_json_add_str(o, "action", e->action) &&
              ct_json_add_str(o, "actor_type", e->actor_type) &&
              ct_json_add_str(o, "actor_id", e->actor_id) &&
              ct_json_add_str(o, "from_value", e->from_value) &&
              ct_json_add_str(o, "to_value", e->to_value) && ct_json_add_str(o, "data", data) &&
              ct_json_add_str(o, "digests", e->digests) &&
              add_ts(o, "occurred_at", e->occurred_us) &&
              add_ts(o, "recorded_at", e->recorded_us) &&
              ct_json_add_str(o, "prev_hash", prev_hex) && ct_json_add_str(o, "hash", hash_hex) &&
              ct_json_add_raw(o, "texts", e->texts);
    free(data);
    if (!ok) {
        cJSON_Delete(o);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    *row = o;
    return CT_OK;
}

static cJSON *head_json(const struct dchain *c)
{
    char head[2 * CT_HASH_LEN + 1];
    ct_hex_encode(c->head, CT_HASH_LEN, head);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && add_id(o, "ticket_id", c->ticket ? c->id : 0) &&
              add_id(o, "user_id", c->ticket ? 0 : c->id) &&
              ct_json_add_int(o, "last_seq", c->last_seq) &&
              ct_json_add_str(o, "head", head) &&
              cJSON_AddBoolToObject(o, "touch", c->touch) != NULL &&
              (c->touch_us != 0 ? add_ts(o, "touch_at", c->touch_us)
                                : cJSON_AddNullToObject(o, "touch_at") != NULL);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Every held event, its texts (joined back by hash, which is unique), and each chain's new head
 * and activity, in one statement. The heads' tickets are found by id = ANY: joined on id alone,
 * the planner guesses 100 rows for the function and reads all of tickets for every group. */
#define EVENTS_SQL                                                                            \
    "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r (i int, ticket_id"           \
    " bigint, user_id bigint, seq bigint, action text, actor_type text, actor_id text,"      \
    " from_value text, to_value text, data text, digests text, occurred_at timestamptz,"     \
    " recorded_at timestamptz, prev_hash text, hash text, texts jsonb)),"                   \
    " e AS (INSERT INTO events (ticket_id, user_id, seq, action, actor_type, actor_id,"      \
    " from_value, to_value, data, digests, occurred_at, recorded_at, prev_hash, hash)"        \
    " SELECT ticket_id, user_id, seq, action, actor_type, actor_id, from_value, to_value,"   \
    " data::jsonb, digests::jsonb, occurred_at, recorded_at, decode(prev_hash, 'hex'),"      \
    " decode(hash, 'hex') FROM r ORDER BY i RETURNING id, hash),"                            \
    " x AS (INSERT INTO event_texts (event_id, field, body, salt_scope)"                      \
    " SELECT e.id, t.field, t.body, t.salt_scope FROM r JOIN e ON e.hash = decode(r.hash,"   \
    " 'hex'), jsonb_to_recordset(r.texts) AS t (field text, body text, salt_scope text)"      \
    " WHERE r.texts IS NOT NULL),"                                                            \
    " h AS (SELECT * FROM jsonb_to_recordset($2::jsonb) AS h (ticket_id bigint, user_id"      \
    " bigint, last_seq bigint, head text, touch boolean, touch_at timestamptz)),"             \
    " ht AS (UPDATE tickets t SET last_seq = h.last_seq, chain_head = decode(h.head, 'hex'),"\
    "  updated_at = CASE WHEN h.touch THEN now() ELSE t.updated_at END,"                      \
    "  last_message_at = CASE WHEN h.touch AND h.touch_at IS NOT NULL"                        \
    "   THEN greatest(t.last_message_at, h.touch_at) ELSE t.last_message_at END"              \
    "  FROM h WHERE t.id = h.ticket_id AND t.id = ANY (ARRAY(SELECT ticket_id FROM h))),"      \
    " hu AS (UPDATE users u SET last_seq = h.last_seq, chain_head = decode(h.head, 'hex')"    \
    "  FROM h WHERE u.id = h.user_id)"                                                         \
    " SELECT count(*) FROM e"

static ct_rc flush_events(struct ct_tx *tx, struct ct_defer *d, struct ct_err *err)
{
    cJSON *rows = cJSON_CreateArray(), *heads = cJSON_CreateArray();
    PGresult *res = NULL;
    ct_rc rc = CT_OK;

    if (rows == NULL || heads == NULL)
        goto oom;
    for (size_t i = 0; i < d->nevents; i++) {
        cJSON *row;
        rc = hash_event(d, &d->events[i], &row, err);
        if (rc != CT_OK)
            goto out;
        if (!ct_json_append(rows, row))
            goto oom;
    }
    for (size_t i = 0; i < d->nchains; i++) {
        if (!d->chains[i].dirty)
            continue;
        if (!ct_json_append(heads, head_json(&d->chains[i])))
            goto oom;
    }
    /* the transaction helper's final flush: nothing follows these events but COMMIT, which
     * goes in the same round trip (the count check below cannot fail short of a bug: every
     * row of r is inserted or the statement fails) */
    tx->commit_next = tx->finishing;
    res = ct_tx_query_json(tx, EVENTS_SQL, rows, heads, err);
    tx->commit_next = false; /* sent with it, or never: a failure rolls back */
    if (res == NULL) {
        rc = err->rc;
        goto out;
    }
    if (PQntuples(res) != 1 || atoll(PQgetvalue(res, 0, 0)) != (long long)d->nevents) {
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "deferred events were not all written");
        goto out;
    }
    for (size_t i = 0; i < d->nevents; i++)
        free_event(&d->events[i]);
    d->nevents = 0;
    for (size_t i = 0; i < d->nchains; i++) {
        d->chains[i].dirty = false;
        d->chains[i].touch = false;
        d->chains[i].touch_us = 0;
    }
    goto out;
oom:
    rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
out:
    PQclear(res);
    cJSON_Delete(rows);
    cJSON_Delete(heads);
    return rc;
}

ct_rc ct_defer_flush(struct ct_tx *tx, struct ct_err *err)
{
    struct ct_defer *d = tx->defer;
    ct_rc rc = CT_OK;
    if (d == NULL)
        return CT_OK;
    if (d->written < d->nmsgs)
        rc = flush_messages(tx, d, err);
    if (rc == CT_OK && d->nevents > 0)
        rc = flush_events(tx, d, err);
    return rc;
}
