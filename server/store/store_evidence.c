/* store_evidence.c: the rows of a ticket's evidence bundle that are not its chain (messages,
 * the raw receipts they came in, approvals, media hashes), and the access log of who read
 * evidence, exports and reports. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define ISO(col) CT_SQL_ISO_US(col)
#define RECEIPT_OF_EVENT                                                                      \
    "CASE WHEN e.data->>'receipt_id' ~ '^[0-9]{1,18}$' THEN (e.data->>'receipt_id')::bigint END"

#define EVIDENCE_SQL                                                                          \
    "SELECT jsonb_build_object("                                                              \
    " 'messages', coalesce((SELECT jsonb_agg(jsonb_build_object('id', m.id, 'wamid', m.wamid," \
    "   'direction', m.direction, 'type', m.type, 'text', m.body, 'sent_at', " ISO("m.sent_at") \
    "   , 'received_at', " ISO("m.received_at") ", 'receipt_id', m.receipt_id,"               \
    "   'payload_sha256', encode(sha256(convert_to(m.payload::text, 'UTF8')), 'hex'))"        \
    "   ORDER BY m.sent_at, m.id) FROM messages m WHERE m.ticket_id = $1), '[]'::jsonb),"     \
    /* every receipt a message of the ticket came in, or an event of it names, whole: the   \
     * signature covers the exact bytes, other messages of the same batch included */        \
    " 'receipts', coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id,"                  \
    "   'received_at', " ISO("r.received_at") ", 'body_base64',"                              \
    "   translate(encode(r.body, 'base64'), E'\\n', ''), 'body_sha256',"                      \
    "   encode(r.body_sha256, 'hex'), 'signature', r.signature,"                              \
    "   'signature_verified', r.signature_verified) ORDER BY r.id) FROM webhook_receipts r"   \
    "   WHERE r.id IN (SELECT receipt_id FROM messages WHERE ticket_id = $1"                  \
    "   UNION SELECT " RECEIPT_OF_EVENT " FROM events e WHERE e.ticket_id = $1"               \
    "   AND e.data ? 'receipt_id')), '[]'::jsonb),"                                            \
    " 'approvals', coalesce((SELECT jsonb_agg(jsonb_build_object('id', a.id, 'kind', a.kind," \
    "   'amount_minor', a.amount_minor, 'currency', a.currency, 'status', a.status,"          \
    "   'requested_by', ru.name, 'requested_at', " ISO("a.requested_at") ","                  \
    "   'reason', a.reason, 'decided_by', du.name, 'decided_at', " ISO("a.decided_at") ","    \
    "   'decision_reason', a.decision_reason) ORDER BY a.id) FROM approvals a"                \
    "   JOIN users ru ON ru.id = a.requested_by LEFT JOIN users du ON du.id = a.decided_by"   \
    "   WHERE a.ticket_id = $1), '[]'::jsonb),"                                                \
    " 'media', coalesce((SELECT jsonb_agg(jsonb_build_object('message_id', d.message_id,"     \
    "   'status', d.status, 'mime_type', d.mime_type, 'sha256', d.sha256, 'size', d.size,"    \
    "   'expected_sha256', d.expect_sha256) ORDER BY d.message_id) FROM media d"               \
    "   JOIN messages m ON m.id = d.message_id WHERE m.ticket_id = $1), '[]'::jsonb))::text"

ct_rc ct_store_evidence_rows(struct ct_tx *tx, long long ticket_id, cJSON **out,
                             struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, ticket_id);
    *out = NULL;
    PGresult *res = ct_tx_query(tx, EVIDENCE_SQL, &p, err);
    if (res == NULL)
        return err->rc;
    *out = cJSON_Parse(PQgetvalue(res, 0, 0));
    PQclear(res);
    if (*out == NULL)
        return ct_err_set(err, CT_E_INTERNAL, "internal", "could not decode the evidence rows");
    return CT_OK;
}

ct_rc ct_store_access_log(struct ct_tx *tx, long long user_id, const char *what,
                          long long ticket_id, const char *filters_json, long long rows,
                          struct ct_err *err)
{
    struct ct_params p = {0};
    ct_param_ll(&p, user_id);
    ct_param_str(&p, what);
    ct_param_id(&p, ticket_id);
    ct_param_str(&p, filters_json);
    ct_param_ll(&p, rows);
    return ct_tx_command(tx, "INSERT INTO access_log (user_id, what, ticket_id, filters, rows)"
                             " VALUES ($1, $2, $3, $4::jsonb, $5)", &p, err);
}
