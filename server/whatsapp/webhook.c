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
    if (t == NULL || type == NULL)
        return NULL;
    if (strcmp(type, "edit") == 0) {
        /* the new content, in the usual shape of its own type */
        const cJSON *em = obj(t, "message");
        const char *etype = str(em, "type");
        return em != NULL && etype != NULL && strcmp(etype, "edit") != 0 ? message_text(em, etype)
                                                                          : NULL;
    }
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

/* Sender of a message: from, else (system messages without one and without a BSUID) the ids
 * the system object has. */
static const char *message_sender(const cJSON *m)
{
    const char *from = nonempty(str(m, "from"));
    const cJSON *sys = obj(m, "system");
    if (from != NULL || nonempty(str(m, "from_user_id")) != NULL)
        return from;
    if (sys != NULL) {
        if (nonempty(str(sys, "wa_id")))
            return str(sys, "wa_id");
        if (nonempty(str(sys, "user_id")))
            return str(sys, "user_id");
    }
    return NULL;
}

/* The value.contacts[] entry of a customer: matched by BSUID when both have one, else by
 * phone number. */
static const cJSON *contact_of(const cJSON *contacts, const char *wa_id, const char *user_id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, contacts)
    {
        const char *cu = str(c, "user_id"), *cw = str(c, "wa_id");
        if (!cJSON_IsObject(c))
            continue;
        if (user_id != NULL && cu != NULL && strcmp(cu, user_id) == 0)
            return c;
        if (wa_id != NULL && cw != NULL && strcmp(cw, wa_id) == 0)
            return c;
    }
    return NULL;
}

const char *ct_wa_customer_id(const struct ct_wa_message *m)
{
    return m->user_id != NULL ? m->user_id : m->from;
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
    size_t mcap, scap, rcap, ucap;
    bool oom;
};

