/* store_outbox.c: queries behind agent replies: reply targets and the 24-hour window, queued
 * messages and their outbox rows, idempotency keys, and the sender's claim and outcomes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

ct_rc ct_store_reply_target(struct ct_tx *tx, long long ticket_id, struct ct_reply_target *out,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    ct_param_ll(&p, ticket_id);
    /* the window counts the customer's messages under every id they had (aliases, merges) */
    res = ct_tx_query(tx,
                      "SELECT c.id, c.phone_number_id, coalesce(c.wa_id, ''),"
                      " coalesce(c.user_id, ''), (SELECT " CT_SQL_US("max(m.sent_at)")
                      "  FROM messages m WHERE m.direction = 'in' AND m.contact_id IN"
                      "  (SELECT k.id FROM contacts k WHERE k.id = c.id OR k.merged_into = c.id))"
                      " FROM tickets t JOIN contacts c ON c.id = t.contact_id WHERE t.id = $1",
                      &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return ct_err_set(err, CT_E_NOT_FOUND, "ticket_not_found", "ticket %lld not found",
                          ticket_id);
    }
    out->contact_id = atoll(PQgetvalue(res, 0, 0));
    ct_store_copy(out->phone_number_id, sizeof(out->phone_number_id), res, 0, 1);
    ct_store_copy(out->wa_id, sizeof(out->wa_id), res, 0, 2);
    ct_store_copy(out->user_id, sizeof(out->user_id), res, 0, 3);
    out->has_inbound = !PQgetisnull(res, 0, 4);
    out->last_inbound_us = out->has_inbound ? atoll(PQgetvalue(res, 0, 4)) : 0;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_read_target(struct ct_tx *tx, long long ticket_id, struct ct_read_target *out,
                           bool *found, struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res;

    memset(out, 0, sizeof(*out));
    *found = false;
    ct_param_ll(&p, ticket_id);
    res = ct_tx_query(tx,
                      "SELECT m.id, m.wamid, c.phone_number_id, coalesce(c.wa_id, c.user_id, '')"
                      " FROM tickets t JOIN messages m ON m.ticket_id = t.id"
                      " JOIN contacts c ON c.id = m.contact_id"
                      " WHERE t.id = $1 AND t.status <> 'closed' AND m.direction = 'in'"
                      " AND m.wamid IS NOT NULL AND m.sent_at > now() - interval '30 days'"
                      " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id)"
                      " ORDER BY m.sent_at DESC, m.id DESC LIMIT 1",
                      &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1) {
        out->message_id = atoll(PQgetvalue(res, 0, 0));
        ct_store_copy(out->wamid, sizeof(out->wamid), res, 0, 1);
        ct_store_copy(out->phone_number_id, sizeof(out->phone_number_id), res, 0, 2);
        ct_store_copy(out->recipient, sizeof(out->recipient), res, 0, 3);
        *found = true;
    }
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_read_mark_queue(struct ct_tx *tx, const struct ct_read_target *t,
                               const char *body, long long user_id, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, t->message_id);
    ct_param_str(&p, t->phone_number_id);
    ct_param_str(&p, t->recipient);
    ct_param_str(&p, body);
    ct_param_ll(&p, user_id);
    /* two staff opening the ticket at once queue one mark */
    return ct_tx_command(tx, "INSERT INTO outbox (message_id, phone_number_id, recipient, body,"
                             " kind, requested_by) VALUES ($1, $2, $3, $4::jsonb, 'read', $5)"
                             " ON CONFLICT (message_id) DO NOTHING", &p, err);
}

ct_rc ct_store_message_in_ticket(struct ct_tx *tx, long long ticket_id, const char *wamid,
                                 bool *found, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, ticket_id);
    ct_param_str(&p, wamid);
    PGresult *res = ct_tx_query(tx, "SELECT 1 FROM messages WHERE ticket_id = $1 AND wamid = $2",
                                &p, err);
    if (res == NULL)
        return err->rc;
    *found = PQntuples(res) == 1;
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_outbound_queue(struct ct_tx *tx, const struct ct_outbound_new *m,
                              long long *message_id, long long *outbox_id, struct ct_err *err)
{
    struct ct_params p = {0}, q = {0};
    PGresult *res;

    ct_param_ll(&p, m->ticket_id);
    ct_param_ll(&p, m->contact_id);
    ct_param_str(&p, m->type);
    ct_param_str(&p, m->text);
    ct_param_str(&p, m->graph_body);
    ct_param_str(&p, m->context_wamid);
    ct_param_ll(&p, m->author_id);
    ct_param_ts(&p, true, ct_store_now_us());
    res = ct_tx_query(tx,
                      "INSERT INTO messages (ticket_id, contact_id, direction, type, body, payload,"
                      " context_wamid, author_id, sent_at, received_at, status, status_at)"
                      " VALUES ($1, $2, 'out', $3, $4, $5::jsonb, $6, $7, $8, $8, 'queued', $8)"
                      " RETURNING id",
                      &p, err);
    if (res == NULL)
        return err->rc;
    *message_id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    ct_param_ll(&q, *message_id);
    ct_param_str(&q, m->phone_number_id);
    ct_param_str(&q, m->recipient);
    ct_param_str(&q, m->graph_body);
    res = ct_tx_query(tx, "INSERT INTO outbox (message_id, phone_number_id, recipient, body)"
                          " VALUES ($1, $2, $3, $4::jsonb) RETURNING id", &q, err);
    if (res == NULL)
        return err->rc;
    *outbox_id = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_outbound_get(struct ct_tx *tx, long long message_id, cJSON **out,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, message_id);
    *out = NULL;
    PGresult *res = ct_tx_query(
        tx,
        "SELECT jsonb_build_object('kind', 'message', 'id', m.id, 'ticket_id', m.ticket_id,"
        " 'wamid', m.wamid, 'direction', m.direction, 'type', m.type, 'text', m.body,"
        " 'status', m.status, 'author', u.name, 'reply_to', m.context_wamid,"
        " 'at', " CT_SQL_ISO_US("m.sent_at") ")::text FROM messages m"
        " LEFT JOIN users u ON u.id = m.author_id WHERE m.id = $1",
        &p, err);
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1)
        *out = cJSON_Parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not read the queued message");
    return CT_OK;
}

