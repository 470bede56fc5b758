/* webhook.c: signature check (constant time) and payload parsing into plain structs. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "casetrail/json.h"
#include "casetrail/text.h"
#include "casetrail/webhook.h"

bool ct_webhook_signature_ok(const char *secret, const char *body, size_t len, const char *header)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[32];
    unsigned int wlen = 0;

    if (secret == NULL || header == NULL || strncmp(header, "sha256=", 7) != 0)
        return false;
    if (!ct_hex_decode(header + 7, got, sizeof(got)))
        return false;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, want,
             &wlen) == NULL || wlen != 32)
        return false;
    return CRYPTO_memcmp(want, got, 32) == 0;
}

int ct_webhook_status_rank(const char *status)
{
    static const struct {
        const char *name;
        int rank;
    } ranks[] = {{"sent", 1}, {"delivered", 2}, {"read", 3}, {"played", 4}, {"failed", 100}};
    for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++) {
        if (strcmp(status, ranks[i].name) == 0)
            return ranks[i].rank;
    }
    return 0;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *nonempty(const char *s)
{
    return (s != NULL && s[0] != '\0') ? s : NULL;
}

static const cJSON *obj(const cJSON *parent, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, key);
    return cJSON_IsObject(v) ? v : NULL;
}

/* WhatsApp timestamps are strings of Unix seconds; a number is tolerated. -1 when invalid. */
static long long parse_ts(const cJSON *v)
{
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 1e11)
        return (long long)v->valuedouble;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > 11)
        return -1;
    for (const char *p = v->valuestring; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p))
            return -1;
    }
    long long ts = atoll(v->valuestring);
    return ts > 0 ? ts : -1; /* 0 is no time at all: callers read 0 as "now" */
}

/* The human-readable content of a message, by type. */
static const char *message_text(const cJSON *m, const char *type)
{
    const cJSON *t = obj(m, type);
    if (t == NULL)
        return NULL;
    if (strcmp(type, "text") == 0)
        return str(t, "body");
    if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 || strcmp(type, "document") == 0)
        return nonempty(str(t, "caption"));
    if (strcmp(type, "button") == 0)
        return str(t, "text");
    if (strcmp(type, "reaction") == 0)
        return nonempty(str(t, "emoji"));
    if (strcmp(type, "order") == 0)
        return nonempty(str(t, "text"));
    if (strcmp(type, "system") == 0)
        return str(t, "body");
    if (strcmp(type, "location") == 0)
        return nonempty(str(t, "name")) ? str(t, "name") : nonempty(str(t, "address"));
    if (strcmp(type, "interactive") == 0) {
        const cJSON *r = obj(t, "button_reply");
        if (r == NULL)
            r = obj(t, "list_reply");
        if (r != NULL)
            return str(r, "title");
        r = obj(t, "nfm_reply");
        return r != NULL ? str(r, "body") : NULL;
    }
    return NULL;
}

/* Sender of a message: from, else (system messages without one) the ids the system object has. */
static const char *message_sender(const cJSON *m)
{
    const char *from = nonempty(str(m, "from"));
    const cJSON *sys = obj(m, "system");
    if (from != NULL)
        return from;
    if (sys != NULL) {
        if (nonempty(str(sys, "wa_id")))
            return str(sys, "wa_id");
        if (nonempty(str(sys, "user_id")))
            return str(sys, "user_id");
    }
    return NULL;
}

static const char *profile_name(const cJSON *contacts, const char *wa_id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        if (cJSON_IsObject(c) && str(c, "wa_id") != NULL && strcmp(str(c, "wa_id"), wa_id) == 0)
            return nonempty(str(obj(c, "profile"), "name"));
    }
    return NULL;
}

static bool grow(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

static bool add_message(struct ct_wa_batch *b, size_t *cap, const cJSON *m, const char *pnid,
                        const cJSON *contacts)
{
    struct ct_wa_message msg;
    memset(&msg, 0, sizeof(msg));
    msg.phone_number_id = pnid;
    msg.wamid = nonempty(str(m, "id"));
    msg.from = message_sender(m);
    msg.type = nonempty(str(m, "type"));
    msg.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(m, "timestamp"));
    if (msg.wamid == NULL || msg.from == NULL || msg.ts < 0) {
        b->nskipped++;
        return true;
    }
    if (msg.type == NULL)
        msg.type = "unknown";
    msg.profile_name = profile_name(contacts, msg.from);
    msg.text = message_text(m, msg.type);
    msg.context_wamid = nonempty(str(obj(m, "context"), "id"));
    if (strcmp(msg.type, "reaction") == 0)
        msg.context_wamid = nonempty(str(obj(m, "reaction"), "message_id"));
    msg.raw = m;
    if (!grow((void **)&b->messages, b->nmessages, cap, sizeof(msg)))
        return false;
    b->messages[b->nmessages++] = msg;
    return true;
}

