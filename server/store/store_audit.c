/* store_audit.c: reading chains back for verification, and the digest over all chain heads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/audit.h"
#include "casetrail/log.h"
#include "store_internal.h"

#define US(col) CT_SQL_US(col)

static char *dup_col(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

#define EVENT_COLS                                                                            \
    "SELECT id, seq, action, actor_type, actor_id, from_value, to_value, data::text,"         \
    " digests::text, " US("occurred_at") ", " US("recorded_at") ", prev_hash, hash FROM events"

static ct_rc load_events(struct ct_tx *tx, bool ticket, const char *id, struct ct_chain *c,
                         struct ct_err *err)
{
    const char *pv[] = {id};
    PGresult *res = ct_tx_exec(
        tx,
        ticket ? EVENT_COLS " WHERE ticket_id = $1 ORDER BY seq, id"
               : EVENT_COLS " WHERE ticket_id IS NULL AND user_id = $1 ORDER BY seq, id",
        1, pv, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    c->events = calloc(n > 0 ? (size_t)n : 1, sizeof(*c->events));
    if (c->events == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct ct_event_row *e = &c->events[i];
        e->id = atoll(PQgetvalue(res, i, 0));
        e->seq = atoll(PQgetvalue(res, i, 1));
        e->action = dup_col(res, i, 2);
        e->actor_type = dup_col(res, i, 3);
        e->actor_id = dup_col(res, i, 4);
        e->from_value = dup_col(res, i, 5);
        e->to_value = dup_col(res, i, 6);
        e->data = dup_col(res, i, 7);
        e->digests = dup_col(res, i, 8);
        e->occurred_us = atoll(PQgetvalue(res, i, 9));
        e->recorded_us = atoll(PQgetvalue(res, i, 10));
        ct_store_bytea(res, i, 11, e->prev_hash, CT_HASH_LEN);
        ct_store_bytea(res, i, 12, e->hash, CT_HASH_LEN);
        c->nevents++;
    }
    PQclear(res);
    return CT_OK;
}

/* An id an event's data names, as a bigint so the primary key finds the row (comparing text
 * scanned whole tables: 650 ms a ticket at 1M events); NULL when it is not a plain number. */
#define EVENT_ID(key)                                                                         \
    "CASE WHEN e.data->>'" key "' ~ '^[0-9]{1,18}$' THEN (e.data->>'" key "')::bigint END"

/* Texts the chain's digests vouch for: event_texts rows and, for message.received events, the
 * message body shown in timelines (so editing a stored message is detected too). */
#define TEXTS_OF_EVENTS                                                                       \
    "SELECT t.event_id, t.field, t.body, s.salt FROM event_texts t"                           \
    " JOIN events e ON e.id = t.event_id LEFT JOIN text_salts s ON s.scope = t.salt_scope"

#define TICKET_TEXTS                                                                          \
    TEXTS_OF_EVENTS " WHERE e.ticket_id = $1"                                                 \
    " UNION ALL"                                                                              \
    " SELECT e.id, 'message_body', m.body, s.salt FROM events e"                              \
    " JOIN messages m ON m.id = " EVENT_ID("message_id")                                     \
    " LEFT JOIN text_salts s ON s.scope = CASE WHEN e.action = '" CT_EV_MESSAGE_RECEIVED "'"  \
    "   THEN 'contact:' || m.contact_id ELSE 'staff' END"                                     \
    " WHERE e.ticket_id = $1"                                                                 \
    " AND e.action IN ('" CT_EV_MESSAGE_RECEIVED "', '" CT_EV_MESSAGE_ECHOED "',"            \
    "   '" CT_EV_MESSAGE_QUEUED "')"                                                          \
    " AND e.digests ? 'body'"                                                                 \
    " UNION ALL"                                                                              \
    " SELECT e.id, 'approval_reason', CASE e.action"                                          \
    " WHEN '" CT_EV_APPROVAL_REQ "' THEN a.reason"                                            \
    " ELSE a.decision_reason END, s.salt FROM events e"                                       \
    " JOIN approvals a ON a.id = " EVENT_ID("approval_id")                                   \
    " LEFT JOIN text_salts s ON s.scope = 'staff'"                                            \
    " WHERE e.ticket_id = $1 AND e.digests ? 'reason'"                                        \
    " AND e.action IN ('" CT_EV_APPROVAL_REQ "', '" CT_EV_APPROVAL_DEC "')"                   \
    " ORDER BY 1"

