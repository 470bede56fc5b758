/* test_digest.c: digest lines (parse, print, refuse malformed ones) and their Ed25519 signature
 * with throw-away keys written to temporary PEM files. */
#include <stdlib.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "casetrail/audit.h"
#include "t.h"

#define ROOT "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define LINE                                                                              \
    "{\"version\":1,\"time\":\"2025-10-14T12:00:00.000000Z\",\"events\":42,\"upto_id\":97," \
    "\"root\":\"" ROOT "\"}"
#define SIG128 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" \
               "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SIGZZ "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" \
              "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

/* Writes k to a new temporary file as a PEM private key (or public key); returns its path in
 * path (caller unlinks) and false when anything fails. */
static bool write_key(EVP_PKEY *k, bool private, char path[64])
{
    const char *dir = getenv("TMPDIR");
    FILE *f;
    int fd, rc;

    snprintf(path, 64, "%s/ct_digest_key_XXXXXX", dir != NULL && strlen(dir) < 30 ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0)
        return false;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return false;
    }
    if (private)
        rc = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    else
        rc = PEM_write_PUBKEY(f, k);
    return fclose(f) == 0 && rc == 1;
}

static void check_parse(void)
{
    struct ct_digest d;
    char reason[200] = "", *json;

    CHECK(ct_audit_digest_parse(LINE, &d, reason, sizeof(reason)));
    CHECK_STR(d.time, "2025-10-14T12:00:00.000000Z");
    CHECK(d.events == 42 && d.upto_id == 97);
    CHECK_STR(d.root, ROOT);
    CHECK_STR(d.signature, "");
    json = ct_audit_digest_json(&d);
    CHECK_STR(json, LINE); /* an unsigned digest prints exactly as its payload */
    free(json);
    json = ct_audit_digest_payload(&d);
    CHECK_STR(json, LINE);
    free(json);

    /* key order, spaces and the newline a digest file ends with do not matter; printing
     * normalises them */
    CHECK(ct_audit_digest_parse(" {\"root\": \"" ROOT "\", \"upto_id\": 97, \"events\": 42,\n"
                                "  \"time\": \"2025-10-14T12:00:00.000000Z\", \"version\": 1}\n",
                                &d, reason, sizeof(reason)));
    json = ct_audit_digest_json(&d);
    CHECK_STR(json, LINE);
    free(json);

    /* a signed line: the signature goes after the payload, and round-trips */
    const char *signed_line = "{\"version\":1,\"time\":\"2025-10-14T12:00:00.000000Z\","
                              "\"events\":42,\"upto_id\":97,\"root\":\"" ROOT "\","
                              "\"alg\":\"ed25519\",\"signature\":\"" SIG128 "\"}";
    CHECK(ct_audit_digest_parse(signed_line, &d, reason, sizeof(reason)));
    CHECK_STR(d.signature, SIG128);
    json = ct_audit_digest_json(&d);
    CHECK_STR(json, signed_line);
    free(json);
    json = ct_audit_digest_payload(&d); /* what is signed leaves the signature out */
    CHECK_STR(json, LINE);
    free(json);
    /* the extreme accepted values (an empty time is refused: see BAD) */
    CHECK(ct_audit_digest_parse("{\"version\":1,\"time\":\"Z\",\"events\":0,\"upto_id\":"
                                "9000000000000000,\"root\":\"" ROOT "\"}",
                                &d, reason, sizeof(reason)));
    CHECK(d.events == 0 && d.upto_id == 9000000000000000LL);
    /* 39 characters still fit */
    CHECK(ct_audit_digest_parse("{\"version\":1,"
                                "\"time\":\"2025-10-14T12:00:00.000000000000000000Z\","
                                "\"events\":1,\"upto_id\":2,\"root\":\"" ROOT "\"}",
                                &d, reason, sizeof(reason)));
    CHECK_STR(d.time, "2025-10-14T12:00:00.000000000000000000Z");
}

struct bad_line {
    const char *line;
    const char *reason;
};

#define T "\"time\":\"2025-10-14T12:00:00Z\""
#define R "\"root\":\"" ROOT "\""
#define LACKS "lacks version 1 or 2, time, events, upto_id or root"
#define CHAINS "chains must be a count in version 2"

