/* api_session.c: the viewer's sign-in and sign-out (a session cookie) and the staff list its
 * hand-off picker shows. Scripts keep using API tokens; see router.c for how both are read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "api.h"
#include "casetrail/json.h"
#include "casetrail/server.h"
#include "casetrail/sessions.h"
#include "casetrail/users.h"

/* The cookie's attributes: HttpOnly (no script reads it), SameSite=Strict (no cross-site
 * request carries it), Secure when staff reach casetrail over https. */
#define SIGN_IN_CONCURRENCY 4

static void cookie_header(const struct ct_req *req, const char *value, int max_age, char *out,
                          size_t len)
{
    snprintf(out, len, "Set-Cookie: " CT_SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict;"
             " Max-Age=%d%s\r\n", value, max_age, req->srv->cfg.secure_cookies ? "; Secure" : "");
}

static cJSON *user_json(const struct ct_user *u)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "id", (double)u->id);
    cJSON_AddStringToObject(j, "name", u->name);
    cJSON_AddStringToObject(j, "role", ct_role_name(u->role));
    return j;
}

void ct_api_session_create(struct ct_req *req)
{
    static const char *const allowed[] = {"name", "password", NULL};
    const struct mg_request_info *ri = mg_get_request_info(req->conn);
    struct ct_sign_in in = {0};
    struct ct_user user;
    struct ct_err err;
    char token[CT_TOKEN_LEN + 1], header[256];
    cJSON *body = NULL, *root;
    ct_rc rc;

    /* a cross-site form can post text that parses as JSON (enctype text/plain) and sign the
     * victim in as the attacker; it can set neither this header nor a JSON content type */
    const char *type = ct_http_header(req, "Content-Type"), *mark = ct_http_header(req,
                                                                                  CT_CSRF_HEADER);
    if ((mark == NULL || strcmp(mark, "1") != 0) &&
        (type == NULL || mg_strncasecmp(type, "application/json", 16) != 0)) {
        ct_http_discard_body(req);
        ct_http_fail(req, CT_E_FORBIDDEN, "csrf", "sign in with Content-Type: application/json"
                     " or the header " CT_CSRF_HEADER ": 1");
        return;
    }
    if (ct_http_read_json(req, &body, &err) != CT_OK ||
        ct_json_only(body, allowed, &err) != CT_OK ||
        ct_json_str(body, "name", true, 64, &in.name, &err) != CT_OK ||
        ct_json_str(body, "password", true, CT_PASSWORD_MAX, &in.password, &err) != CT_OK) {
        cJSON_Delete(body);
        ct_http_send_error(req, &err);
        return;
    }
    in.password_len = strlen(in.password);
    /* each check takes 32 MiB for ~0.1 s: a burst of sign-ins waits its turn, not the heap */
    if (atomic_fetch_add(&req->srv->signing_in, 1) >= SIGN_IN_CONCURRENCY) {
        atomic_fetch_sub(&req->srv->signing_in, 1);
        cJSON_Delete(body);
        ct_err_set(&err, CT_E_UNAVAILABLE, "busy", "too many sign-ins at once: try again");
        ct_http_send_error(req, &err);
        return;
    }
    in.address = ri->remote_addr;
    in.user_agent = ct_http_header(req, "User-Agent");
    rc = ct_sessions_sign_in(req->srv->pool, &in, token, &user, &err);
    atomic_fetch_sub(&req->srv->signing_in, 1);
    cJSON_Delete(body);
    if (rc != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    /* the browser keeps the cookie no longer than a session may live */
    cookie_header(req, token, req->srv->cfg.session_max_h * 3600, header, sizeof(header));
    memset(token, 0, sizeof(token));
    root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "user", user_json(&user));
    cJSON_AddStringToObject(root, "timezone", req->srv->cfg.timezone);
    cJSON_AddNumberToObject(root, "idle_minutes", req->srv->cfg.session_idle_min);
    ct_http_send_json_extra(req, 200, root, header);
    cJSON_Delete(root);
}

void ct_api_session_delete(struct ct_req *req)
{
    char token[CT_TOKEN_LEN + 8], header[256];
    const char *cookies = ct_http_header(req, "Cookie");
    struct ct_err err;

    if (cookies != NULL &&
        mg_get_cookie(cookies, CT_SESSION_COOKIE, token, sizeof(token)) > 0 &&
        ct_sessions_end(req->srv->pool, token, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    /* the browser forgets it either way */
    cookie_header(req, "", 0, header, sizeof(header));
    ct_http_write_head(req->conn, 204, "application/json", 0, header);
    req->status = 204;
}

struct users_job {
    struct ct_user *users;
    size_t n;
};

static ct_rc users_tx(struct ct_tx *tx, void *arg, struct ct_err *err)
{
    struct users_job *j = arg;
    free(j->users); /* a retried read starts over */
    j->users = NULL;
    return ct_store_user_list(tx, &j->users, &j->n, err);
}

void ct_api_users_list(struct ct_req *req)
{
    struct users_job j = {NULL, 0};
    struct ct_err err;
    cJSON *root, *list;

    if (ct_store_with_conn(req->srv->pool, users_tx, &j, &err) != CT_OK) {
        free(j.users);
        ct_http_send_error(req, &err);
        return;
    }
    root = cJSON_CreateObject();
    list = cJSON_AddArrayToObject(root, "users");
    for (size_t i = 0; i < j.n; i++) {
        cJSON *u = user_json(&j.users[i]);
        cJSON_AddBoolToObject(u, "active", j.users[i].active);
        cJSON_AddItemToArray(list, u);
    }
    free(j.users);
    ct_http_send_json(req, 200, root);
    cJSON_Delete(root);
}