static bool add_status(struct ct_wa_batch *b, size_t *cap, const cJSON *s, const char *pnid)
{
    struct ct_wa_status st;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(s, "errors");
    memset(&st, 0, sizeof(st));
    st.phone_number_id = pnid;
    st.wamid = nonempty(str(s, "id"));
    st.status = nonempty(str(s, "status"));
    st.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(s, "timestamp"));
    st.recipient_id = str(s, "recipient_id");
    if (st.wamid == NULL || st.status == NULL || st.ts < 0) {
        b->nskipped++;
        return true;
    }
    if (cJSON_IsArray(errs) && cJSON_IsObject(errs->child)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(errs->child, "code");
        if (cJSON_IsNumber(code))
            st.error_code = code->valueint;
        st.error_title = str(errs->child, "title");
    }
    st.raw = s;
    if (!grow((void **)&b->statuses, b->nstatuses, cap, sizeof(st)))
        return false;
    b->statuses[b->nstatuses++] = st;
    return true;
}

ct_rc ct_webhook_parse(const char *body, size_t len, struct ct_wa_batch *out, struct ct_err *err)
{
    const cJSON *entry, *e, *change;
    size_t mcap = 0, scap = 0;

    memset(out, 0, sizeof(*out));
    if (!ct_utf8_valid(body, len))
        return ct_err_set(err, CT_E_INVALID, "invalid_json", "request body is not valid UTF-8");
    out->root = ct_json_parse_strict(body, len, CT_JSON_DEPTH_WEBHOOK, err);
    if (out->root == NULL)
        return err->rc;
    if (!cJSON_IsObject(out->root) || str(out->root, "object") == NULL ||
        strcmp(str(out->root, "object"), "whatsapp_business_account") != 0) {
        ct_webhook_batch_free(out);
        return ct_err_set(err, CT_E_INVALID, "not_whatsapp",
                          "payload is not a WhatsApp Business Account webhook "
                          "(expected \"object\":\"whatsapp_business_account\")");
    }
    entry = cJSON_GetObjectItemCaseSensitive(out->root, "entry");
    if (!cJSON_IsArray(entry)) {
        ct_webhook_batch_free(out);
        return ct_err_set(err, CT_E_INVALID, "not_whatsapp", "payload has no \"entry\" array");
    }
    cJSON_ArrayForEach(e, entry)
    {
        const cJSON *changes = cJSON_GetObjectItemCaseSensitive(e, "changes");
        cJSON_ArrayForEach(change, (cJSON_IsArray(changes) ? changes : NULL))
        {
            const char *field = str(change, "field");
            const cJSON *value = obj(change, "value");
            const cJSON *item;
            /* other fields (account_update, template status ...) stay in the raw receipt only */
            if (field == NULL || strcmp(field, "messages") != 0 || value == NULL)
                continue;
            const char *pnid = nonempty(str(obj(value, "metadata"), "phone_number_id"));
            const cJSON *contacts = cJSON_GetObjectItemCaseSensitive(value, "contacts");
            const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(value, "messages");
            const cJSON *sts = cJSON_GetObjectItemCaseSensitive(value, "statuses");
            const cJSON *errs = cJSON_GetObjectItemCaseSensitive(value, "errors");
            if (cJSON_IsArray(errs))
                out->nerrors += (size_t)cJSON_GetArraySize(errs);
            if (pnid == NULL) {
                out->nskipped += (size_t)(cJSON_GetArraySize(msgs) + cJSON_GetArraySize(sts));
                continue;
            }
            cJSON_ArrayForEach(item, (cJSON_IsArray(msgs) ? msgs : NULL))
            {
                if (!cJSON_IsObject(item)) {
                    out->nskipped++;
                } else if (!add_message(out, &mcap, item, pnid, contacts)) {
                    goto oom;
                }
            }
            cJSON_ArrayForEach(item, (cJSON_IsArray(sts) ? sts : NULL))
            {
                if (!cJSON_IsObject(item)) {
                    out->nskipped++;
                } else if (!add_status(out, &scap, item, pnid)) {
                    goto oom;
                }
            }
        }
    }
    return CT_OK;
oom:
    ct_webhook_batch_free(out);
    return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
}

void ct_webhook_batch_free(struct ct_wa_batch *b)
{
    cJSON_Delete(b->root);
    free(b->messages);
    free(b->statuses);
    memset(b, 0, sizeof(*b));
}
