/* audit.c: canonical event encoding, the SHA-256 hash chain and keyed text digests.
 * Changing the encoding breaks every stored chain: add a new version tag instead. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "casetrail/audit.h"
#include "casetrail/buf.h"
#include "casetrail/json.h"
#include "casetrail/model.h"

/* key:LEN:value\n, or key:-\n for NULL. The length prefix makes the encoding injective: no
 * value can imitate a field boundary. */
static void put_field(struct ct_buf *b, const char *key, const char *value)
{
    char num[32];
    ct_buf_adds(b, key);
    if (value == NULL) {
        ct_buf_adds(b, ":-\n");
        return;
    }
    snprintf(num, sizeof(num), ":%zu:", strlen(value));
    ct_buf_adds(b, num);
    ct_buf_adds(b, value);
    ct_buf_adds(b, "\n");
}

static void put_int(struct ct_buf *b, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof(num), "%lld", v);
    put_field(b, key, num);
}

char *ct_audit_canonical(const struct ct_event_fields *ev)
{
    struct ct_buf b = {0};
    ct_buf_adds(&b, "casetrail-event-v1\n");
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
    return ct_buf_take(&b, NULL);
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

static void json_string(struct ct_buf *b, const char *s)
{
    char esc[8];
    ct_buf_adds(b, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            ct_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            ct_buf_add(b, esc, 6);
        } else {
            ct_buf_add(b, (const char *)&c, 1);
        }
    }
    ct_buf_adds(b, "\"");
}

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static bool canon_item(struct ct_buf *b, const cJSON *it, int depth)
{
    char num[32];
    if (depth > 16)
        return false;
    if (cJSON_IsNull(it)) {
        ct_buf_adds(b, "null");
    } else if (cJSON_IsTrue(it)) {
        ct_buf_adds(b, "true");
    } else if (cJSON_IsFalse(it)) {
        ct_buf_adds(b, "false");
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        /* only integers that survive a double exactly: amounts, levels, counts */
        if (d != floor(d) || fabs(d) > 9007199254740992.0)
            return false;
        snprintf(num, sizeof(num), "%lld", (long long)d);
        ct_buf_adds(b, num);
    } else if (cJSON_IsString(it)) {
        json_string(b, it->valuestring);
    } else if (cJSON_IsArray(it)) {
        ct_buf_adds(b, "[");
        for (const cJSON *c = it->child; c != NULL; c = c->next) {
            if (c != it->child)
                ct_buf_adds(b, ",");
            if (!canon_item(b, c, depth + 1))
                return false;
        }
        ct_buf_adds(b, "]");
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
        ct_buf_adds(b, "{");
        for (i = 0; i < n; i++) {
            if (i > 0)
                ct_buf_adds(b, ",");
            json_string(b, keys[i]->string);
            ct_buf_adds(b, ":");
            if (!canon_item(b, keys[i], depth + 1)) {
                free(keys);
                return false;
            }
        }
        free(keys);
        ct_buf_adds(b, "}");
    } else {
        return false;
    }
    return true;
}

