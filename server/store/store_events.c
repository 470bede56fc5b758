/* store_events.c: appending to a hash chain. The chain owner's row (ticket or user) is locked
 * first, so concurrent appends to one chain serialise and seqs stay gapless. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "casetrail/audit.h"
#include "casetrail/log.h"
#include "store_internal.h"

long long ct_store_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Unix microseconds as a UTC calendar time and the microseconds past its second. */
static long split_us(long long us, struct tm *tm)
{
    time_t secs = (time_t)(us / 1000000LL);
    long frac = (long)(us % 1000000LL);
    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    gmtime_r(&secs, tm);
    return frac;
}

void ct_store_fmt_ts(long long us, char out[48])
{
    struct tm tm;
    long frac = split_us(us, &tm);
    snprintf(out, 48, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* v's last n decimal digits at p, zero-padded; returns the end. */
static char *digits(char *p, long v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + n;
}

void ct_store_fmt_iso(long long us, char out[48])
{
    struct tm tm;
    long frac = split_us(us, &tm);
    int year = tm.tm_year + 1900;
    char *p = out;

    if (year < 0 || year > 9999) {
        snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        return;
    }
    /* by hand: snprintf was a tenth of a timeline page's CPU in casetrail (two per item) */
    p = digits(p, year, 4);
    *p++ = '-';
    p = digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = digits(p, frac, 6);
    *p++ = 'Z';
    *p = '\0';
}

bool ct_store_bytea(const PGresult *res, int row, int col, unsigned char *out, size_t len)
{
    const char *v;
    if (PQgetisnull(res, row, col))
        return false;
    v = PQgetvalue(res, row, col);
    if (strncmp(v, "\\x", 2) != 0)
        return false;
    return ct_hex_decode(v + 2, out, len);
}

/* Fetches (creating on first use) the salt of scope, in one round trip. CT_E_CONFLICT when
 * it was destroyed. */
static ct_rc get_salt(struct ct_tx *tx, const char *scope, unsigned char salt[CT_SALT_LEN],
                      struct ct_err *err)
{
    unsigned char fresh[CT_SALT_LEN];
    PGresult *res;

    if (!ct_audit_new_salt(fresh))
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not generate a salt");
    const char *pv[] = {scope, (const char *)fresh};
    const int pl[] = {0, CT_SALT_LEN};
    const int pf[] = {0, 1};
    /* the CTE's insert is invisible to the same statement's SELECT, hence the UNION */
    res = ct_tx_exec_bin(tx,
                         "WITH ins AS (INSERT INTO text_salts (scope, salt) VALUES ($1, $2)"
                         " ON CONFLICT (scope) DO NOTHING RETURNING salt)"
                         " SELECT salt, true FROM ins UNION ALL"
                         " SELECT salt, salt IS NOT NULL FROM text_salts WHERE scope = $1",
                         2, pv, pl, pf, err);
    OPENSSL_cleanse(fresh, sizeof(fresh));
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 0) {
        /* another transaction created the scope while we waited on its insert: our statement's
         * snapshot predates it, a new statement sees it */
        PQclear(res);
        res = ct_tx_exec(tx, "SELECT salt FROM text_salts WHERE scope = $1", 1, pv, err);
        if (res == NULL)
            return err->rc;
    }
    bool ok = PQntuples(res) >= 1 && ct_store_bytea(res, 0, 0, salt, CT_SALT_LEN);
    PQclear(res);
    if (!ok)
        return ct_err_set(err, CT_E_CONFLICT, "erased", "the text salt of %s was destroyed", scope);
    return CT_OK;
}

/* get_salt, remembered for the rest of a batched transaction. */
static ct_rc salt_of(struct ct_tx *tx, const char *scope, unsigned char salt[CT_SALT_LEN],
                     struct ct_err *err)
{
    if (tx->defer != NULL && ct_defer_salt_find(tx->defer, scope, salt))
        return CT_OK;
    ct_rc rc = get_salt(tx, scope, salt, err);
    if (rc == CT_OK && tx->defer != NULL)
        ct_defer_salt_add(tx->defer, scope, salt);
    return rc;
}

/* The scope of the event's first text, whose salt lock_chain fetches on the way. */
static const char *first_scope(const struct ct_event_new *ev)
{
    for (int i = 0; i < ev->ntexts; i++)
        if (ev->texts[i].body != NULL)
            return ev->texts[i].salt_scope;
    return NULL;
}

/* Locks the chain owner and reads its head, and the salt of the first text's scope when it
 * exists (*have_salt), saving get_salt's round trip in the common case. The shared advisory
 * lock lets `casetrail digest` wait for every append in flight and hold new ones back while it
 * reads a consistent point. */
static ct_rc lock_chain(struct ct_tx *tx, const struct ct_event_new *ev, long long *last_seq,
                        unsigned char head[CT_HASH_LEN], unsigned char salt[CT_SALT_LEN],
                        bool *have_salt, struct ct_err *err)
{
    struct ct_params p = {0};
    const char *sql;
    PGresult *res;

    *have_salt = false;
    if (strcmp(ev->chain_kind, CT_CHAIN_TICKET) == 0)
        sql = "SELECT last_seq, chain_head, pg_advisory_xact_lock_shared(" CT_DIGEST_LOCK "),"
              " (SELECT salt FROM text_salts WHERE scope = $2)"
              " FROM tickets WHERE id = $1 FOR UPDATE";
    else if (strcmp(ev->chain_kind, CT_CHAIN_USER) == 0)
        sql = "SELECT last_seq, chain_head, pg_advisory_xact_lock_shared(" CT_DIGEST_LOCK "),"
              " (SELECT salt FROM text_salts WHERE scope = $2)"
              " FROM users WHERE id = $1 FOR UPDATE";
    else
        return ct_err_set(err, CT_E_INTERNAL, "internal", "unknown chain kind");
    ct_param_ll(&p, ev->chain_id);
    ct_param_str(&p, first_scope(ev));
    res = ct_tx_query(tx, sql, &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "not_found", "%s %lld not found", ev->chain_kind,
                          ev->chain_id);
    }
    *last_seq = atoll(PQgetvalue(res, 0, 0));
    if (!ct_store_bytea(res, 0, 1, head, CT_HASH_LEN))
        memset(head, 0, CT_HASH_LEN);
    /* NULL: no salt yet, or a destroyed one; get_salt tells them apart */
    *have_salt = ct_store_bytea(res, 0, 3, salt, CT_SALT_LEN);
    PQclear(res);
    return CT_OK;
}

