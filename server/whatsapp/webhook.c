/* webhook.c: signature check (constant time) and payload parsing into plain structs. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
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

/* Where an entry sits in the envelope, for rejects. */
struct pos {
    int entry, change;
    const char *list; /* "messages" | "statuses" */
    int item;
};

struct parse {
    struct ct_wa_batch *b;
    size_t mcap, scap, rcap;
    bool oom;
};

static void reject(struct parse *p, const struct pos *at, const cJSON *raw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reject(struct parse *p, const struct pos *at, const cJSON *raw, const char *fmt, ...)
{
    struct ct_wa_reject r;
    va_list ap;
    memset(&r, 0, sizeof(r));
    r.kind = strcmp(at->list, "messages") == 0 ? "message" : "status";
    snprintf(r.where, sizeof(r.where), "entry[%d].changes[%d].value.%s[%d]", at->entry,
             at->change, at->list, at->item);
    va_start(ap, fmt);
    vsnprintf(r.reason, sizeof(r.reason), fmt, ap);
    va_end(ap);
    r.raw = raw;
    if (!grow((void **)&p->b->rejects, p->b->nrejects, &p->rcap, sizeof(r))) {
        p->oom = true;
        return;
    }
    p->b->rejects[p->b->nrejects++] = r;
}

/* Printable ASCII without spaces, 1 to max bytes: what WhatsApp ids are made of. */
static bool id_ok(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
            return false;
    }
    return n >= 1 && n <= max;
}

static bool digits_ok(const char *s, size_t max)
{
    size_t n = strspn(s, "0123456789");
    return n >= 1 && n <= max && s[n] == '\0';
}

/* Lower-case names (message types, statuses). */
static bool word_ok(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_0123456789");
    return n >= 1 && n <= 32 && s[n] == '\0';
}

/* Checks a message's keyed fields; the first problem found, or NULL when it can be stored. */
static const char *message_problem(const struct ct_wa_message *m)
{
    if (m->wamid == NULL)
        return "message has no id";
    if (!id_ok(m->wamid, CT_WA_ID_MAX))
        return "message id is not 1 to 255 printable characters";
    if (m->from == NULL)
        return "message has no sender (from)";
    if (!id_ok(m->from, CT_WA_USER_MAX))
        return "sender is not 1 to 64 printable characters";
    if (m->ts < 0)
        return "message has no valid timestamp";
    if (!word_ok(m->type))
        return "message type is not a lower-case name of at most 32 characters";
    if (m->context_wamid != NULL && !id_ok(m->context_wamid, CT_WA_ID_MAX))
        return "the id the message replies or reacts to is not 1 to 255 printable characters";
    if (m->profile_name != NULL && strlen(m->profile_name) > CT_WA_NAME_MAX)
        return "the sender's profile name is longer than 1024 bytes";
    return NULL;
}

static void add_message(struct parse *p, const struct pos *at, const cJSON *m, const char *pnid,
                        const cJSON *contacts)
{
    struct ct_wa_message msg;
    const char *problem;
    memset(&msg, 0, sizeof(msg));
    msg.phone_number_id = pnid;
    msg.wamid = nonempty(str(m, "id"));
    msg.from = message_sender(m);
    msg.type = nonempty(str(m, "type"));
    msg.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(m, "timestamp"));
    if (msg.type == NULL)
        msg.type = "unknown";
    if (msg.from != NULL)
        msg.profile_name = profile_name(contacts, msg.from);
    msg.text = message_text(m, msg.type);
    msg.context_wamid = nonempty(str(obj(m, "context"), "id"));
    if (strcmp(msg.type, "reaction") == 0)
        msg.context_wamid = nonempty(str(obj(m, "reaction"), "message_id"));
    msg.raw = m;
    problem = message_problem(&msg);
    if (problem != NULL) {
        reject(p, at, m, "%s", problem);
        return;
    }
    if (!grow((void **)&p->b->messages, p->b->nmessages, &p->mcap, sizeof(msg))) {
        p->oom = true;
        return;
    }
    p->b->messages[p->b->nmessages++] = msg;
}