static const struct bad_line BAD[] = {
    {"", "not JSON"},
    {"not json", "not JSON"},
    {"{\"version\":1,", "not JSON"},
    {"null", LACKS},
    {"[1]", LACKS},
    {"{}", LACKS},
    {"{" T ",\"events\":1,\"upto_id\":2," R "}", LACKS},                     /* no version */
    {"{\"version\":3," T ",\"events\":1,\"chains\":1,\"upto_id\":2," R "}", LACKS},
    /* version 2 counts its leaves, version 1 has none */
    {"{\"version\":2," T ",\"events\":1,\"upto_id\":2," R "}", CHAINS},
    {"{\"version\":2," T ",\"events\":1,\"chains\":-1,\"upto_id\":2," R "}", CHAINS},
    {"{\"version\":2," T ",\"events\":1,\"chains\":\"1\",\"upto_id\":2," R "}", CHAINS},
    {"{\"version\":1," T ",\"events\":1,\"chains\":1,\"upto_id\":2," R "}", CHAINS},
    {"{\"version\":\"1\"," T ",\"events\":1,\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1,\"events\":1,\"upto_id\":2," R "}", LACKS},             /* no time */
    {"{\"version\":1,\"time\":20251014,\"events\":1,\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1,\"time\":\"2025-10-14T12:00:00.0000000000000000000Z\",\"events\":1,"
     "\"upto_id\":2," R "}", LACKS}, /* 40 characters: no room in ct_digest.time */
    {"{\"version\":1," T ",\"upto_id\":2," R "}", LACKS},                    /* no events */
    {"{\"version\":1," T ",\"events\":\"1\",\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":null,\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":-1,\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":1e16,\"upto_id\":2," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":1," R "}", LACKS},                     /* no upto_id */
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":true," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":-5," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2}", LACKS},              /* no root */
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2,\"root\":7}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2,\"root\":\"" ROOT "0\"}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2,\"root\":\"abcd\"}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2," R ",\"signature\":\"ab\"}",
     "signature is malformed"},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2," R ",\"signature\":\"" SIG128 "0\"}",
     "signature is malformed"},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2," R ",\"signature\":1}",
     "signature is malformed"},
    {"{\"version\":1,\"time\":\"\",\"events\":1,\"upto_id\":2," R "}", LACKS},
    /* trailing bytes after the line are not part of a digest */
    {LINE " garbage", "not JSON"},
    {LINE "{}", "not JSON"},
    /* non-integers are refused, not truncated */
    {"{\"version\":1.9," T ",\"events\":42,\"upto_id\":97," R "}", LACKS},
    {"{\"version\":1," T ",\"events\":42.7,\"upto_id\":97," R "}", LACKS},
    /* the root and the signature must be hex */
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2,\"root\":\""
     "zz41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592\"}", LACKS},
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2," R ",\"signature\":\"" SIGZZ "\"}",
     "signature is malformed"},
    /* a time that would need escaping when printed back */
    {"{\"version\":1,\"time\":\"2025\\\"x\",\"events\":1,\"upto_id\":2," R "}", LACKS},
    /* unknown fields and duplicate keys change what another reader sees */
    {"{\"version\":1," T ",\"events\":1,\"upto_id\":2," R ",\"note\":\"x\"}", "unrecognized"},
    {"{\"version\":1," T ",\"events\":1,\"events\":2,\"upto_id\":2," R "}", "not JSON"},
};

static void check_bad_lines(void)
{
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        struct ct_digest d;
        char reason[200] = "";
        bool ok = ct_audit_digest_parse(BAD[i].line, &d, reason, sizeof(reason));
        if (ok || strstr(reason, BAD[i].reason) == NULL) {
            fprintf(stderr, "bad line %zu %s: got %s \"%s\", want refused \"%s\"\n", i,
                    BAD[i].line, ok ? "accepted" : "refused", reason, BAD[i].reason);
            t_failures++;
        }
    }
}

/* Changes the character at the first occurrence of what (+ offset) in line to c. */
static void edit(char *line, const char *what, size_t offset, char c)
{
    char *p = strstr(line, what);
    CHECK(p != NULL);
    if (p != NULL)
        p[offset] = c;
}

/* A signed line with one character edited parses but no longer verifies. */
static void check_edited(const char *line, const char *what, size_t offset, char c,
                         const char *pub)
{
    struct ct_digest d;
    char buf[600], reason[300] = "";

    snprintf(buf, sizeof(buf), "%s", line);
    edit(buf, what, offset, c);
    CHECK(strcmp(buf, line) != 0);
    CHECK(ct_audit_digest_parse(buf, &d, reason, sizeof(reason)));
    if (ct_audit_digest_check(&d, pub, reason, sizeof(reason))) {
        fprintf(stderr, "edited digest %s still verifies\n", buf);
        t_failures++;
    }
    CHECK(strstr(reason, "signature does not verify") != NULL);
}