ct_rc ct_store_idempotency_lock(struct ct_tx *tx, long long user_id, const char *key,
                                struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, user_id);
    ct_param_str(&p, key);
    return ct_tx_command(tx, "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 7))",
                         &p, err);
}

ct_rc ct_store_idempotency_get(struct ct_tx *tx, long long user_id, const char *key,
                               bool *found, char request_sha256[65], int *status,
                               char **response, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, user_id);
    ct_param_str(&p, key);
    *found = false;
    *response = NULL;
    PGresult *res = ct_tx_query(tx, "SELECT request_sha256, status, response FROM"
                                    " idempotency_keys WHERE user_id = $1 AND key = $2"
                                    " AND created_at > now() - interval '24 hours'",
                                &p, err);
    if (res == NULL)
        return err->rc;
    bool stored = PQntuples(res) == 1;
    if (stored) {
        ct_store_copy(request_sha256, 65, res, 0, 0);
        *status = atoi(PQgetvalue(res, 0, 1));
        *response = strdup(PQgetvalue(res, 0, 2));
        *found = *response != NULL;
    }
    PQclear(res);
    if (stored && !*found)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    return CT_OK;
}

ct_rc ct_store_idempotency_put(struct ct_tx *tx, long long user_id, const char *key,
                               const char *request_sha256, int status, const char *response,
                               struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, user_id);
    ct_param_str(&p, key);
    ct_param_str(&p, request_sha256);
    ct_param_ll(&p, status);
    ct_param_str(&p, response);
    /* an expired key (older than 24 hours) is simply reused */
    return ct_tx_command(tx, "INSERT INTO idempotency_keys (user_id, key, request_sha256, status,"
                             " response) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key)"
                             " DO UPDATE SET request_sha256 = $3, status = $4, response = $5,"
                             " created_at = now()",
                         &p, err);
}

#define CLAIM_SQL                                                                             \
    "WITH due AS ("                                                                           \
    " SELECT o.id FROM outbox o WHERE o.state = 'queued' AND o.next_at <= now()"              \
    /* a read mark is not a message: no order to keep and no pacing to respect */            \
    " AND (o.kind = 'read' OR ("                                                              \
    /* the oldest queued message of its recipient: replies arrive in the order written */     \
    " o.id = (SELECT min(q.id) FROM outbox q WHERE q.state IN ('queued', 'sending')"          \
    "   AND q.kind = 'message'"                                                               \
    "   AND q.phone_number_id = o.phone_number_id AND q.recipient = o.recipient)"             \
    /* pacing: one recipient, and (recipient '') one business number */                      \
    " AND NOT EXISTS (SELECT 1 FROM outbox_pacing g WHERE g.phone_number_id ="                \
    "   o.phone_number_id AND g.recipient IN (o.recipient, '') AND g.next_allowed_at > now())" \
    " ))"                                                                                     \
    " ORDER BY o.next_at, o.id LIMIT 1 FOR UPDATE SKIP LOCKED)"                               \
    " UPDATE outbox SET state = 'sending', attempts = attempts + 1, claimed_at = now()"        \
    " FROM due WHERE outbox.id = due.id RETURNING outbox.id, outbox.message_id,"              \
    " (SELECT ticket_id FROM messages WHERE id = outbox.message_id), outbox.attempts,"        \
    " outbox.phone_number_id, outbox.recipient, outbox.body::text, outbox.kind = 'read'"

#define PACE_SQL                                                                              \
    "INSERT INTO outbox_pacing (phone_number_id, recipient, next_allowed_at)"                 \
    " VALUES ($1, $2, now() + $3 * interval '1 millisecond')"                                 \
    " ON CONFLICT (phone_number_id, recipient) DO UPDATE SET next_allowed_at ="               \
    " greatest(outbox_pacing.next_allowed_at, excluded.next_allowed_at)"