static void reject(struct parse *p, const struct pos *at, const cJSON *raw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reject(struct parse *p, const struct pos *at, const cJSON *raw, const char *fmt, ...)
{
    struct ct_wa_reject r;
    va_list ap;
    memset(&r, 0, sizeof(r));
    r.kind = strcmp(at->list, "statuses") == 0 ? "status" : "message";
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
    if (m->from == NULL && m->user_id == NULL)
        return m->echo ? "echo has no recipient (to or to_user_id)"
                       : "message has no sender (from or from_user_id)";
    if (m->from != NULL && !id_ok(m->from, CT_WA_USER_MAX))
        return "sender is not 1 to 64 printable characters";
    if (m->user_id != NULL && !id_ok(m->user_id, CT_WA_BSUID_MAX))
        return "sender's user id (BSUID) is not 1 to 160 printable characters";
    if (m->parent_user_id != NULL && !id_ok(m->parent_user_id, CT_WA_BSUID_MAX))
        return "sender's parent user id is not 1 to 160 printable characters";
    if (m->username != NULL && strlen(m->username) > 256)
        return "the sender's username is longer than 256 bytes";
    if (m->new_wa_id != NULL && !id_ok(m->new_wa_id, CT_WA_USER_MAX))
        return "the new phone number is not 1 to 64 printable characters";
    if (m->new_user_id != NULL && !id_ok(m->new_user_id, CT_WA_BSUID_MAX))
        return "the new user id is not 1 to 160 printable characters";
    if (m->target_wamid != NULL && !id_ok(m->target_wamid, CT_WA_ID_MAX))
        return "the id of the edited or deleted message is not 1 to 255 printable characters";
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

/* The new ids a system message announces: a changed number (with its new BSUID, since a new
 * number means a new BSUID) or a changed BSUID. Shapes vary ("wa_id" or "new_wa_id" ...), so
 * each name Meta has used is tried. */
static void system_ids(struct ct_wa_message *msg, const cJSON *sys)
{
    const char *type = str(sys, "type");
    if (type == NULL)
        return;
    if (strcmp(type, "user_changed_number") == 0 || strcmp(type, "customer_changed_number") == 0) {
        msg->new_wa_id = nonempty(str(sys, "new_wa_id"));
        if (msg->new_wa_id == NULL)
            msg->new_wa_id = nonempty(str(sys, "wa_id"));
    }
    if (strcmp(type, "user_changed_number") == 0 || strcmp(type, "user_changed_user_id") == 0 ||
        strcmp(type, "customer_changed_number") == 0) {
        msg->new_user_id = nonempty(str(sys, "new_user_id"));
        if (msg->new_user_id == NULL)
            msg->new_user_id = nonempty(str(sys, "user_id"));
    }
    /* a "change" to the id it already has is no change */
    if (msg->new_wa_id != NULL && msg->from != NULL && strcmp(msg->new_wa_id, msg->from) == 0)
        msg->new_wa_id = NULL;
    if (msg->new_user_id != NULL && msg->user_id != NULL &&
        strcmp(msg->new_user_id, msg->user_id) == 0)
        msg->new_user_id = NULL;
}

static void add_message(struct parse *p, const struct pos *at, const cJSON *m, const char *pnid,
                        const cJSON *contacts, bool echo)
{
    struct ct_wa_message msg;
    const cJSON *c;
    const char *problem;
    memset(&msg, 0, sizeof(msg));
    msg.phone_number_id = pnid;
    msg.echo = echo;
    msg.wamid = nonempty(str(m, "id"));
    if (echo) {
        /* the business sent it: the customer is the recipient */
        msg.from = nonempty(str(m, "to"));
        msg.user_id = nonempty(str(m, "to_user_id"));
        msg.parent_user_id = nonempty(str(m, "to_parent_user_id"));
    } else {
        msg.from = message_sender(m);
        msg.user_id = nonempty(str(m, "from_user_id"));
        msg.parent_user_id = nonempty(str(m, "from_parent_user_id"));
    }
    msg.type = nonempty(str(m, "type"));
    msg.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(m, "timestamp"));
    if (msg.type == NULL)
        msg.type = "unknown";
    c = contact_of(contacts, msg.from, msg.user_id);
    if (c != NULL) {
        msg.profile_name = nonempty(str(obj(c, "profile"), "name"));
        msg.username = nonempty(str(obj(c, "profile"), "username"));
        if (msg.user_id == NULL)
            msg.user_id = nonempty(str(c, "user_id"));
        if (msg.parent_user_id == NULL)
            msg.parent_user_id = nonempty(str(c, "parent_user_id"));
        if (msg.from == NULL && !echo)
            msg.from = nonempty(str(c, "wa_id"));
    }
    msg.text = message_text(m, msg.type);
    if (strcmp(msg.type, "system") == 0)
        system_ids(&msg, obj(m, "system"));
    if (strcmp(msg.type, "edit") == 0)
        msg.target_wamid = nonempty(str(obj(m, "edit"), "original_message_id"));
    else if (strcmp(msg.type, "revoke") == 0)
        msg.target_wamid = nonempty(str(obj(m, "revoke"), "original_message_id"));
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
    if (st->recipient_user_id != NULL && !id_ok(st->recipient_user_id, CT_WA_BSUID_MAX))
        return "status recipient user id is not 1 to 160 printable characters";
    if (st->username != NULL && strlen(st->username) > 256)
        return "status recipient username is longer than 256 bytes";
    return NULL;
}

static void add_status(struct parse *p, const struct pos *at, const cJSON *s, const char *pnid,
                       const cJSON *contacts)
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
    st.recipient_user_id = nonempty(str(s, "recipient_user_id"));
    st.username = nonempty(str(obj(contact_of(contacts, st.recipient_id, st.recipient_user_id),
                                   "profile"), "username"));
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

/* One BSUID change announced by a user_id_update webhook. The shape is not documented for
 * certain, so both plain ({old,new}) and nested ({user_id_update: [...]}) forms are read;
 * anything unreadable stays in the raw receipt. */
static void add_id_update(struct parse *p, const cJSON *u, const char *pnid)
{
    struct ct_wa_id_update x;
    memset(&x, 0, sizeof(x));
    x.phone_number_id = pnid;
    x.old_user_id = nonempty(str(u, "old_user_id"));
    if (x.old_user_id == NULL)
        x.old_user_id = nonempty(str(u, "user_id"));
    x.new_user_id = nonempty(str(u, "new_user_id"));
    x.wa_id = nonempty(str(u, "wa_id"));
    x.ts = parse_ts(cJSON_GetObjectItemCaseSensitive(u, "timestamp"));
    x.raw = u;
    if (x.ts < 0)
        x.ts = 0;
    if (x.old_user_id == NULL || x.new_user_id == NULL || !id_ok(x.old_user_id, CT_WA_BSUID_MAX) ||
        !id_ok(x.new_user_id, CT_WA_BSUID_MAX) || strcmp(x.old_user_id, x.new_user_id) == 0 ||
        (x.wa_id != NULL && !id_ok(x.wa_id, CT_WA_USER_MAX)))
        return;
    if (!grow((void **)&p->b->id_updates, p->b->nid_updates, &p->ucap, sizeof(x))) {
        p->oom = true;
        return;
    }
    p->b->id_updates[p->b->nid_updates++] = x;
}

static void parse_id_updates(struct parse *p, const cJSON *value)
{
    const char *pnid = nonempty(str(obj(value, "metadata"), "phone_number_id"));
    const cJSON *item, *list;
    if (pnid == NULL || !digits_ok(pnid, CT_WA_PNID_MAX))
        return;
    add_id_update(p, value, pnid);
    cJSON_ArrayForEach(list, value)
    {
        if (!cJSON_IsArray(list))
            continue;
        cJSON_ArrayForEach(item, list)
        {
            if (cJSON_IsObject(item))
                add_id_update(p, item, pnid);
        }
    }
}

/* One change's messages and statuses. */
static void parse_value(struct parse *p, int entry, int change, const cJSON *value)
{
    const char *pnid = nonempty(str(obj(value, "metadata"), "phone_number_id"));
    const cJSON *contacts = cJSON_GetObjectItemCaseSensitive(value, "contacts");
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(value, "errors");
    /* message_echoes: replies the business typed in the WhatsApp Business app (coexistence) */
    static const char *const lists[] = {"messages", "statuses", "message_echoes"};

    if (cJSON_IsArray(errs))
        p->b->nerrors += (size_t)cJSON_GetArraySize(errs);
    for (int l = 0; l < 3; l++) {
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
            else if (l == 1)
                add_status(p, &at, item, pnid, contacts);
            else
                add_message(p, &at, item, pnid, contacts, l == 2);
            at.item++;
        }
    }
}

ct_rc ct_webhook_parse(const char *body, size_t len, struct ct_wa_batch *out, struct ct_err *err)
{
    const cJSON *entry, *e, *change;
    struct parse p = {out, 0, 0, 0, 0, false};
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
            if (field != NULL && value != NULL &&
                (strcmp(field, "messages") == 0 || strcmp(field, "smb_message_echoes") == 0))
                parse_value(&p, ei, ci, value);
            else if (field != NULL && value != NULL && strcmp(field, "user_id_update") == 0)
                parse_id_updates(&p, value);
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
    free(b->id_updates);
    memset(b, 0, sizeof(*b));
}
