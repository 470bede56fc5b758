/* audit.c: canonical event encoding, the SHA-256 hash chain and keyed text digests.
 * Changing the encoding breaks every stored chain: add a new version tag instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "casetrail/audit.h"

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_put(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static char *buf_finish(struct buf *b)
{
    if (b->oom || b->p == NULL) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* key:LEN:value\n, or key:-\n for NULL. The length prefix makes the encoding injective: no
 * value can imitate a field boundary. */
static void put_field(struct buf *b, const char *key, const char *value)
{
    char num[32];
    buf_str(b, key);
    if (value == NULL) {
        buf_str(b, ":-\n");
        return;
    }
    snprintf(num, sizeof(num), ":%zu:", strlen(value));
    buf_str(b, num);
    buf_str(b, value);
    buf_str(b, "\n");
}

static void put_int(struct buf *b, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    put_field(b, key, num);
}

char *ct_audit_canonical(const struct ct_event_fields *ev)
{
    struct buf b = {0};
    buf_str(&b, "casetrail-event-v1\n");
    put_field(&b, "chain", ev->chain);
    put_int(&b, "seq", ev->seq);
    put_field(&b, "action", ev->action);
    put_field(&b, "actor_type", ev->actor_type);
    put_field(&b, "actor_id", ev->actor_id);
    put_field(&b, "from", ev->from_value);
    put_field(&b, "to", ev->to_value);
    put_int(&b, "occurred_us", ev->occurred_us);
    put_int(&b, "recorded_us", ev->recorded_us);
    put_field(&b, "data", ev->data);
    put_field(&b, "digests", ev->digests);
    return buf_finish(&b);
}

void ct_audit_event_hash(const unsigned char prev[CT_HASH_LEN], const struct ct_event_fields *ev,
                         unsigned char out[CT_HASH_LEN])
{
    char *canon = ct_audit_canonical(ev);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;

    if (canon == NULL || ctx == NULL) {
        /* OOM: an all-0xff hash never verifies, so the failure cannot pass silently */
        memset(out, 0xff, CT_HASH_LEN);
        goto out;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, prev, CT_HASH_LEN);
    EVP_DigestUpdate(ctx, canon, strlen(canon));
    EVP_DigestFinal_ex(ctx, out, &len);
out:
    EVP_MD_CTX_free(ctx);
    free(canon);
}

static void json_string(struct buf *b, const char *s)
{
    char esc[8];
    buf_str(b, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            buf_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            buf_put(b, esc, 6);
        } else {
            buf_put(b, (const char *)&c, 1);
        }
    }
    buf_str(b, "\"");
}

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static bool canon_item(struct buf *b, const cJSON *it, int depth)
{
    char num[32];
    if (depth > 16)
        return false;
    if (cJSON_IsNull(it)) {
        buf_str(b, "null");
    } else if (cJSON_IsTrue(it)) {
        buf_str(b, "true");
    } else if (cJSON_IsFalse(it)) {
        buf_str(b, "false");
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        /* only integers that survive a double exactly: amounts, levels, counts */
        if (d != floor(d) || fabs(d) > 9007199254740992.0)
            return false;
        snprintf(num, sizeof(num), "%lld", (long long)d);
        buf_str(b, num);
    } else if (cJSON_IsString(it)) {
        json_string(b, it->valuestring);
    } else if (cJSON_IsArray(it)) {
        buf_str(b, "[");
        for (const cJSON *c = it->child; c != NULL; c = c->next) {
            if (c != it->child)
                buf_str(b, ",");
            if (!canon_item(b, c, depth + 1))
                return false;
        }
        buf_str(b, "]");
    } else if (cJSON_IsObject(it)) {
        size_t n = 0, i = 0;
        for (const cJSON *c = it->child; c != NULL; c = c->next)
            n++;
        const cJSON **keys = calloc(n ? n : 1, sizeof(*keys));
        if (keys == NULL)
            return false;
        for (const cJSON *c = it->child; c != NULL; c = c->next)
            keys[i++] = c;
        qsort(keys, n, sizeof(*keys), cmp_keys);
        buf_str(b, "{");
        for (i = 0; i < n; i++) {
            if (i > 0)
                buf_str(b, ",");
            json_string(b, keys[i]->string);
            buf_str(b, ":");
            if (!canon_item(b, keys[i], depth + 1)) {
                free(keys);
                return false;
            }
        }
        free(keys);
        buf_str(b, "}");
    } else {
        return false;
    }
    return true;
}

char *ct_audit_canonical_json(const cJSON *item)
{
    struct buf b = {0};
    if (!canon_item(&b, item, 0)) {
        free(b.p);
        return NULL;
    }
    return buf_finish(&b);
}

void ct_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ct_hex_decode(const char *hex, unsigned char *out, size_t len)
{
    if (hex == NULL || strlen(hex) != 2 * len)
        return false;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(hex[2 * i]);
        int lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

void ct_audit_text_digest(const unsigned char *salt, size_t salt_len, const char *text,
                          char out[2 * CT_HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), salt, (int)salt_len, (const unsigned char *)text, strlen(text), md, &mdlen);
    ct_hex_encode(md, CT_HASH_LEN, out);
}

bool ct_audit_new_salt(unsigned char salt[CT_SALT_LEN])
{
    return RAND_bytes(salt, CT_SALT_LEN) == 1;
}