static ct_rc pace(struct ct_tx *tx, const char *pnid, const char *recipient, long ms,
                  struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_str(&p, pnid);
    ct_param_str(&p, recipient);
    ct_param_ll(&p, ms);
    return ct_tx_command(tx, PACE_SQL, &p, err);
}

ct_rc ct_store_outbox_claim(struct ct_tx *tx, int pace_ms, int rate_per_s,
                            struct ct_outbox_job *out, bool *found, struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res = ct_tx_query(tx, CLAIM_SQL, &p, err);
    ct_rc rc = CT_OK;

    memset(out, 0, sizeof(*out));
    *found = false;
    if (res == NULL)
        return err->rc;
    if (PQntuples(res) == 1) {
        out->id = atoll(PQgetvalue(res, 0, 0));
        out->message_id = atoll(PQgetvalue(res, 0, 1));
        out->ticket_id = atoll(PQgetvalue(res, 0, 2));
        out->attempts = atoi(PQgetvalue(res, 0, 3));
        ct_store_copy(out->phone_number_id, sizeof(out->phone_number_id), res, 0, 4);
        ct_store_copy(out->recipient, sizeof(out->recipient), res, 0, 5);
        out->body = strdup(PQgetvalue(res, 0, 6));
        out->read_mark = PQgetvalue(res, 0, 7)[0] == 't';
        *found = out->body != NULL;
        if (out->body == NULL)
            rc = ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    PQclear(res);
    if (rc == CT_OK && *found && !out->read_mark)
        rc = pace(tx, out->phone_number_id, out->recipient, pace_ms, err);
    if (rc == CT_OK && *found && !out->read_mark && rate_per_s > 0)
        rc = pace(tx, out->phone_number_id, "", 1000 / rate_per_s, err);
    if (rc != CT_OK) {
        free(out->body);
        out->body = NULL;
        *found = false;
    }
    return rc;
}

ct_rc ct_store_outbox_sent(struct ct_tx *tx, const struct ct_outbox_job *job, const char *wamid,
                           struct ct_err *err)
{
    struct ct_params p = {0}, q = {0};
    ct_param_ll(&p, job->id);
    ct_rc rc = ct_tx_command(tx, "UPDATE outbox SET state = 'sent', last_error = NULL,"
                                 " done_at = now() WHERE id = $1", &p, err);
    if (rc != CT_OK || job->read_mark)
        return rc; /* a read mark changes nothing of the customer's message */
    ct_param_ll(&q, job->message_id);
    ct_param_str(&q, wamid);
    /* a status webhook may have come first and moved it further: never backwards */
    return ct_tx_command(tx, "UPDATE messages SET wamid = $2, status = CASE WHEN status = 'queued'"
                             " THEN 'sent' ELSE status END, status_at = now() WHERE id = $1",
                         &q, err);
}

ct_rc ct_store_outbox_retry(struct ct_tx *tx, const struct ct_outbox_job *job, long delay_ms,
                            const char *error, struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, job->id);
    ct_param_ll(&p, delay_ms);
    ct_param_str(&p, error);
    return ct_tx_command(tx, "UPDATE outbox SET state = 'queued', claimed_at = NULL,"
                             " next_at = now() + $2 * interval '1 millisecond', last_error = $3"
                             " WHERE id = $1", &p, err);
}

ct_rc ct_store_outbox_failed(struct ct_tx *tx, const struct ct_outbox_job *job, int code,
                             const char *title, struct ct_err *err)
{
    struct ct_params p = {0}, q = {0};
    ct_param_ll(&p, job->id);
    ct_param_str(&p, title);
    ct_rc rc = ct_tx_command(tx, "UPDATE outbox SET state = 'failed', last_error = $2,"
                                 " done_at = now() WHERE id = $1", &p, err);
    if (rc != CT_OK || job->read_mark)
        return rc;
    ct_param_ll(&q, job->message_id);
    ct_param_id(&q, code);
    ct_param_str(&q, title);
    return ct_tx_command(tx, "UPDATE messages SET status = 'failed', status_at = now(),"
                             " error_code = $2, error_title = $3 WHERE id = $1", &q, err);
}

ct_rc ct_store_outbox_recover(struct ct_tx *tx, int *n, struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res = ct_tx_query(tx, "UPDATE outbox SET state = 'queued', claimed_at = NULL,"
                                    " last_error = 'resumed after a restart' WHERE state ="
                                    " 'sending' RETURNING id", &p, err);
    if (res == NULL)
        return err->rc;
    *n = PQntuples(res);
    PQclear(res);
    return CT_OK;
}

ct_rc ct_store_outbox_stats(struct ct_tx *tx, long long *depth, double *oldest_s,
                            struct ct_err *err)
{
    struct ct_params p = {0};
    PGresult *res = ct_tx_query(tx, "SELECT count(*), coalesce(extract(epoch FROM now() -"
                                    " min(created_at)), 0) FROM outbox WHERE state IN"
                                    " ('queued', 'sending') AND kind = 'message'", &p, err);
    if (res == NULL)
        return err->rc;
    *depth = atoll(PQgetvalue(res, 0, 0));
    *oldest_s = atof(PQgetvalue(res, 0, 1));
    PQclear(res);
    return CT_OK;
}