static const char *status_problem(const struct ct_wa_status *st)
{
    if (st->wamid == NULL)
        return "status has no message id";
    if (!id_ok(st->wamid, CT_WA_ID_MAX))
        return "status message id is not 1 to 255 printable characters";
    if (st->status == NULL || !word_ok(st->status))
        return "status has no status name of at most 32 lower-case characters";
    if (st->ts < 0)
        return "status has no valid timestamp";
    if (st->recipient_id != NULL && !id_ok(st->recipient_id, CT_WA_USER_MAX))
        return "status recipient is not 1 to 64 printable characters";
    return NULL;
}

static void add_status(struct parse *p, const struct pos *at, const cJSON *s, const char *pnid)
{
    struct ct_wa_status st;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(s, "errors");
    const char *problem;
    memset(&st, 0, sizeof(st));
    st.phone_number_id = pnid;
    st.wamid = nonempty(str(s, "id"));
    st.status = nonempty(str(s, "status"));
    st.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(s, "timestamp"));
    st.recipient_id = nonempty(str(s, "recipient_id"));
    problem = status_problem(&st);
    if (problem != NULL) {
        reject(p, at, s, "%s", problem);
        return;
    }
    if (cJSON_IsArray(errs) && cJSON_IsObject(errs->child)) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(errs->child, "code");
        if (cJSON_IsNumber(code) && code->valuedouble >= 0 && code->valuedouble < 1e9)
            st.error_code = (int)code->valuedouble;
        st.error_title = str(errs->child, "title");
    }
    st.raw = s;
    if (!grow((void **)&p->b->statuses, p->b->nstatuses, &p->scap, sizeof(st))) {
        p->oom = true;
        return;
    }
    p->b->statuses[p->b->nstatuses++] = st;
}

/* One change's messages and statuses. */
static void parse_value(struct parse *p, int entry, int change, const cJSON *value)
{
    const char *pnid = nonempty(str(obj(value, "metadata"), "phone_number_id"));
    const cJSON *contacts = cJSON_GetObjectItemCaseSensitive(value, "contacts");
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(value, "errors");
    static const char *const lists[] = {"messages", "statuses"};

    if (cJSON_IsArray(errs))
        p->b->nerrors += (size_t)cJSON_GetArraySize(errs);
    for (int l = 0; l < 2; l++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(value, lists[l]);
        const cJSON *item;
        struct pos at = {entry, change, lists[l], 0};
        cJSON_ArrayForEach(item, (cJSON_IsArray(arr) ? arr : NULL))
        {
            if (!cJSON_IsObject(item))
                reject(p, &at, item, "entry is not an object");
            else if (pnid == NULL || !digits_ok(pnid, CT_WA_PNID_MAX))
                reject(p, &at, item, "the change has no metadata.phone_number_id of 1 to 32 "
                                     "digits");
            else if (l == 0)
                add_message(p, &at, item, pnid, contacts);
            else
                add_status(p, &at, item, pnid);
            at.item++;
        }
    }
}

ct_rc ct_webhook_parse(const char *body, size_t len, struct ct_wa_batch *out, struct ct_err *err)
{
    const cJSON *entry, *e, *change;
    struct parse p = {out, 0, 0, 0, false};
    int ei = 0;

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
        int ci = 0;
        cJSON_ArrayForEach(change, (cJSON_IsArray(changes) ? changes : NULL))
        {
            const char *field = str(change, "field");
            const cJSON *value = obj(change, "value");
            /* other fields (account_update, template status ...) stay in the raw receipt only */
            if (field != NULL && strcmp(field, "messages") == 0 && value != NULL)
                parse_value(&p, ei, ci, value);
            ci++;
        }
        ei++;
    }
    if (p.oom) {
        ct_webhook_batch_free(out);
        return ct_err_set(err, CT_E_INTERNAL, "internal", "out of memory");
    }
    return CT_OK;
}

void ct_webhook_batch_free(struct ct_wa_batch *b)
{
    cJSON_Delete(b->root);
    free(b->messages);
    free(b->statuses);
    free(b->rejects);
    memset(b, 0, sizeof(*b));
}