/* Builds {"field": digest} for the event's texts; *out is canonical JSON (caller frees) or
 * NULL when there are no texts. */
static ct_rc digest_texts(struct ct_tx *tx, const struct ct_event_new *ev,
                          unsigned char salt[CT_SALT_LEN], bool have_first, char **out,
                          struct ct_err *err)
{
    cJSON *obj = NULL;
    ct_rc rc = CT_OK;

    *out = NULL;
    /* scope whose salt is in salt[]: lock_chain may have fetched the first one */
    const char *have = have_first ? first_scope(ev) : NULL;
    for (int i = 0; i < ev->ntexts; i++) {
        char hex[2 * CT_HASH_LEN + 1];
        if (ev->texts[i].body == NULL)
            continue;
        if (have == NULL || strcmp(have, ev->texts[i].salt_scope) != 0) {
            rc = salt_of(tx, ev->texts[i].salt_scope, salt, err);
            if (rc != CT_OK)
                goto out;
        }
        have = ev->texts[i].salt_scope;
        ct_audit_text_digest(salt, CT_SALT_LEN, ev->texts[i].body, hex);
        if (obj == NULL)
            obj = cJSON_CreateObject();
        if (obj == NULL || cJSON_AddStringToObject(obj, ev->texts[i].field, hex) == NULL) {
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
            goto out;
        }
    }
    if (obj != NULL) {
        *out = ct_audit_canonical_json(obj);
        if (*out == NULL)
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
out:
    cJSON_Delete(obj);
    return rc;
}

/* The event's texts as a JSON array of {field, body, salt_scope} for jsonb_to_recordset; *out
 * is NULL when there are none (caller frees). */
static ct_rc texts_json(const struct ct_event_new *ev, char **out, struct ct_err *err)
{
    cJSON *arr = NULL;
    *out = NULL;
    for (int i = 0; i < ev->ntexts; i++) {
        if (ev->texts[i].body == NULL)
            continue;
        if (arr == NULL && (arr = cJSON_CreateArray()) == NULL)
            goto oom;
        cJSON *t = cJSON_CreateObject();
        if (t == NULL)
            goto oom;
        cJSON_AddItemToArray(arr, t); /* arr owns t from here */
        if (cJSON_AddStringToObject(t, "field", ev->texts[i].field) == NULL ||
            cJSON_AddStringToObject(t, "body", ev->texts[i].body) == NULL ||
            cJSON_AddStringToObject(t, "salt_scope", ev->texts[i].salt_scope) == NULL)
            goto oom;
    }
    if (arr == NULL)
        return CT_OK;
    *out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    return CT_OK;
oom:
    cJSON_Delete(arr);
    return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
}

/* The event, its texts and the chain owner's new head in one statement: one round trip where
 * there were three (the texts' foreign key is checked at the statement's end, when the event
 * row exists). $1 is the ticket and $2 the user, one of them NULL. */
#define APPEND_SQL                                                                            \
    "WITH e AS (INSERT INTO events (ticket_id, user_id, seq, action, actor_type, actor_id,"   \
    " from_value, to_value, data, digests, occurred_at, recorded_at, prev_hash, hash)"        \
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13, $14)"     \
    " RETURNING id),"                                                                          \
    " x AS (INSERT INTO event_texts (event_id, field, body, salt_scope)"                       \
    " SELECT e.id, t.field, t.body, t.salt_scope FROM e, jsonb_to_recordset("                 \
    " coalesce($15::jsonb, '[]')) AS t (field text, body text, salt_scope text)),"            \
    " ht AS (UPDATE tickets SET last_seq = $3, chain_head = $14,"                            \
    "  updated_at = CASE WHEN $16 THEN now() ELSE updated_at END,"                            \
    "  last_message_at = CASE WHEN $16 AND $17::timestamptz IS NOT NULL"                      \
    "   THEN greatest(last_message_at, $17::timestamptz) ELSE last_message_at END"            \
    "  WHERE id = $1),"                                                                        \
    " hu AS (UPDATE users SET last_seq = $3, chain_head = $14 WHERE id = $2)"                 \
    " SELECT id FROM e"

