/* test_audit.c: canonical encoding and hash-chain known answers. If these vectors change,
 * every stored chain stops verifying: bump the encoding version instead. */
#include <stdlib.h>
#include <string.h>

#include "casetrail/audit.h"
#include "t.h"

/* A two-event chain. The pinned hashes were computed outside C as well (Python hashlib over
 * the canonical text above), so they pin the format, not just this implementation. */
static void check_chain_vector(void)
{
    unsigned char zero[CT_HASH_LEN] = {0}, h1[CT_HASH_LEN], h2[CT_HASH_LEN];
    char hex[2 * CT_HASH_LEN + 1];
    struct ct_event_fields e1 = {
        .chain = "user:1", .seq = 1, .action = "user.created", .actor_type = "system",
        .actor_id = "cli", .from_value = NULL, .to_value = "agent",
        .occurred_us = 1760443200000000LL, .recorded_us = 1760443200000001LL,
        .data = "{\"approval_limit_minor\":null}", .digests = NULL,
    };
    struct ct_event_fields e2 = {
        .chain = "user:1", .seq = 2, .action = "user.role_changed", .actor_type = "agent",
        .actor_id = "2", .from_value = "agent", .to_value = "supervisor",
        .occurred_us = 1760443260000000LL, .recorded_us = 1760443260000001LL,
        .data = "{\"approval_limit_minor\":50000}",
        .digests = "{\"reason\":"
                   "\"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843\"}",
    };

    ct_audit_event_hash(zero, &e1, h1);
    ct_hex_encode(h1, CT_HASH_LEN, hex);
    CHECK_STR(hex, "6a5b7aa60bfe2121655091ea30251f1772120dbbaf656c899b4bc2d6077e2ff2");
    ct_audit_event_hash(h1, &e2, h2);
    ct_hex_encode(h2, CT_HASH_LEN, hex);
    CHECK_STR(hex, "641b4474978368a8e167b1db78afc745021e76bc6b1d097fc81c51fde0195e44");
}

/* Root over chain heads; also computed outside C. Bytewise order puts "ticket:12" before
 * "ticket:2", so the sort is pinned too. */
static void check_root_vector(void)
{
    static const char *want = "4d8d80c883e5d9aa424b45f8b7c0a0c73e4f4b073d945f68c52eeb1de066828f";
    const struct ct_chain_head given[3] = {
        {"user:3", 2, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
        {"ticket:2", 40, "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"},
        {"ticket:12", 7, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
    };
    /* every order of the three heads */
    static const int perm[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1},
                                   {2, 1, 0}};
    struct ct_chain_head h[3];
    char root[2 * CT_HASH_LEN + 1];

    for (int p = 0; p < 6; p++) {
        for (int i = 0; i < 3; i++)
            h[i] = given[perm[p][i]];
        ct_audit_root(h, 3, root);
        CHECK_STR(root, want);
        /* sorted in place, bytewise */
        CHECK_STR(h[0].chain, "ticket:12");
        CHECK_STR(h[1].chain, "ticket:2");
        CHECK_STR(h[2].chain, "user:3");
    }
    /* each part of a head is covered */
    memcpy(h, given, sizeof(h));
    h[1].seq = 41;
    ct_audit_root(h, 3, root);
    CHECK(strcmp(root, want) != 0);
    memcpy(h, given, sizeof(h));
    h[0].hash[63] = 'e';
    ct_audit_root(h, 3, root);
    CHECK(strcmp(root, want) != 0);
    memcpy(h, given, sizeof(h));
    snprintf(h[2].chain, sizeof(h[2].chain), "ticket:13");
    ct_audit_root(h, 3, root);
    CHECK(strcmp(root, want) != 0);
    memcpy(h, given, sizeof(h));
    ct_audit_root(h, 2, root); /* a head left out */
    CHECK(strcmp(root, want) != 0);
    /* no chains yet: SHA-256 of the version line alone */
    ct_audit_root(h, 0, root);
    CHECK_STR(root, "97990baa55a5f88d54e13b9d81df557a3f144c9d9dd7ce16ae71abb8aad4bc7a");
}

int main(void)
{
    unsigned char zero[CT_HASH_LEN] = {0}, h1[CT_HASH_LEN], h2[CT_HASH_LEN];
    char hex[2 * CT_HASH_LEN + 1];
    struct ct_event_fields ev = {
        .chain = "user:1", .seq = 1, .action = "user.created", .actor_type = "system",
        .actor_id = "cli", .from_value = NULL, .to_value = "agent",
        .occurred_us = 1760443200000000LL, .recorded_us = 1760443200000001LL,
        .data = "{\"approval_limit_minor\":null}", .digests = NULL,
    };

    char *canon = ct_audit_canonical(&ev);
    CHECK_STR(canon, "casetrail-event-v1\nchain:6:user:1\nseq:1:1\naction:12:user.created\n"
                     "actor_type:6:system\nactor_id:3:cli\nfrom:-\nto:5:agent\n"
                     "occurred_us:16:1760443200000000\nrecorded_us:16:1760443200000001\n"
                     "data:29:{\"approval_limit_minor\":null}\ndigests:-\n");
    free(canon);

    ct_audit_event_hash(zero, &ev, h1);
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) == 0);
    ev.to_value = "admin";
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);
    ev.to_value = "agent";
    ct_audit_event_hash(h1, &ev, h2); /* same event, other predecessor */
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);
    /* a NULL field and an empty one must hash differently */
    ev.from_value = "";
    ct_audit_event_hash(zero, &ev, h2);
    CHECK(memcmp(h1, h2, CT_HASH_LEN) != 0);

    /* canonical JSON: sorted keys, no spaces, jsonb-style input round-trips */
    cJSON *j = cJSON_Parse("{\"b\": 2, \"a\": {\"y\": \"\\u00e9\\n\", \"x\": [1, true, null]}}");
    char *cj = ct_audit_canonical_json(j);
    CHECK_STR(cj, "{\"a\":{\"x\":[1,true,null],\"y\":\"\xc3\xa9\\u000a\"},\"b\":2}");
    free(cj);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"lat\": 1.5}");
    CHECK(ct_audit_canonical_json(j) == NULL); /* non-integers are refused */
    cJSON_Delete(j);

    /* HMAC-SHA256 known answer (RFC 4231 test case 2) */
    ct_audit_text_digest((const unsigned char *)"Jefe", 4, "what do ya want for nothing?", hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");

    unsigned char back[4];
    CHECK(ct_hex_decode("00ff10Ab", back, 4) && back[1] == 0xff && back[3] == 0xab);
    CHECK(!ct_hex_decode("00ff10A", back, 4));
    CHECK(!ct_hex_decode("00ff10zz", back, 4));

    check_chain_vector();
    check_root_vector();
    T_DONE();
}