char *ct_audit_canonical_json(const cJSON *item)
{
    struct ct_buf b = {0};
    if (!canon_item(&b, item, 0)) {
        ct_buf_free(&b);
        return NULL;
    }
    return ct_buf_take(&b, NULL);
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

/* ---- verification ---- */

#include <openssl/crypto.h>
#include <openssl/pem.h>

void ct_chain_free(struct ct_chain *c)
{
    for (size_t i = 0; i < c->nevents; i++) {
        struct ct_event_row *e = &c->events[i];
        free(e->action);
        free(e->actor_type);
        free(e->actor_id);
        free(e->from_value);
        free(e->to_value);
        free(e->data);
        free(e->digests);
    }
    for (size_t i = 0; i < c->ntexts; i++) {
        free(c->texts[i].field);
        free(c->texts[i].body);
        OPENSSL_cleanse(c->texts[i].salt, CT_SALT_LEN);
    }
    for (size_t i = 0; i < c->nfacts; i++)
        free(c->facts[i].value);
    free(c->events);
    free(c->texts);
    free(c->facts);
    memset(c, 0, sizeof(*c));
}

static void fail(struct ct_verify_result *r, long long seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct ct_verify_result *r, long long seq, const char *fmt, ...)
{
    va_list ap;
    r->ok = false;
    r->first_bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

bool ct_audit_recanon(const char *stored, char **out)
{
    cJSON *j;
    *out = NULL;
    if (stored == NULL)
        return true;
    j = cJSON_Parse(stored);
    if (j == NULL)
        return false;
    *out = ct_audit_canonical_json(j);
    cJSON_Delete(j);
    return *out != NULL;
}

/* First text row of event id (texts are sorted by event_id), or n when none. */
static size_t first_text(const struct ct_chain *c, long long id)
{
    size_t lo = 0, hi = c->ntexts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->texts[mid].event_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Whether the chain records an erasure, the one lawful way for texts and salts to go. */
static bool records_erasure(const struct ct_chain *c)
{
    for (size_t i = 0; i < c->nevents; i++) {
        if (strcmp(c->events[i].action, CT_EV_ERASED) == 0)
            return true;
    }
    return false;
}

/* Checks the texts of one event against its digests; false on the first mismatch. */
static bool check_texts(const struct ct_chain *c, const struct ct_event_row *e,
                        struct ct_verify_result *r)
{
    cJSON *dig = e->digests ? cJSON_Parse(e->digests) : NULL;
    const cJSON *d;
    bool ok = true;

    /* a digests value that hashes consistently but is not an object (an array has members
     * without names) must be a break, never a crash */
    if (e->digests != NULL && !cJSON_IsObject(dig)) {
        cJSON_Delete(dig);
        fail(r, e->seq, "the event's digests are not an object of texts");
        return false;
    }

    for (size_t i = first_text(c, e->id); ok && i < c->ntexts && c->texts[i].event_id == e->id;
         i++) {
        const struct ct_text_row *t = &c->texts[i];
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(dig, t->field);
        char hex[2 * CT_HASH_LEN + 1];
        if (!cJSON_IsString(want)) {
            fail(r, e->seq, "text \"%s\" has no digest in the event", t->field);
            ok = false;
        } else if ((t->body == NULL || !t->has_salt) && records_erasure(c)) {
            r->redacted++;
        } else if (t->body == NULL || !t->has_salt) {
            /* only an erasure recorded in the chain may take a text or its salt away */
            fail(r, e->seq, "text \"%s\" %s, and the chain records no erasure", t->field,
                 t->body == NULL ? "was emptied" : "lost its salt");
            ok = false;
        } else {
            ct_audit_text_digest(t->salt, CT_SALT_LEN, t->body, hex);
            /* length first: CRYPTO_memcmp reads sizeof(hex) - 1 bytes of both */
            if (strlen(want->valuestring) != sizeof(hex) - 1 ||
                CRYPTO_memcmp(hex, want->valuestring, sizeof(hex) - 1) != 0) {
                fail(r, e->seq, "text \"%s\" was changed: it no longer matches its digest",
                     t->field);
                ok = false;
            }
        }
    }
    /* every digest needs its text row (present or erased): a deleted text is a change too */
    cJSON_ArrayForEach(d, dig)
    {
        bool found = false;
        for (size_t i = first_text(c, e->id); i < c->ntexts && c->texts[i].event_id == e->id; i++)
            found = found || strcmp(c->texts[i].field, d->string) == 0;
        if (ok && !found) {
            fail(r, e->seq, "text \"%s\" was removed", d->string);
            ok = false;
        }
    }
    cJSON_Delete(dig);
    return ok;
}

void ct_audit_verify_chain(const struct ct_chain *c, struct ct_verify_result *r)
{
    unsigned char prev[CT_HASH_LEN] = {0}, h[CT_HASH_LEN];

    memset(r, 0, sizeof(*r));
    r->ok = true;
    for (size_t i = 0; i < c->nevents; i++) {
        const struct ct_event_row *e = &c->events[i];
        char *data = NULL, *digests = NULL;
        long long want = (long long)i + 1;

        if (e->seq != want) {
            if (i > 0 && e->seq == c->events[i - 1].seq)
                fail(r, e->seq, "event seq %lld is stored twice", e->seq);
            else
                fail(r, want, "event seq %lld is missing", want);
            return;
        }
        if (memcmp(e->prev_hash, prev, CT_HASH_LEN) != 0) {
            fail(r, e->seq, "prev_hash does not link to the previous event");
            return;
        }
        if (!ct_audit_recanon(e->data, &data) || !ct_audit_recanon(e->digests, &digests)) {
            free(data);
            free(digests);
            fail(r, e->seq, "stored data is not in canonical form");
            return;
        }
        struct ct_event_fields f = {
            .chain = c->name, .seq = e->seq, .action = e->action, .actor_type = e->actor_type,
            .actor_id = e->actor_id, .from_value = e->from_value, .to_value = e->to_value,
            .occurred_us = e->occurred_us, .recorded_us = e->recorded_us, .data = data,
            .digests = digests,
        };
        ct_audit_event_hash(prev, &f, h);
        free(data);
        free(digests);
        if (memcmp(h, e->hash, CT_HASH_LEN) != 0) {
            fail(r, e->seq, "event content does not match its hash");
            return;
        }
        if (!check_texts(c, e, r))
            return;
        memcpy(prev, e->hash, CT_HASH_LEN);
        r->events++;
    }
    if (c->nevents > 0)
        ct_hex_encode(prev, CT_HASH_LEN, r->head);
    if (c->has_head && c->head_seq > (long long)c->nevents) {
        fail(r, (long long)c->nevents + 1,
             "the chain records %lld events but %zu are stored: events were removed", c->head_seq,
             c->nevents);
        return;
    }
    if (c->has_head && c->head_seq < (long long)c->nevents) {
        fail(r, c->head_seq + 1,
             "events from seq %lld on were added behind the chain head (which records %lld)",
             c->head_seq + 1, c->head_seq);
        return;
    }
    if (c->has_head && c->nevents > 0 && memcmp(c->head, prev, CT_HASH_LEN) != 0) {
        fail(r, (long long)c->nevents, "the chain head does not match the last event");
        return;
    }
    ct_audit_reconcile(c, r);
}

/* A total order (chain, then seq, then hash), so the root never depends on input order. */
static int cmp_heads(const void *a, const void *b)
{
    const struct ct_chain_head *x = a, *y = b;
    int c = strcmp(x->chain, y->chain);
    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq);
    return c != 0 ? c : strcmp(x->hash, y->hash);
}

void ct_audit_root(struct ct_chain_head *heads, size_t n, char root[2 * CT_HASH_LEN + 1])
{
    unsigned char md[CT_HASH_LEN];
    unsigned int len = 0;
    char line[160];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    root[0] = '\0'; /* out of memory: an empty root, which no digest line can match */
    if (ctx == NULL)
        return;
    qsort(heads, n, sizeof(*heads), cmp_heads);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, "casetrail-root-v1\n", 18);
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(line, sizeof(line), "%s %lld %s\n", heads[i].chain, heads[i].seq,
                         heads[i].hash);
        EVP_DigestUpdate(ctx, line, (size_t)k);
    }
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    ct_hex_encode(md, CT_HASH_LEN, root);
}

