/* bundle.c: checks an evidence bundle offline, with no database: the same checks
 * docs/audit-format.md describes and tests/support/check_bundle.py makes in Python, so QA can
 * run `casetrail verify-bundle` and an auditor their own script, and both name the same item. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "casetrail/audit.h"

struct check {
    char *why;
    size_t len;
};

static bool bad(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool bad(struct check *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, c->len, fmt, ap);
    va_end(ap);
    return false;
}

static const char *str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool num(const cJSON *o, const char *name, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsNumber(v)) {
        *out = (long long)v->valuedouble;
        return true;
    }
    if (cJSON_IsString(v)) { /* microsecond times travel as decimal strings */
        char *end;
        *out = strtoll(v->valuestring, &end, 10);
        return *end == '\0' && end != v->valuestring;
    }
    return false;
}

static bool hex32(const char *s, unsigned char out[CT_HASH_LEN])
{
    return s != NULL && strlen(s) == 2 * CT_HASH_LEN && ct_hex_decode(s, out, CT_HASH_LEN);
}

/* The events: seq, links, hashes, the head. Fills heads[] with each event's hash by seq. */
static bool check_events(const cJSON *b, const char *chain, struct check *c, size_t *n)
{
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(b, "events"), *ev;
    const cJSON *head = cJSON_GetObjectItemCaseSensitive(b, "head");
    unsigned char prev[CT_HASH_LEN] = {0}, h[CT_HASH_LEN], stored[CT_HASH_LEN];
    long long want = 1, head_seq;

    if (!cJSON_IsArray(events))
        return bad(c, "bundle: no events");
    cJSON_ArrayForEach(ev, events)
    {
        struct ct_event_fields f = {.chain = chain};
        f.action = str(ev, "action");
        f.actor_type = str(ev, "actor_type");
        f.actor_id = str(ev, "actor_id");
        f.from_value = str(ev, "from");
        f.to_value = str(ev, "to");
        f.data = str(ev, "data");
        f.digests = str(ev, "digests");
        if (!num(ev, "seq", &f.seq) || f.seq != want)
            return bad(c, "event seq %lld: missing", want);
        if (f.action == NULL || f.actor_type == NULL || !num(ev, "occurred_us", &f.occurred_us) ||
            !num(ev, "recorded_us", &f.recorded_us))
            return bad(c, "event seq %lld: unreadable", f.seq);
        if (!hex32(str(ev, "prev_hash"), stored) || memcmp(stored, prev, CT_HASH_LEN) != 0)
            return bad(c, "event seq %lld: prev_hash does not link to the event before", f.seq);
        char *canon = ct_audit_canonical(&f);
        const char *given = str(ev, "canonical");
        bool same = canon != NULL && (given == NULL || strcmp(given, canon) == 0);
        free(canon);
        if (!same)
            return bad(c, "event seq %lld: canonical encoding does not match its fields", f.seq);
        ct_audit_event_hash(prev, &f, h);
        if (!hex32(str(ev, "hash"), stored) || memcmp(stored, h, CT_HASH_LEN) != 0)
            return bad(c, "event seq %lld: hash does not match its content", f.seq);
        memcpy(prev, h, CT_HASH_LEN);
        want++;
    }
    *n = (size_t)(want - 1);
    if (!num(head, "seq", &head_seq) || head_seq != want - 1 ||
        (want > 1 && (!hex32(str(head, "hash"), stored) || memcmp(stored, prev, CT_HASH_LEN))))
        return bad(c, "head: the chain head does not match the last event");
    return true;
}

static const cJSON *event_at(const cJSON *b, long long seq)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(b, "events"), (int)seq - 1);
}

/* Every text against its digest; every digest has its text. */
static bool check_texts(const cJSON *b, struct check *c, size_t nevents, size_t *ntexts)
{
    const cJSON *texts = cJSON_GetObjectItemCaseSensitive(b, "texts"), *t;
    bool ok = true;

    *ntexts = 0;
    if (!cJSON_IsArray(texts))
        return bad(c, "bundle: no texts");
    cJSON_ArrayForEach(t, texts)
    {
        long long seq;
        const char *fieldname = str(t, "field"), *text = str(t, "text"), *salt = str(t, "salt");
        unsigned char s[CT_SALT_LEN];
        char hex[2 * CT_HASH_LEN + 1];
        if (!num(t, "seq", &seq) || seq < 1 || seq > (long long)nevents || fieldname == NULL)
            return bad(c, "text %s: names an event that is not in the bundle",
                       fieldname ? fieldname : "?");
        cJSON *dig = str(event_at(b, seq), "digests") ? cJSON_Parse(str(event_at(b, seq),
                                                                        "digests"))
                                                      : NULL;
        const char *want = str(dig, fieldname);
        if (want == NULL)
            ok = bad(c, "text %s of seq %lld: the event has no digest for it", fieldname, seq);
        else if (text != NULL && salt != NULL) {
            if (strlen(salt) != 2 * CT_SALT_LEN || !ct_hex_decode(salt, s, CT_SALT_LEN))
                ok = bad(c, "text %s of seq %lld: unreadable salt", fieldname, seq);
            else {
                ct_audit_text_digest(s, CT_SALT_LEN, text, hex);
                if (strcmp(hex, want) != 0)
                    ok = bad(c, "text %s of seq %lld: does not match its digest", fieldname,
                             seq);
            }
        }
        cJSON_Delete(dig);
        if (!ok)
            return false;
        (*ntexts)++;
    }
    for (long long seq = 1; seq <= (long long)nevents; seq++) {
        const char *d = str(event_at(b, seq), "digests");
        cJSON *dig = d != NULL ? cJSON_Parse(d) : NULL, *one;
        cJSON_ArrayForEach(one, dig)
        {
            bool found = false;
            cJSON_ArrayForEach(t, texts)
            {
                long long s;
                found = found || (num(t, "seq", &s) && s == seq && str(t, "field") != NULL &&
                                  strcmp(str(t, "field"), one->string) == 0);
            }
            if (!found && ok)
                ok = bad(c, "text %s of seq %lld: missing from the bundle", one->string, seq);
        }
        cJSON_Delete(dig);
        if (!ok)
            return false;
    }
    return true;
}