/* A batched transaction's append: the chain is locked (and its head read) once, the event
 * held with its digests; store_defer.c hashes and writes it before COMMIT. */
static ct_rc append_deferred(struct ct_tx *tx, const struct ct_event_new *ev, long long *seq_out,
                             struct ct_err *err)
{
    unsigned char head[CT_HASH_LEN], salt[CT_SALT_LEN];
    char *digests = NULL, *texts = NULL;
    long long last_seq = 0;
    bool have_salt = false, ticket = strcmp(ev->chain_kind, CT_CHAIN_TICKET) == 0;
    ct_rc rc = CT_OK;

    int chain = ct_defer_chain_find(tx->defer, ticket, ev->chain_id);
    if (chain < 0) {
        rc = lock_chain(tx, ev, &last_seq, head, salt, &have_salt, err);
        if (rc != CT_OK)
            goto out;
        if (have_salt)
            ct_defer_salt_add(tx->defer, first_scope(ev), salt);
        chain = ct_defer_chain_add(tx->defer, ticket, ev->chain_id, last_seq, head);
        if (chain < 0) {
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
            goto out;
        }
    }
    rc = digest_texts(tx, ev, salt, false, &digests, err);
    if (rc == CT_OK)
        rc = texts_json(ev, &texts, err);
    if (rc != CT_OK) {
        free(digests);
        goto out;
    }
    rc = ct_defer_event(tx->defer, chain, ev, digests, texts, seq_out, err);
    if (rc == CT_OK && ticket)
        ct_tx_touch(tx, ev->chain_id);
out:
    OPENSSL_cleanse(salt, sizeof(salt));
    return rc;
}