static void check_sign(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char priv[64] = "", pub[64] = "", other_pub[64] = "", ec_priv[64] = "";
    char reason[300] = "", *line = NULL, sig1[sizeof(((struct ct_digest *)0)->signature)];
    struct ct_digest d, back;

    CHECK(key != NULL && other != NULL && ec != NULL);
    if (key == NULL || other == NULL || ec == NULL)
        goto out;
    CHECK(write_key(key, true, priv));
    CHECK(write_key(key, false, pub));
    CHECK(write_key(other, false, other_pub));
    CHECK(write_key(ec, true, ec_priv));

    CHECK(ct_audit_digest_parse(LINE, &d, reason, sizeof(reason)));
    CHECK(!ct_audit_digest_check(&d, pub, reason, sizeof(reason)));
    CHECK(strstr(reason, "not signed") != NULL);

    CHECK(ct_audit_digest_sign(&d, priv, reason, sizeof(reason)));
    CHECK(strlen(d.signature) == 128);
    CHECK(strspn(d.signature, "0123456789abcdef") == 128);
    /* signing touches the signature only */
    CHECK(d.events == 42 && d.upto_id == 97);
    CHECK_STR(d.root, ROOT);
    memcpy(sig1, d.signature, sizeof(sig1));
    /* Ed25519 is deterministic: the same payload and key sign to the same bytes */
    CHECK(ct_audit_digest_sign(&d, priv, reason, sizeof(reason)));
    CHECK_STR(d.signature, sig1);

    CHECK(ct_audit_digest_check(&d, priv, reason, sizeof(reason)));
    CHECK(ct_audit_digest_check(&d, pub, reason, sizeof(reason)));
    CHECK(!ct_audit_digest_check(&d, other_pub, reason, sizeof(reason)));
    CHECK(strstr(reason, "signature does not verify") != NULL);
    CHECK(strstr(reason, other_pub) != NULL);

    /* the printed line carries the signature and verifies after parsing */
    line = ct_audit_digest_json(&d);
    CHECK(line != NULL && strstr(line, "\"alg\":\"ed25519\",\"signature\":\"") != NULL);
    CHECK(ct_audit_digest_parse(line, &back, reason, sizeof(reason)));
    CHECK(ct_audit_digest_check(&back, pub, reason, sizeof(reason)));

    /* one character changed in each signed field, and in the signature */
    if (line != NULL) {
        check_edited(line, ROOT, 10, 'f', pub);
        check_edited(line, "\"events\":42", 10, '3', pub);
        check_edited(line, "\"upto_id\":97", 11, '8', pub);
        check_edited(line, "12:00:00.000000Z", 1, '3', pub);
        check_edited(line, sig1, 0, sig1[0] == 'a' ? 'b' : 'a', pub);
    }

    /* wrong kinds of key file */
    back = d;
    CHECK(!ct_audit_digest_sign(&back, pub, reason, sizeof(reason)));
    CHECK(strstr(reason, "does not hold an Ed25519 private key") != NULL);
    CHECK_STR(back.signature, d.signature);
    CHECK(!ct_audit_digest_sign(&back, ec_priv, reason, sizeof(reason)));
    CHECK(strstr(reason, "does not hold an Ed25519 private key") != NULL);
    CHECK(!ct_audit_digest_check(&d, ec_priv, reason, sizeof(reason)));
    CHECK(strstr(reason, "does not hold an Ed25519 public or private key") != NULL);
    CHECK(!ct_audit_digest_sign(&back, "/nonexistent/key.pem", reason, sizeof(reason)));
    CHECK(strstr(reason, "could not open key file /nonexistent/key.pem") != NULL);
    CHECK(!ct_audit_digest_check(&d, "/nonexistent/key.pem", reason, sizeof(reason)));
    CHECK(strstr(reason, "could not open key file") != NULL);

out:
    free(line);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    EVP_PKEY_free(ec);
    const char *paths[] = {priv, pub, other_pub, ec_priv};
    for (size_t i = 0; i < 4; i++) {
        if (paths[i][0] != '\0')
            CHECK(unlink(paths[i]) == 0);
    }
}

#define LINE2                                                                             \
    "{\"version\":2,\"time\":\"2026-11-24T12:00:00.000000Z\",\"events\":42,\"chains\":7," \
    "\"upto_id\":97,\"root\":\"" ROOT "\"}"

static void check_version2(void)
{
    struct ct_digest d;
    char reason[200] = "", *json;
    CHECK(ct_audit_digest_parse(LINE2, &d, reason, sizeof(reason)));
    CHECK(d.version == 2 && d.chains == 7 && d.events == 42 && d.upto_id == 97);
    json = ct_audit_digest_payload(&d);
    CHECK_STR(json, LINE2); /* field order is part of what is signed */
    free(json);
    CHECK(ct_audit_digest_parse(LINE, &d, reason, sizeof(reason)));
    CHECK(d.version == 1 && d.chains == 0);
}

