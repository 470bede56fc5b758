/* api_system.c: liveness, readiness and "who am I". */
#include <string.h>

#include "api.h"
#include "casetrail/auth.h"
#include "casetrail/log.h"

void ct_api_healthz(struct ct_req *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    ct_http_send(req, 200, "application/json", body, sizeof(body) - 1);
}

struct ready {
    int version;
    bool durable;
};

static ct_rc read_ready(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct ready *r = arg;
    ct_rc rc = ct_store_schema_version(tx, &r->version, err);
    if (rc == CT_OK)
        rc = ct_store_durable(tx, &r->durable, err);
    return rc;
}

void ct_api_readyz(struct ct_req *req)
{
    struct ct_err err;
    struct ready r = {-1, false};
    ct_rc rc = ct_store_with_conn(req->srv->pool, read_ready, &r, &err);
    int version = r.version;

    if (rc != CT_OK) {
        ct_http_fail(req, CT_E_UNAVAILABLE, "database_unavailable", "could not reach the database");
        return;
    }
    if (version != req->srv->schema_latest) {
        ct_http_fail(req, CT_E_UNAVAILABLE, "schema_not_current",
                     "database schema is at version %d, this build expects %d", version,
                     req->srv->schema_latest);
        return;
    }
    if (!r.durable) {
        ct_http_fail(req, CT_E_UNAVAILABLE, "not_durable",
                     "synchronous_commit is off for casetrail's sessions: a webhook would be "
                     "acknowledged before it is on disk (remove it from DATABASE_URL's options)");
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "status", "ready");
    cJSON_AddNumberToObject(root, "schema_version", version);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}

void ct_api_me(struct ct_req *req)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", req->user.name);
    cJSON_AddNumberToObject(root, "id", (double)req->user.id);
    cJSON_AddStringToObject(root, "role", ct_role_name(req->user.role));
    /* the zone people's times are shown in; the API itself answers in UTC */
    cJSON_AddStringToObject(root, "timezone", req->srv->cfg.timezone);
    if (req->user.has_limit)
        cJSON_AddNumberToObject(root, "approval_limit_minor",
                                (double)req->user.approval_limit_minor);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}