static void sha256_parts(const void *a, size_t alen, const void *b, size_t blen, const void *c,
                         size_t clen, unsigned char out[CT_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    memset(out, 0, CT_HASH_LEN); /* out of memory: zeros, which no root matches */
    if (ctx == NULL)
        return;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a, alen);
    EVP_DigestUpdate(ctx, b, blen);
    EVP_DigestUpdate(ctx, c, clen);
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

void ct_audit_merkle_leaf(const char *chain, long long seq, const char *hash_hex,
                          unsigned char out[CT_HASH_LEN])
{
    static const unsigned char zero = 0x00;
    char line[160];
    int k = snprintf(line, sizeof(line), "%s %lld %s", chain, seq, hash_hex);
    sha256_parts(&zero, 1, line, (size_t)k, "", 0, out);
}

static void merkle_node(const unsigned char *l, const unsigned char *r,
                        unsigned char out[CT_HASH_LEN])
{
    static const unsigned char one = 0x01;
    unsigned char tmp[CT_HASH_LEN];
    sha256_parts(&one, 1, l, CT_HASH_LEN, r, CT_HASH_LEN, tmp);
    memcpy(out, tmp, CT_HASH_LEN);
}

/* Builds the tree bottom-up in one array: each level pairs neighbours left to right and lifts a
 * lone last node unchanged, which is RFC 9162's split at the largest power of two. When want is
 * not SIZE_MAX, the siblings on want's way up are copied to path. The root ends in level[0]. */
static bool merkle_build(const struct ct_chain_head *heads, size_t n, size_t want,
                         unsigned char root[CT_HASH_LEN], unsigned char *path, size_t *plen)
{
    unsigned char(*level)[CT_HASH_LEN];
    size_t m = n, idx = want, k = 0;
    if (n == 0) {
        sha256_parts("", 0, "", 0, "", 0, root); /* the empty tree: SHA-256 of nothing */
        return true;
    }
    level = malloc(n * CT_HASH_LEN);
    if (level == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        ct_audit_merkle_leaf(heads[i].chain, heads[i].seq, heads[i].hash, level[i]);
    for (; m > 1; m = (m + 1) / 2, idx /= 2) {
        if (path != NULL && (idx ^ 1) < m)
            memcpy(path + CT_HASH_LEN * k++, level[idx ^ 1], CT_HASH_LEN);
        for (size_t i = 0; i < m / 2; i++)
            merkle_node(level[2 * i], level[2 * i + 1], level[i]);
        if (m % 2 == 1)
            memcpy(level[m / 2], level[m - 1], CT_HASH_LEN);
    }
    memcpy(root, level[0], CT_HASH_LEN);
    if (plen != NULL)
        *plen = k;
    free(level);
    return true;
}

void ct_audit_merkle_root(struct ct_chain_head *heads, size_t n, char root[2 * CT_HASH_LEN + 1])
{
    unsigned char md[CT_HASH_LEN];
    root[0] = '\0';
    qsort(heads, n, sizeof(*heads), cmp_heads);
    if (merkle_build(heads, n, SIZE_MAX, md, NULL, NULL))
        ct_hex_encode(md, CT_HASH_LEN, root);
}

bool ct_audit_merkle_proof(struct ct_chain_head *heads, size_t n, const char *chain,
                           size_t *index, unsigned char **path, size_t *plen)
{
    unsigned char md[CT_HASH_LEN];
    size_t i;
    *path = NULL;
    *plen = 0;
    qsort(heads, n, sizeof(*heads), cmp_heads);
    for (i = 0; i < n && strcmp(heads[i].chain, chain) != 0; i++)
        ;
    if (i == n)
        return false;
    *index = i;
    *path = malloc(64 * CT_HASH_LEN); /* a tree of 2^64 leaves is 64 levels deep */
    if (*path == NULL)
        return false;
    if (!merkle_build(heads, n, i, md, *path, plen)) {
        free(*path);
        *path = NULL;
        return false;
    }
    return true;
}

bool ct_audit_merkle_fold(const unsigned char leaf[CT_HASH_LEN], size_t index, size_t size,
                          const unsigned char *path, size_t plen, unsigned char out[CT_HASH_LEN])
{
    size_t fn = index, sn;
    if (size == 0 || index >= size)
        return false;
    sn = size - 1;
    memcpy(out, leaf, CT_HASH_LEN);
    for (size_t k = 0; k < plen; k++) {
        const unsigned char *p = path + CT_HASH_LEN * k;
        if (sn == 0)
            return false; /* more path than the tree has levels */
        if ((fn & 1) == 1 || fn == sn) {
            merkle_node(p, out, out);
            while ((fn & 1) == 0 && fn != 0) { /* a lone node lifted: skip the levels it rose */
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            merkle_node(out, p, out);
        }
        fn >>= 1;
        sn >>= 1;
    }
    return sn == 0;
}

char *ct_audit_digest_payload(const struct ct_digest *d)
{
    char buf[400];
    if (d->version == 2)
        snprintf(buf, sizeof(buf),
                 "{\"version\":2,\"time\":\"%s\",\"events\":%lld,\"chains\":%lld,"
                 "\"upto_id\":%lld,\"root\":\"%s\"}",
                 d->time, d->events, d->chains, d->upto_id, d->root);
    else
        snprintf(buf, sizeof(buf),
                 "{\"version\":1,\"time\":\"%s\",\"events\":%lld,\"upto_id\":%lld,"
                 "\"root\":\"%s\"}",
                 d->time, d->events, d->upto_id, d->root);
    return strdup(buf);
}

char *ct_audit_digest_json(const struct ct_digest *d)
{
    char buf[600];
    char *payload = ct_audit_digest_payload(d);
    if (payload == NULL)
        return NULL;
    if (d->signature[0] == '\0')
        return payload;
    /* the signature goes last, so the signed text is the line up to it */
    payload[strlen(payload) - 1] = '\0';
    snprintf(buf, sizeof(buf), "%s,\"alg\":\"ed25519\",\"signature\":\"%s\"}", payload,
             d->signature);
    free(payload);
    return strdup(buf);
}

/* A whole non-negative integer up to 9e15 (exact in a double), not 1.5 or 1e16. */
static bool count_ok(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9e15 &&
           v->valuedouble == (double)(long long)v->valuedouble;
}

static bool lower_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (; *s != '\0'; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    }
    return true;
}

/* ISO 8601 characters only: the time is printed back into JSON without escaping. */
static bool time_ok(const char *s)
{
    if (strlen(s) == 0 || strlen(s) >= sizeof(((struct ct_digest *)0)->time))
        return false;
    for (; *s != '\0'; s++) {
        if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == ':' || *s == 'T' || *s == 'Z' ||
              *s == '.' || *s == '+'))
            return false;
    }
    return true;
}