ct_rc ct_store_event_append(struct ct_tx *tx, const struct ct_event_new *ev, long long *seq_out,
                            struct ct_err *err)
{
    unsigned char prev[CT_HASH_LEN], hash[CT_HASH_LEN], salt[CT_SALT_LEN];
    char chain[48];
    struct ct_params p = {0};
    char *data = NULL, *digests = NULL, *texts = NULL;
    long long last_seq = 0;
    bool have_salt = false;
    PGresult *res = NULL;
    ct_rc rc;

    if (tx->defer != NULL)
        return append_deferred(tx, ev, seq_out, err);
    rc = lock_chain(tx, ev, &last_seq, prev, salt, &have_salt, err);
    if (rc != CT_OK)
        goto out;
    rc = digest_texts(tx, ev, salt, have_salt, &digests, err);
    if (rc != CT_OK)
        goto out;
    if (ev->data != NULL)
        data = ct_audit_canonical_json(ev->data);
    if (ev->data != NULL && data == NULL) {
        rc = ct_err_set(err, CT_E_INTERNAL, "internal", "event data is not canonical");
        goto out;
    }
    snprintf(chain, sizeof(chain), "%s:%lld", ev->chain_kind, ev->chain_id);
    struct ct_event_fields f = {
        .chain = chain,
        .seq = last_seq + 1,
        .action = ev->action,
        .actor_type = ev->actor_type,
        .actor_id = ev->actor_id,
        .from_value = ev->from_value,
        .to_value = ev->to_value,
        .recorded_us = ct_store_now_us(),
        .data = data,
        .digests = digests,
    };
    f.occurred_us = ev->occurred_us != 0 ? ev->occurred_us : f.recorded_us;
    ct_audit_event_hash(prev, &f, hash);

    bool is_ticket = strcmp(ev->chain_kind, CT_CHAIN_TICKET) == 0;
    ct_param_id(&p, is_ticket ? ev->chain_id : 0);
    ct_param_id(&p, is_ticket ? 0 : ev->chain_id);
    ct_param_ll(&p, f.seq);
    ct_param_str(&p, ev->action);
    ct_param_str(&p, ev->actor_type);
    ct_param_str(&p, ev->actor_id);
    ct_param_str(&p, ev->from_value);
    ct_param_str(&p, ev->to_value);
    ct_param_str(&p, data);
    ct_param_str(&p, digests);
    ct_param_ts(&p, true, f.occurred_us);
    ct_param_ts(&p, true, f.recorded_us);
    ct_param_bin(&p, prev, CT_HASH_LEN);
    ct_param_bin(&p, hash, CT_HASH_LEN);
    rc = texts_json(ev, &texts, err);
    if (rc != CT_OK)
        goto out;
    ct_param_str(&p, texts);
    ct_param_bool(&p, is_ticket && ev->touch);
    ct_param_ts(&p, ev->touch_us != 0, ev->touch_us);
    res = ct_tx_query(tx, APPEND_SQL, &p, err);
    if (res == NULL) {
        rc = err->rc;
        goto out;
    }
    if (seq_out != NULL)
        *seq_out = f.seq;
    if (is_ticket)
        ct_tx_touch(tx, ev->chain_id); /* live updates, once this commits */
out:
    OPENSSL_cleanse(salt, sizeof(salt));
    PQclear(res);
    free(data);
    free(digests);
    free(texts);
    return rc;
}
