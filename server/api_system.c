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

static ct_rc read_version(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    return ct_store_schema_version(tx, arg, err);
}

void ct_api_readyz(struct ct_req *req)
{
    struct ct_err err;
    int version = -1;
    ct_rc rc = ct_store_with_conn(req->srv->pool, read_version, &version, &err);

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
    cJSON_AddStringToObject(root, "role", ct_auth_role_name(req->user.role));
    if (req->user.has_limit)
        cJSON_AddNumberToObject(root, "approval_limit_minor", (double)req->user.approval_limit_minor);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}
