/* api_messages.c: thin handlers for agent replies and templates: decode the body, honour the
 * Idempotency-Key header, call outbound.c, answer 202 with the queued message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "casetrail/json.h"
#include "casetrail/outbound.h"
#include "casetrail/text.h"
#include "casetrail/tickets.h"

/* Reads the body as JSON (strictly) and its SHA-256, which an idempotency key is bound to. */
static bool read_body(struct ct_req *req, cJSON **json, char sha[65])
{
    struct ct_err err;
    char *body = NULL;
    size_t len = 0;
    size_t max = req->srv->cfg.max_body < 1024 * 1024 ? req->srv->cfg.max_body : 1024 * 1024;

    *json = NULL;
    if (ct_http_read_body(req, max, &body, &len, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return false;
    }
    ct_sha256_hex(body, len, sha);
    if (!ct_utf8_valid(body, len)) {
        free(body);
        ct_http_fail(req, CT_E_INVALID, "invalid_json", "request body is not valid UTF-8");
        return false;
    }
    *json = ct_json_parse_strict(body, len, CT_JSON_DEPTH_API, &err);
    free(body);
    if (*json == NULL || !cJSON_IsObject(*json)) {
        if (*json != NULL)
            ct_err_set(&err, CT_E_INVALID, "invalid_json", "request body must be a JSON object");
        cJSON_Delete(*json);
        *json = NULL;
        ct_http_send_error(req, &err);
        return false;
    }
    return true;
}

static void queue(struct ct_req *req, struct ct_reply_request *r, const char *sha)
{
    struct ct_reply_answer answer;
    struct ct_err err;

    r->idempotency_key = ct_http_header(req, "Idempotency-Key");
    r->request_sha256 = sha;
    if (ct_outbound_queue(req->srv->pool, &req->user, r, &answer, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        return;
    }
    /* a replayed key answers the stored answer byte for byte */
    ct_http_send(req, answer.status, "application/json", answer.body, strlen(answer.body));
    free(answer.body);
}

void ct_api_ticket_reply(struct ct_req *req)
{
    static const char *const allowed[] = {"text", "reply_to", NULL};
    struct ct_reply_request r = {0};
    struct ct_err err;
    char sha[65];
    cJSON *body = NULL;

    if (!ct_http_path_id(req, "ticket", &r.ticket_id) || !read_body(req, &body, sha))
        return;
    if (ct_json_only(body, allowed, &err) != CT_OK ||
        ct_json_str(body, "text", true, 4 * CT_REPLY_MAX_CHARS, &r.text, &err) != CT_OK ||
        ct_json_str(body, "reply_to", false, 255, &r.reply_to, &err) != CT_OK)
        ct_http_send_error(req, &err);
    else
        queue(req, &r, sha);
    cJSON_Delete(body);
}

/* A URL the Graph API will fetch: https, printable ASCII without spaces or quotes. */
static bool link_ok(const char *s)
{
    if (strncmp(s, "https://", 8) != 0 || s[8] == '\0' || s[8] == '/')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\')
            return false;
    return true;
}

/* Checks a media reply's fields beyond their types; false (err filled) when refused. */
static bool media_fields_ok(const struct ct_reply_request *r, struct ct_err *err)
{
    if (strcmp(r->media_kind, "image") != 0 && strcmp(r->media_kind, "document") != 0)
        ct_err_set(err, CT_E_INVALID, "invalid_media_type", "type must be image or document");
    else if (!link_ok(r->media_link))
        ct_err_set(err, CT_E_INVALID, "invalid_link",
                   "link must be an https:// URL without spaces (the Graph API fetches it)");
    else if (r->text != NULL && ct_utf8_chars(r->text) > CT_CAPTION_MAX_CHARS)
        ct_err_set(err, CT_E_INVALID, "too_long", "caption is longer than %d characters",
                   CT_CAPTION_MAX_CHARS);
    else if (r->filename != NULL && strcmp(r->media_kind, "document") != 0)
        ct_err_set(err, CT_E_INVALID, "unknown_field", "filename is for documents only");
    else if (r->filename != NULL && (!ct_text_present(r->filename) ||
                                     strpbrk(r->filename, "/\\") != NULL))
        ct_err_set(err, CT_E_INVALID, "invalid_filename",
                   "filename must be a name without slashes");
    else
        return true;
    return false;
}

void ct_api_ticket_media(struct ct_req *req)
{
    static const char *const allowed[] = {"type", "link", "caption", "filename", "reply_to",
                                          NULL};
    struct ct_reply_request r = {0};
    struct ct_err err;
    char sha[65];
    cJSON *body = NULL;

    if (!ct_http_path_id(req, "ticket", &r.ticket_id) || !read_body(req, &body, sha))
        return;
    if (ct_json_only(body, allowed, &err) != CT_OK ||
        ct_json_str(body, "type", true, 16, &r.media_kind, &err) != CT_OK ||
        ct_json_str(body, "link", true, 2048, &r.media_link, &err) != CT_OK ||
        ct_json_str(body, "caption", false, 4 * CT_CAPTION_MAX_CHARS, &r.text, &err) != CT_OK ||
        ct_json_str(body, "filename", false, 240, &r.filename, &err) != CT_OK ||
        ct_json_str(body, "reply_to", false, 255, &r.reply_to, &err) != CT_OK ||
        !media_fields_ok(&r, &err))
        ct_http_send_error(req, &err);
    else
        queue(req, &r, sha);
    cJSON_Delete(body);
}

/* "[template name/language] p1, p2": what the timeline shows for a template. */
static char *shown(const char *name, const char *language, const cJSON *components)
{
    char out[1024];
    size_t n = (size_t)snprintf(out, sizeof(out), "[template %s/%s]", name, language);
    const cJSON *c, *p;
    const char *sep = " ";
    cJSON_ArrayForEach(c, components)
    {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "parameters"))
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "text");
            if (cJSON_IsString(t) && n < sizeof(out))
                n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", sep, t->valuestring);
            sep = ", ";
        }
    }
    return strdup(out);
}