static unsigned char *b64_decode(const char *s, size_t *len)
{
    size_t n = strlen(s), pad = 0;
    if (n % 4 != 0)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (out == NULL)
        return NULL;
    while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
        pad++;
    int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (got < 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)got - pad;
    return out;
}

/* Raw receipts: bytes against SHA-256 and, with the app secret, the signature header. */
static bool check_receipts(const cJSON *b, const char *secret, struct check *c, size_t *n)
{
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(b, "receipts"), *r;
    *n = 0;
    cJSON_ArrayForEach(r, rs)
    {
        long long id = 0;
        size_t len = 0;
        char sha[65];
        const char *body64 = str(r, "body_base64"), *sum = str(r, "body_sha256");
        const char *sig = str(r, "signature");
        num(r, "id", &id);
        unsigned char *body = body64 != NULL ? b64_decode(body64, &len) : NULL;
        if (body == NULL)
            return bad(c, "receipt %lld: unreadable body", id);
        ct_sha256_hex(body, len, sha);
        bool ok = sum != NULL && strcmp(sha, sum) == 0;
        if (ok && secret != NULL && sig != NULL) {
            unsigned char mac[32];
            unsigned int maclen = 0;
            char want[7 + 65] = "sha256=";
            HMAC(EVP_sha256(), secret, (int)strlen(secret), body, len, mac, &maclen);
            ct_hex_encode(mac, sizeof(mac), want + 7);
            if (strlen(sig) != strlen(want) || strncasecmp(sig, want, strlen(want)) != 0) {
                free(body);
                return bad(c, "receipt %lld: X-Hub-Signature-256 does not match the body", id);
            }
        }
        free(body);
        if (!ok)
            return bad(c, "receipt %lld: body does not match its SHA-256", id);
        (*n)++;
    }
    return true;
}

/* What events say of receipts and messages is what the bundle holds. */
static bool check_links(const cJSON *b, struct check *c)
{
    const cJSON *ev, *x;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(b, "events"))
    {
        long long seq = 0;
        num(ev, "seq", &seq);
        cJSON *data = str(ev, "data") ? cJSON_Parse(str(ev, "data")) : NULL;
        const struct {
            const char *sum, *id, *list, *list_sum, *what;
        } links[] = {{"receipt_sha256", "receipt_id", "receipts", "body_sha256", "receipt"},
                     {"payload_sha256", "message_id", "messages", "payload_sha256", "message"}};
        for (size_t i = 0; i < 2; i++) {
            const char *want = str(data, links[i].sum);
            long long id = 0, xid;
            bool found = false;
            if (want == NULL)
                continue;
            num(data, links[i].id, &id);
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(b, links[i].list))
            {
                found = found || (num(x, "id", &xid) && xid == id && str(x, links[i].list_sum) &&
                                  strcmp(str(x, links[i].list_sum), want) == 0);
            }
            if (!found) {
                cJSON_Delete(data);
                return bad(c, "event seq %lld: its %s %lld is missing or different", seq,
                           links[i].what, id);
            }
        }
        cJSON_Delete(data);
    }
    return true;
}

/* The ticket's inclusion proof in the digest's Merkle tree: the leaf is the bundle's own event
 * at the proof's seq, and folding the path must give the signed root. */