/* RFC 9162's definition, written the recursive way it is stated, to hold the bottom-up
 * construction to: MTH(D) = H(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two
 * below n. */
static void mth(const struct ct_chain_head *h, size_t n, unsigned char out[CT_HASH_LEN])
{
    size_t k = 1;
    unsigned char l[CT_HASH_LEN], r[CT_HASH_LEN], buf[1 + 2 * CT_HASH_LEN];
    unsigned int len;
    if (n == 1) {
        ct_audit_merkle_leaf(h[0].chain, h[0].seq, h[0].hash, out);
        return;
    }
    while (k * 2 < n)
        k *= 2;
    mth(h, k, l);
    mth(h + k, n - k, r);
    buf[0] = 0x01;
    memcpy(buf + 1, l, CT_HASH_LEN);
    memcpy(buf + 1 + CT_HASH_LEN, r, CT_HASH_LEN);
    EVP_Digest(buf, sizeof(buf), out, &len, EVP_sha256(), NULL);
}

static void check_merkle(void)
{
    struct ct_chain_head h[40];
    char root[2 * CT_HASH_LEN + 1], want[2 * CT_HASH_LEN + 1];
    unsigned char md[CT_HASH_LEN], leaf[CT_HASH_LEN], got[CT_HASH_LEN];

    ct_audit_merkle_root(h, 0, root);
    CHECK_STR(root, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    for (size_t n = 1; n <= 40; n++) {
        for (size_t i = 0; i < n; i++) { /* named so that sorting puts ticket:10 before ticket:2 */
            snprintf(h[i].chain, sizeof(h[i].chain), "ticket:%zu", i + 1);
            h[i].seq = (long long)(i * 7 + 1);
            snprintf(h[i].hash, sizeof(h[i].hash), "%064zx", i * 2654435761u);
        }
        ct_audit_merkle_root(h, n, root); /* sorts h */
        mth(h, n, md);
        ct_hex_encode(md, CT_HASH_LEN, want);
        if (strcmp(root, want) != 0) {
            fprintf(stderr, "merkle root of %zu leaves differs from RFC 9162's\n", n);
            t_failures++;
        }
        for (size_t i = 0; i < n; i++) {
            unsigned char *path = NULL;
            size_t idx = 99, plen = 0;
            char chain[48];
            memcpy(chain, h[i].chain, sizeof(chain)); /* proof sorts h: keep the name */
            CHECK(ct_audit_merkle_proof(h, n, chain, &idx, &path, &plen));
            CHECK(idx == i);
            ct_audit_merkle_leaf(h[i].chain, h[i].seq, h[i].hash, leaf);
            CHECK(ct_audit_merkle_fold(leaf, idx, n, path, plen, got));
            CHECK(memcmp(got, md, CT_HASH_LEN) == 0);
            /* the proof fits that leaf, place and size only */
            if (n > 1) {
                CHECK(!ct_audit_merkle_fold(leaf, idx, n, path, plen - 1, got) ||
                      memcmp(got, md, CT_HASH_LEN) != 0);
                CHECK(!ct_audit_merkle_fold(leaf, (idx + 1) % n, n, path, plen, got) ||
                      memcmp(got, md, CT_HASH_LEN) != 0);
                path[plen - 1] ^= 0x01;
                CHECK(ct_audit_merkle_fold(leaf, idx, n, path, plen, got));
                CHECK(memcmp(got, md, CT_HASH_LEN) != 0);
                path[plen - 1] ^= 0x01;
            }
            /* (a wrong size can fold to the same root: 3 leaves' path fits 4 at index 0, so
             * the checkers hold tree_size to the signed chain count) */
            CHECK(!ct_audit_merkle_fold(leaf, n, n, path, plen, got));
            leaf[0] ^= 0x80;
            CHECK(ct_audit_merkle_fold(leaf, idx, n, path, plen, got));
            CHECK(memcmp(got, md, CT_HASH_LEN) != 0);
            free(path);
        }
        unsigned char *none = NULL;
        size_t ni = 0, nl = 0;
        CHECK(!ct_audit_merkle_proof(h, n, "ticket:999", &ni, &none, &nl));
        free(none);
    }
}

int main(void)
{
    check_parse();
    check_bad_lines();
    check_version2();
    check_merkle();
    check_sign();
    T_DONE();
}