bool ct_audit_digest_parse(const char *json, struct ct_digest *d, char *reason, size_t len)
{
    static const char *const fields[] = {"version", "time",      "events", "chains", "upto_id",
                                         "root",    "alg",       "signature", NULL};
    struct ct_err err;
    cJSON *j = ct_json_parse_strict(json, strlen(json), 2, &err);
    const cJSON *v, *t, *ev, *ch, *up, *root, *alg, *sig;
    bool ok = false;

    memset(d, 0, sizeof(*d));
    if (j == NULL) {
        snprintf(reason, len, "the digest is not JSON (%s)", err.message);
        goto out;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "version");
    t = cJSON_GetObjectItemCaseSensitive(j, "time");
    ev = cJSON_GetObjectItemCaseSensitive(j, "events");
    ch = cJSON_GetObjectItemCaseSensitive(j, "chains");
    up = cJSON_GetObjectItemCaseSensitive(j, "upto_id");
    root = cJSON_GetObjectItemCaseSensitive(j, "root");
    alg = cJSON_GetObjectItemCaseSensitive(j, "alg");
    sig = cJSON_GetObjectItemCaseSensitive(j, "signature");
    if (!cJSON_IsObject(j) || !cJSON_IsNumber(v) ||
        (v->valuedouble != 1 && v->valuedouble != 2) || !cJSON_IsString(t) ||
        !time_ok(t->valuestring) || !count_ok(ev) || !count_ok(up) || !cJSON_IsString(root) ||
        !lower_hex(root->valuestring, 2 * CT_HASH_LEN)) {
        snprintf(reason, len, "the digest lacks version 1 or 2, time, events, upto_id or root");
        goto out;
    }
    /* version 2 counts its leaves; version 1 has none to count */
    if ((v->valuedouble == 2) != (ch != NULL) || (ch != NULL && !count_ok(ch))) {
        snprintf(reason, len, "the digest's chains must be a count in version 2 and absent in 1");
        goto out;
    }
    if (ct_json_only(j, fields, &err) != CT_OK) {
        snprintf(reason, len, "the digest has an %s", err.message);
        goto out;
    }
    if ((sig != NULL && (!cJSON_IsString(sig) || !lower_hex(sig->valuestring, 128))) ||
        (alg != NULL && (!cJSON_IsString(alg) || strcmp(alg->valuestring, "ed25519") != 0))) {
        snprintf(reason, len, "the digest's signature is malformed");
        goto out;
    }
    d->version = (int)v->valuedouble;
    snprintf(d->time, sizeof(d->time), "%s", t->valuestring);
    d->chains = ch != NULL ? (long long)ch->valuedouble : 0;
    d->events = (long long)ev->valuedouble;
    d->upto_id = (long long)up->valuedouble;
    snprintf(d->root, sizeof(d->root), "%s", root->valuestring);
    if (sig != NULL)
        snprintf(d->signature, sizeof(d->signature), "%s", sig->valuestring);
    ok = true;
out:
    cJSON_Delete(j);
    return ok;
}