static bool check_proof(const cJSON *b, const char *chain, const cJSON *proof,
                        const struct ct_digest *d, struct check *c, size_t nevents,
                        long long *covered)
{
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(proof, "path"), *p;
    long long seq = 0, idx = -1, size = -1;
    unsigned char leaf[CT_HASH_LEN], root[CT_HASH_LEN], want[CT_HASH_LEN], *hashes = NULL;
    const char *hash = str(proof, "hash"), *event_hash;
    size_t plen = 0;
    bool ok;

    if (!cJSON_IsObject(proof))
        return bad(c, "digest: no proof that it covers %s", chain);
    if (!num(proof, "seq", &seq) || seq < 1 || seq > (long long)nevents)
        return bad(c, "digest: its proof names seq %lld, which is not in the bundle", seq);
    event_hash = str(event_at(b, seq), "hash");
    if (hash == NULL || event_hash == NULL || strcmp(hash, event_hash) != 0)
        return bad(c, "digest: its proof's hash for seq %lld is not the event's", seq);
    if (!num(proof, "leaf_index", &idx) || !num(proof, "tree_size", &size) || idx < 0 ||
        size != d->chains || !cJSON_IsArray(path) || cJSON_GetArraySize(path) > 64)
        return bad(c, "digest: its proof is malformed or sized for another tree");
    hashes = malloc(64 * CT_HASH_LEN);
    if (hashes == NULL)
        return bad(c, "digest: out of memory");
    cJSON_ArrayForEach(p, path)
    {
        if (!hex32(cJSON_IsString(p) ? p->valuestring : NULL, hashes + CT_HASH_LEN * plen)) {
            free(hashes);
            return bad(c, "digest: its proof's path holds something other than hashes");
        }
        plen++;
    }
    ct_audit_merkle_leaf(chain, seq, hash, leaf);
    ok = ct_audit_merkle_fold(leaf, (size_t)idx, (size_t)size, hashes, plen, root) &&
         ct_hex_decode(d->root, want, CT_HASH_LEN) && memcmp(root, want, CT_HASH_LEN) == 0;
    free(hashes);
    if (!ok)
        return bad(c, "digest: the proof for seq %lld does not lead to the signed root", seq);
    *covered = seq;
    return true;
}

/* The signed digest that covers the ticket, when the bundle carries one: a version 2 payload in
 * its printed form, the proof that the chain is among its leaves and, given the key, its
 * signature. */
static bool check_digest(const cJSON *b, const char *chain, const char *verify_key,
                         struct check *c, struct ct_bundle_counts *n)
{
    const cJSON *dg = cJSON_GetObjectItemCaseSensitive(b, "digest");
    const char *payload = str(dg, "payload"), *alg = str(dg, "alg"), *sig = str(dg, "signature");
    struct ct_digest d;
    char reason[300], *printed;
    bool same;

    if (dg == NULL || cJSON_IsNull(dg)) {
        if (verify_key != NULL)
            return bad(c, "digest: the bundle carries no signed digest to check the key with");
        return true;
    }
    if (payload == NULL)
        return bad(c, "digest: no payload");
    /* the payload is signed byte for byte, so it must be exactly what its fields print as */
    same = ct_audit_digest_parse(payload, &d, reason, sizeof(reason));
    printed = same ? ct_audit_digest_payload(&d) : NULL;
    same = printed != NULL && strcmp(printed, payload) == 0;
    free(printed);
    if (!same || d.version != 2)
        return bad(c, "digest: the payload is not a version 2 digest in its printed form");
    if (alg == NULL || strcmp(alg, "ed25519") != 0 || sig == NULL || strlen(sig) != 128 ||
        strspn(sig, "0123456789abcdef") != 128)
        return bad(c, "digest: the signature is malformed");
    if (!check_proof(b, chain, cJSON_GetObjectItemCaseSensitive(dg, "proof"), &d, c, n->events,
                     &n->digest_seq))
        return false;
    snprintf(n->digest_time, sizeof(n->digest_time), "%s", d.time);
    if (verify_key != NULL) {
        snprintf(d.signature, sizeof(d.signature), "%s", sig);
        if (!ct_audit_digest_check(&d, verify_key, reason, sizeof(reason)))
            return bad(c, "digest: %s", reason);
        n->digest_signed = true;
    }
    return true;
}

bool ct_audit_check_bundle(const cJSON *b, const char *app_secret, const char *verify_key,
                           struct ct_bundle_counts *n, char *why, size_t len)
{
    struct check c = {why, len};
    const char *format = str(b, "format"), *chain = str(b, "chain");
    const cJSON *ticket = cJSON_GetObjectItemCaseSensitive(b, "ticket");
    long long tid = 0;
    char want_chain[48];

    memset(n, 0, sizeof(*n));
    if (format == NULL || strcmp(format, "casetrail-evidence-v1") != 0)
        return bad(&c, "format: not a casetrail-evidence-v1 bundle");
    num(ticket, "id", &tid);
    snprintf(want_chain, sizeof(want_chain), "ticket:%lld", tid);
    if (chain == NULL || strcmp(chain, want_chain) != 0)
        return bad(&c, "chain: %s is not the ticket's chain", chain ? chain : "?");
    return check_events(b, chain, &c, &n->events) && check_texts(b, &c, n->events, &n->texts) &&
           check_receipts(b, app_secret, &c, &n->receipts) && check_links(b, &c) &&
           check_digest(b, chain, verify_key, &c, n);
}
