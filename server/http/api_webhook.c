/* api_webhook.c: the WhatsApp front door. GET answers Meta's verification handshake; POST
 * checks the signature on the raw bytes, parses, and acknowledges only after COMMIT. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "casetrail/cursor.h"
#include "casetrail/ingest.h"
#include "casetrail/json.h"
#include "casetrail/log.h"
#include "casetrail/metrics.h"
#include "casetrail/webhook.h"

void ct_api_webhook_verify(struct ct_req *req)
{
    char mode[CT_QUERY_BUF], token[CT_QUERY_BUF], challenge[CT_QUERY_BUF];
    const char *want = req->srv->cfg.verify_token;

    if (!ct_http_query(req, "hub.mode", mode, sizeof(mode)) || strcmp(mode, "subscribe") != 0 ||
        !ct_http_query(req, "hub.verify_token", token, sizeof(token)) ||
        !ct_http_query(req, "hub.challenge", challenge, sizeof(challenge)) || want == NULL ||
        strlen(token) != strlen(want) || CRYPTO_memcmp(token, want, strlen(want)) != 0) {
        OPENSSL_cleanse(token, sizeof(token));
        ct_http_fail(req, CT_E_FORBIDDEN, "verification_failed",
                     "webhook verification failed: wrong hub.mode or hub.verify_token");
        return;
    }
    OPENSSL_cleanse(token, sizeof(token));
    ct_http_send(req, 200, "text/plain; charset=utf-8", challenge, strlen(challenge));
}

void ct_api_webhook_receive(struct ct_req *req)
{
    struct ct_err err;
    struct ct_wa_batch batch;
    struct ct_ingest_result res;
    char *body = NULL;
    size_t len = 0;
    bool verified = false;
    ct_rc rc;

    memset(&batch, 0, sizeof(batch));
    rc = ct_http_read_body(req, req->srv->cfg.max_body, &body, &len, &err);
    if (rc != CT_OK) {
        ct_http_send_error(req, &err);
        if (rc == CT_E_TOO_LARGE)
            ct_http_discard_body(req);
        goto out;
    }
    /* B-ingest 2: the signature is checked on the exact bytes before anything is parsed */
    if (req->srv->cfg.app_secret != NULL) {
        if (!ct_webhook_signature_ok(req->srv->cfg.app_secret, body, len,
                                     ct_http_header(req, "X-Hub-Signature-256"))) {
            ct_http_fail(req, CT_E_UNAUTHORIZED, "bad_signature",
                         "missing or invalid X-Hub-Signature-256");
            goto out;
        }
        verified = true;
    }
    rc = ct_webhook_parse(body, len, &batch, &err);
    if (rc != CT_OK) {
        ct_http_send_error(req, &err);
        goto out;
    }
    rc = ct_ingest_submit(req->srv->ingester, req->srv->pool, body, len,
                          verified ? ct_http_header(req, "X-Hub-Signature-256") : NULL, &batch,
                          &res, &err);
    if (rc != CT_OK) {
        /* never 200 before COMMIT: Meta retries anything else for days */
        ct_log_warn("webhook not stored (%s): %s", err.code, err.message);
        ct_http_send_error(req, &err);
        goto out;
    }
    ct_log_info("webhook receipt %lld: %d new, %d duplicate messages; %d new, %d duplicate, %d "
                "unknown statuses; %d rejected, %zu errors",
                res.receipt_id, res.messages_new, res.messages_duplicate, res.statuses_new,
                res.statuses_duplicate, res.statuses_unknown, res.rejected, batch.nerrors);
    if (res.rejected > 0 && !res.receipt_duplicate)
        ct_metrics_count(req->srv->metrics, CT_COUNTER_WEBHOOK_REJECTS, res.rejected);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "stored");
    ct_json_add_int(root, "receipt_id", res.receipt_id);
    ct_json_add_int(root, "messages_new", res.messages_new);
    ct_json_add_int(root, "messages_duplicate", res.messages_duplicate);
    ct_json_add_int(root, "statuses_new", res.statuses_new);
    ct_json_add_int(root, "rejected", res.rejected);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
out:
    ct_webhook_batch_free(&batch);
    free(body);
}

struct rejects_job {
    int limit;
    struct ct_id_cursor cursor;
    cJSON *items;
    char next[CT_CURSOR_MAX];
};

static ct_rc rejects_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct rejects_job *j = arg;
    return ct_store_rejects_list(tx, j->limit, &j->cursor, &j->items, j->next, err);
}

void ct_api_webhook_rejects(struct ct_req *req)
{
    struct rejects_job j;
    struct ct_err err;
    char cursor[CT_QUERY_BUF];

    memset(&j, 0, sizeof(j));
    if (!ct_http_query_limit(req, &j.limit))
        return;
    if (ct_http_cursor_param(req, cursor) && !ct_cursor_id_decode('r', cursor, &j.cursor)) {
        ct_http_bad_cursor(req);
        return;
    }
    if (ct_store_with_conn(req->srv->pool, rejects_tx, &j, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "rejects", j.items);
    ct_http_send_page(req, root, j.next);
}