static bool template_name_ok(const char *s, const char *chars, size_t max)
{
    size_t n = strspn(s, chars);
    return n >= 1 && n <= max && s[n] == '\0';
}

void ct_api_ticket_template(struct ct_req *req)
{
    static const char *const allowed[] = {"name", "language", "components", NULL};
    struct ct_reply_request r = {.is_template = true};
    struct ct_err err;
    char sha[65];
    char *components = NULL, *text = NULL;
    cJSON *body = NULL;
    const cJSON *comp;

    if (!ct_http_path_id(req, "ticket", &r.ticket_id) || !read_body(req, &body, sha))
        return;
    comp = cJSON_GetObjectItemCaseSensitive(body, "components");
    if (ct_json_only(body, allowed, &err) != CT_OK ||
        ct_json_str(body, "name", true, 512, &r.template_name, &err) != CT_OK ||
        ct_json_str(body, "language", true, 15, &r.language, &err) != CT_OK) {
        ct_http_send_error(req, &err);
        goto out;
    }
    if (!template_name_ok(r.template_name, "abcdefghijklmnopqrstuvwxyz0123456789_", 512) ||
        !template_name_ok(r.language, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-",
                          15)) {
        ct_http_fail(req, CT_E_INVALID, "invalid_template",
                     "name must be lower-case letters, digits and _, language a code like en_US");
        goto out;
    }
    if (comp != NULL && (!cJSON_IsArray(comp) || cJSON_GetArraySize(comp) > 10)) {
        ct_http_fail(req, CT_E_INVALID, "wrong_type",
                     "components must be an array of at most 10 components");
        goto out;
    }
    components = comp != NULL ? cJSON_PrintUnformatted(comp) : NULL;
    text = shown(r.template_name, r.language, comp);
    if (text == NULL || (comp != NULL && components == NULL)) {
        ct_http_fail(req, CT_E_INTERNAL, "internal", "out of memory");
        goto out;
    }
    r.components_json = components;
    r.shown = text;
    queue(req, &r, sha);
out:
    free(components);
    free(text);
    cJSON_Delete(body);
}