static EVP_PKEY *load_key(const char *path, bool want_private, char *reason, size_t len)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = NULL;
    if (f == NULL) {
        snprintf(reason, len, "could not open key file %s", path);
        return NULL;
    }
    k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    if (k == NULL && !want_private) {
        rewind(f);
        k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    }
    fclose(f);
    if (k == NULL || EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
        EVP_PKEY_free(k);
        snprintf(reason, len, "%s does not hold an Ed25519 %s key in PEM form", path,
                 want_private ? "private" : "public or private");
        return NULL;
    }
    return k;
}

bool ct_audit_digest_sign(struct ct_digest *d, const char *key_path, char *reason, size_t len)
{
    EVP_PKEY *k = load_key(key_path, true, reason, len);
    EVP_MD_CTX *ctx = NULL;
    unsigned char sig[64];
    size_t siglen = sizeof(sig);
    char *payload = NULL;
    bool ok = false;

    if (k == NULL)
        return false;
    payload = ct_audit_digest_payload(d);
    ctx = EVP_MD_CTX_new();
    if (payload == NULL || ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)payload, strlen(payload)) != 1 ||
        siglen != 64) {
        snprintf(reason, len, "could not sign the digest");
        goto out;
    }
    ct_hex_encode(sig, 64, d->signature);
    ok = true;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    free(payload);
    return ok;
}

bool ct_audit_digest_check(const struct ct_digest *d, const char *key_path, char *reason,
                           size_t len)
{
    unsigned char sig[64];
    EVP_PKEY *k;
    EVP_MD_CTX *ctx = NULL;
    char *payload = NULL;
    bool ok = false;

    if (!ct_hex_decode(d->signature, sig, sizeof(sig))) {
        snprintf(reason, len, "the digest is not signed");
        return false;
    }
    k = load_key(key_path, false, reason, len);
    if (k == NULL)
        return false;
    payload = ct_audit_digest_payload(d);
    ctx = EVP_MD_CTX_new();
    if (payload == NULL || ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) != 1 ||
        EVP_DigestVerify(ctx, sig, sizeof(sig), (const unsigned char *)payload, strlen(payload)) !=
            1) {
        snprintf(reason, len, "the digest's signature does not verify with %s", key_path);
        goto out;
    }
    ok = true;
out:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(k);
    free(payload);
    return ok;
}