static ct_rc load_texts(struct ct_tx *tx, bool ticket, const char *id, struct ct_chain *c,
                        struct ct_err *err)
{
    const char *pv[] = {id};
    PGresult *res = ct_tx_exec(
        tx,
        ticket ? TICKET_TEXTS
               : TEXTS_OF_EVENTS " WHERE e.ticket_id IS NULL AND e.user_id = $1 ORDER BY 1",
        1, pv, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    c->texts = calloc(n > 0 ? (size_t)n : 1, sizeof(*c->texts));
    if (c->texts == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct ct_text_row *t = &c->texts[i];
        t->event_id = atoll(PQgetvalue(res, i, 0));
        /* copies shown elsewhere answer to the event's own digest: a message body to "body",
         * an approval's reasons to "reason" */
        const char *field = PQgetvalue(res, i, 1);
        if (strcmp(field, "message_body") == 0)
            field = "body";
        else if (strcmp(field, "approval_reason") == 0)
            field = "reason";
        t->field = strdup(field);
        t->body = dup_col(res, i, 2);
        t->has_salt = ct_store_bytea(res, i, 3, t->salt, CT_SALT_LEN);
        c->ntexts++;
    }
    PQclear(res);
    return CT_OK;
}

/* The row fields a chain vouches for, as (table, id, field, value) rows: the owner, and for a
 * ticket every approval, message and receipt that its events name or that names the ticket.
 * Payloads and receipt bodies are represented by their SHA-256 as PostgreSQL hashes them now. */
#define FACTS_OF(tbl, alias, cols) "SELECT '" tbl "', " alias ".id, f.field, f.value FROM " tbl \
    " " alias ", LATERAL (VALUES " cols ") f(field, value)"

#define TICKET_FACTS                                                                          \
    FACTS_OF("tickets", "t", "('status', t.status), ('priority', t.priority),"                \
             " ('escalation_level', t.escalation_level::text),"                              \
             " ('assignee_id', t.assignee_id::text)")                                         \
    " WHERE t.id = $1 UNION ALL "                                                             \
    FACTS_OF("approvals", "a", "('ticket_id', a.ticket_id::text), ('kind', a.kind),"          \
             " ('amount_minor', a.amount_minor::text), ('currency', a.currency),"             \
             " ('requested_by', a.requested_by::text), ('status', a.status),"                 \
             " ('decided_by', a.decided_by::text)")                                           \
    " WHERE a.id IN (SELECT id FROM approvals WHERE ticket_id = $1 UNION SELECT "             \
    EVENT_ID("approval_id") " FROM events e WHERE e.ticket_id = $1"                           \
    "   AND e.data ? 'approval_id') UNION ALL "                                               \
    FACTS_OF("messages", "m", "('ticket_id', m.ticket_id::text), ('direction', m.direction)," \
             " ('author_id', m.author_id::text),"                                             \
             " ('type', m.type), ('wamid', m.wamid), ('payload_sha256',"                     \
             " encode(sha256(convert_to(m.payload::text, 'UTF8')), 'hex'))")                  \
    " WHERE m.id IN (SELECT id FROM messages WHERE ticket_id = $1 UNION SELECT "              \
    EVENT_ID("message_id") " FROM events e WHERE e.ticket_id = $1 AND e.action IN"           \
    "   ('" CT_EV_MESSAGE_RECEIVED "', '" CT_EV_MESSAGE_ECHOED "', '" CT_EV_MESSAGE_QUEUED "'))" \
    " UNION ALL "                                                                             \
    FACTS_OF("webhook_receipts", "r", "('body_sha256', encode(r.body_sha256, 'hex')),"        \
             " ('body_sha256_now', encode(sha256(r.body), 'hex'))")                           \
    " WHERE r.id IN (SELECT " EVENT_ID("receipt_id") " FROM events e"                         \
    "   WHERE e.ticket_id = $1 AND e.data ? 'receipt_sha256')"

#define USER_FACTS                                                                            \
    FACTS_OF("users", "u", "('role', u.role), ('approval_limit_minor',"                       \
             " u.approval_limit_minor::text), ('active', CASE WHEN u.active THEN 't' ELSE 'f'" \
             " END), ('password_sha256', encode(sha256(convert_to(u.password_hash, 'UTF8')),"  \
             " 'hex'))") " WHERE u.id = $1"

static ct_rc load_facts(struct ct_tx *tx, bool ticket, const char *id, struct ct_chain *c,
                        struct ct_err *err)
{
    const char *pv[] = {id};
    PGresult *res = ct_tx_exec(tx, ticket ? TICKET_FACTS : USER_FACTS, 1, pv, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    c->facts = calloc(n > 0 ? (size_t)n : 1, sizeof(*c->facts));
    if (c->facts == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        struct ct_fact *f = &c->facts[i];
        snprintf(f->table, sizeof(f->table), "%s", PQgetvalue(res, i, 0));
        f->id = atoll(PQgetvalue(res, i, 1));
        snprintf(f->field, sizeof(f->field), "%s", PQgetvalue(res, i, 2));
        f->value = dup_col(res, i, 3);
        c->nfacts++;
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_chain_load(struct ct_tx *tx, const char *kind, long long id, struct ct_chain *out,
                          struct ct_err *err)
{
    char ids[32];
    bool ticket = strcmp(kind, "ticket") == 0;
    PGresult *res;
    ct_rc rc;

    memset(out, 0, sizeof(*out));
    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(out->name, sizeof(out->name), "%s:%lld", ticket ? "ticket" : "user", id);
    /* one snapshot for head, events and texts, or a concurrent append looks like tampering */
    res = ct_tx_exec(tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
                     err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    /* one chain is a few hundred rows found by index: starting parallel workers for it cost
     * 30 ms a query at 1M events, fifteen times the work itself */
    res = ct_tx_exec(tx, "SET LOCAL max_parallel_workers_per_gather = 0", 0, NULL, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    const char *pv[] = {ids};
    res = ct_tx_exec(tx, ticket ? "SELECT last_seq, chain_head FROM tickets WHERE id = $1"
                                : "SELECT last_seq, chain_head FROM users WHERE id = $1",
                     1, pv, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, ticket ? "ticket_not_found" : "user_not_found",
                          "%s %lld not found", ticket ? "ticket" : "user", id);
    }
    out->head_seq = atoll(PQgetvalue(res, 0, 0));
    out->has_head = true;
    if (!ct_store_bytea(res, 0, 1, out->head, CT_HASH_LEN))
        memset(out->head, 0, CT_HASH_LEN);
    PQclear(res);
    rc = load_events(tx, ticket, ids, out, err);
    if (rc == CT_OK)
        rc = load_texts(tx, ticket, ids, out, err);
    if (rc == CT_OK)
        rc = load_facts(tx, ticket, ids, out, err);
    if (rc != CT_OK)
        ct_chain_free(out);
    return rc;
}

ct_rc ct_store_chain_list(struct ct_tx *tx, char (**kinds)[8], long long **ids, size_t *n,
                          struct ct_err *err)
{
    PGresult *res = ct_tx_exec(tx,
                               /* every owner, not only those with events: a row
                                * inserted behind the chain's back is a break too */
                               "SELECT 'ticket', id FROM tickets"
                               " UNION ALL SELECT 'user', id FROM users ORDER BY 1, 2",
                               0, NULL, err);
    *kinds = NULL;
    *ids = NULL;
    *n = 0;
    if (res == NULL)
        return err->rc;
    int rows = PQntuples(res);
    *kinds = calloc(rows > 0 ? (size_t)rows : 1, sizeof(**kinds));
    *ids = calloc(rows > 0 ? (size_t)rows : 1, sizeof(**ids));
    if (*kinds == NULL || *ids == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < rows; i++) {
        snprintf((*kinds)[i], 8, "%s", PQgetvalue(res, i, 0));
        (*ids)[i] = atoll(PQgetvalue(res, i, 1));
    }
    *n = (size_t)rows;
    PQclear(res);
    return CT_OK;
}

/* Heads of every chain over the events with id <= upto (*heads calloc'd, caller frees), and
 * their count. Each chain's head is found by walking its (chain, seq) index down from the top
 * until an id <= upto: one probe per chain, where scanning every event took seconds at 1M. A
 * chain whose owner row was deleted behind the triggers' backs loses its leaf, which changes the
 * root as surely as the deleted events do. */
static ct_rc heads_at(struct ct_tx *tx, long long upto, long long *events,
                      struct ct_chain_head **heads, size_t *nheads, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, upto);
    *heads = NULL;
    *nheads = 0;
    PGresult *res = ct_tx_query(tx, "SELECT count(*) FROM events WHERE id <= $1", &p, err);
    if (res == NULL)
        return err->rc;
    *events = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = ct_tx_query(tx,
                      "SELECT 'ticket:' || t.id, e.seq, encode(e.hash, 'hex') FROM tickets t"
                      " CROSS JOIN LATERAL (SELECT seq, hash FROM events WHERE ticket_id = t.id"
                      "  AND id <= $1 ORDER BY seq DESC LIMIT 1) e"
                      " UNION ALL SELECT 'user:' || u.id, e.seq, encode(e.hash, 'hex')"
                      " FROM users u CROSS JOIN LATERAL (SELECT seq, hash FROM events"
                      "  WHERE user_id = u.id AND ticket_id IS NULL AND id <= $1"
                      "  ORDER BY seq DESC LIMIT 1) e",
                      &p, err);
    if (res == NULL)
        return err->rc;
    int n = PQntuples(res);
    *heads = calloc(n > 0 ? (size_t)n : 1, sizeof(**heads));
    if (*heads == NULL) {
        PQclear(res);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        ct_store_copy((*heads)[i].chain, sizeof((*heads)[i].chain), res, i, 0);
        (*heads)[i].seq = atoll(PQgetvalue(res, i, 1));
        ct_store_copy((*heads)[i].hash, sizeof((*heads)[i].hash), res, i, 2);
    }
    *nheads = (size_t)n;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_digest_now(struct ct_tx *tx, struct ct_digest *d, struct ct_err *err)
{
    PGresult *res;
    memset(d, 0, sizeof(*d));
    /* exclusive against every append's shared lock: in-flight appends finish first, new ones
     * wait, so "every event with id <= upto_id" is a complete, stable set */
    res = ct_tx_exec(tx, "SELECT pg_advisory_xact_lock(" CT_DIGEST_LOCK ")", 0, NULL, err);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    res = ct_tx_exec(tx, "SELECT coalesce(max(id), 0), to_char(now() AT TIME ZONE 'UTC',"
                         " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM events", 0, NULL, err);
    if (res == NULL)
        return err->rc;
    d->version = 2;
    d->upto_id = atoll(PQgetvalue(res, 0, 0));
    ct_store_copy(d->time, sizeof(d->time), res, 0, 1);
    PQclear(res);
    return ct_store_digest_at(tx, d->upto_id, 2, &d->events, &d->chains, d->root, err);
}

ct_rc ct_store_digest_at(struct ct_tx *tx, long long upto_id, int version, long long *events,
                         long long *chains, char root[65], struct ct_err *err)
{
    struct ct_chain_head *heads = NULL;
    size_t n = 0;
    ct_rc rc = heads_at(tx, upto_id, events, &heads, &n, err);
    if (rc == CT_OK) {
        *chains = (long long)n;
        if (version == 2)
            ct_audit_merkle_root(heads, n, root);
        else
            ct_audit_root(heads, n, root);
    }
    free(heads);
    return rc;
}

ct_rc ct_store_digest_save(struct ct_tx *tx, const struct ct_digest *d, struct ct_err *err)
{
    struct ct_params p = {0};
    char *payload = ct_audit_digest_payload(d);
    if (payload == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    ct_param_ll(&p, d->upto_id);
    ct_param_str(&p, payload);
    ct_param_str(&p, d->signature[0] != '\0' ? "ed25519" : NULL);
    ct_param_str(&p, d->signature[0] != '\0' ? d->signature : NULL);
    PGresult *res = ct_tx_query(tx,
                                "INSERT INTO digests (upto_id, payload, alg, signature)"
                                " VALUES ($1, $2, $3, $4)",
                                &p, err);
    free(payload);
    if (res == NULL)
        return err->rc;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_digest_covering(struct ct_tx *tx, long long ticket_id, char **payload,
                               char signature[129], long long *covers_seq,
                               struct ct_chain_head **heads, size_t *n, struct ct_err *err)
{
    struct ct_params p = {0};
    long long events = 0;
    ct_rc rc;
    *payload = NULL;
    *covers_seq = 0;
    if (heads != NULL) {
        *heads = NULL;
        *n = 0;
    }
    ct_param_ll(&p, ticket_id);
    /* covering: made after the ticket's first event, so its chain is among the leaves */
    PGresult *res = ct_tx_query(tx,
                                "SELECT d.payload, d.signature, d.upto_id, (SELECT max(e.seq)"
                                " FROM events e WHERE e.ticket_id = $1 AND e.id <= d.upto_id)"
                                " FROM digests d WHERE d.signature IS NOT NULL AND d.upto_id >="
                                " (SELECT min(id) FROM events WHERE ticket_id = $1)"
                                " ORDER BY d.upto_id DESC, d.id DESC LIMIT 1",
                                &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return CT_OK;
    }
    *payload = strdup(PQgetvalue(res, 0, 0));
    ct_store_copy(signature, 129, res, 0, 1);
    long long upto = atoll(PQgetvalue(res, 0, 2));
    *covers_seq = atoll(PQgetvalue(res, 0, 3));
    PQclear(res);
    if (*payload == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    if (heads == NULL)
        return CT_OK;
    rc = heads_at(tx, upto, &events, heads, n, err);
    if (rc != CT_OK) {
        free(*payload);
        *payload = NULL;
    }
    return rc;
}
