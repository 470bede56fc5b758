/* test_base.c: the shared helpers every layer builds on: the growable buffer, hex, UTF-8,
 * dates in query strings, strict JSON (nesting, duplicate keys, trailing bytes), cursors
 * (round trips and refusals), list filters decoded from a table, and background crews
 * (a stop wakes a napping thread at once). */
#include <stddef.h>
#include <stdlib.h>

#include <sched.h>
#include <time.h>

#include "casetrail/buf.h"
#include "casetrail/crew.h"
#include "casetrail/cursor.h"
#include "casetrail/http.h"
#include "casetrail/json.h"
#include "casetrail/text.h"
#include "t.h"

static void buffers(void)
{
    struct ct_buf b;
    size_t len = 0;
    ct_buf_init(&b, 0);
    ct_buf_adds(&b, "abc");
    ct_buf_add(&b, "\0d", 2);
    for (int i = 0; i < 1000; i++)
        ct_buf_addf(&b, "%d,", i);
    char *s = ct_buf_take(&b, &len);
    CHECK(s != NULL && memcmp(s, "abc\0d0,1,", 9) == 0 && len == 5 + 3890);
    free(s);
    ct_buf_init(&b, 8); /* a limit fails the buffer once, for good */
    ct_buf_adds(&b, "12345678");
    ct_buf_adds(&b, "9");
    ct_buf_adds(&b, "");
    CHECK(ct_buf_take(&b, NULL) == NULL);
    ct_buf_init(&b, 0);
    s = ct_buf_take(&b, &len);
    CHECK(s != NULL && s[0] == '\0' && len == 0);
    free(s);
}

static void text(void)
{
    unsigned char back[4];
    char hex[9], when[64];
    ct_hex_encode((const unsigned char *)"\x00\xff\x10\xab", 4, hex);
    CHECK_STR(hex, "00ff10ab");
    CHECK(ct_hex_decode("00ff10Ab", back, 4) && back[1] == 0xff && back[3] == 0xab);
    CHECK(!ct_hex_decode("00ff10A", back, 4) && !ct_hex_decode("00ff10zz", back, 4));
    CHECK(ct_utf8_valid("caf\xc3\xa9 \xd8\xb4\xda\xa9\xd8\xa7\xdb\x8c\xd8\xaa", 16));
    CHECK(!ct_utf8_valid("\xc0\xaf", 2));          /* overlong */
    CHECK(!ct_utf8_valid("\xed\xa0\x80", 3));      /* surrogate */
    CHECK(!ct_utf8_valid("\xe2\x82", 2));          /* cut short */
    CHECK(ct_utf8_chars("\xd8\xb4\xda\xa9x") == 3);
    char bad[] = "ok\xff!";
    ct_utf8_sanitize(bad);
    CHECK_STR(bad, "ok?!");
    CHECK(ct_text_present(" x ") && !ct_text_present(" \t\n") && !ct_text_present(NULL));

    CHECK(ct_text_parse_when("2026-02-28", when, sizeof(when)));
    CHECK_STR(when, "2026-02-28 00:00:00.0+00:00");
    CHECK(ct_text_parse_when("2024-02-29T23:59:59.1234567-05:30", when, sizeof(when)));
    CHECK_STR(when, "2024-02-29 23:59:59.123456-05:30");
    CHECK(!ct_text_parse_when("2026-02-29", when, sizeof(when)));    /* not a leap year */
    CHECK(!ct_text_parse_when("2026-13-01", when, sizeof(when)));
    CHECK(!ct_text_parse_when("2026-01-01T10:00:00", when, sizeof(when))); /* no zone */
    CHECK(!ct_text_parse_when("2026-01-01T24:00:00Z", when, sizeof(when)));
    CHECK(!ct_text_parse_when("2026-01-01Z", when, sizeof(when)));
    CHECK(!ct_text_parse_when("yesterday", when, sizeof(when)));
}

/* "[[[...1...]]]" nested depth levels deep. */
static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 2);
    memset(s, '[', (size_t)depth);
    s[depth] = '1';
    memset(s + depth + 1, ']', (size_t)depth);
    s[2 * depth + 1] = '\0';
    return s;
}

static void json(void)
{
    struct ct_err err;
    cJSON *j;
    int depths[] = {32, 33, 1000, 100000};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        char *s = nested(depths[i]);
        j = ct_json_parse_strict(s, strlen(s), CT_JSON_DEPTH_WEBHOOK, &err);
        CHECK((j != NULL) == (depths[i] <= CT_JSON_DEPTH_WEBHOOK));
        if (j == NULL)
            CHECK_STR(err.code, "too_deep");
        cJSON_Delete(j);
        free(s);
    }
    /* brackets inside strings are text, not nesting */
    const char *str = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[[[[[[[[[[[\"}";
    j = ct_json_parse_strict(str, strlen(str), 2, &err);
    CHECK(j != NULL);
    cJSON_Delete(j);
    const char *dup = "{\"a\":{\"x\":1,\"y\":2,\"x\":3}}";
    CHECK(ct_json_parse_strict(dup, strlen(dup), 8, &err) == NULL);
    CHECK_STR(err.code, "duplicate_key");
    CHECK(strstr(err.message, "\"x\"") != NULL);
    const char *arr = "[{\"k\":1},{\"k\":2}]"; /* the same key in two objects is fine */
    j = ct_json_parse_strict(arr, strlen(arr), 8, &err);
    CHECK(j != NULL);
    cJSON_Delete(j);
    CHECK(ct_json_parse_strict("{} x", 4, 8, &err) == NULL);
    CHECK_STR(err.code, "invalid_json");
    j = ct_json_parse_strict("{} \n", 4, 8, &err);
    CHECK(j != NULL);
    cJSON_Delete(j);
    CHECK(ct_json_parse_strict("{\"a\":1}", 3, 8, &err) == NULL); /* length is honoured */
    /* \u0000 would end a C string: it becomes U+FFFD, everywhere in the tree, and an escaped
     * backslash before u0000 stays text */
    const char *nul = "{\"t\":\"a\\u0000b\\u0000c\",\"k\\u0000\":\"\\\\u0000\"}";
    j = ct_json_parse_strict(nul, strlen(nul), 8, &err);
    CHECK(j != NULL);
    if (j != NULL) {
        CHECK_STR(cJSON_GetObjectItemCaseSensitive(j, "t")->valuestring,
                  "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c");
        CHECK_STR(cJSON_GetObjectItemCaseSensitive(j, "k\xef\xbf\xbd")->valuestring, "\\u0000");
    }
    cJSON_Delete(j);

    j = cJSON_Parse("{\"n\":5,\"s\":\"hi\",\"f\":1.5,\"z\":null}");
    static const char *const allowed[] = {"n", "s", "f", "z", NULL};
    static const char *const fewer[] = {"n", NULL};
    const char *sv;
    long long n;
    bool present;
    CHECK(ct_json_only(j, allowed, &err) == CT_OK);
    CHECK(ct_json_only(j, fewer, &err) == CT_E_INVALID && strstr(err.message, "\"s\""));
    CHECK(ct_json_str(j, "s", true, 2, &sv, &err) == CT_OK && strcmp(sv, "hi") == 0);
    CHECK(ct_json_str(j, "s", true, 1, &sv, &err) == CT_E_INVALID);
    CHECK(ct_json_str(j, "n", true, 9, &sv, &err) == CT_E_INVALID);
    CHECK(ct_json_str(j, "z", false, 9, &sv, &err) == CT_OK && sv == NULL);
    CHECK(ct_json_str(j, "reason", true, 9, &sv, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "reason_required");
    CHECK(ct_json_int(j, "n", true, 0, 5, &present, &n, &err) == CT_OK && present && n == 5);
    CHECK(ct_json_int(j, "n", true, 0, 4, &present, &n, &err) == CT_E_INVALID);
    CHECK(ct_json_int(j, "f", true, 0, 4, &present, &n, &err) == CT_E_INVALID);
    CHECK(ct_json_int(j, "q", false, 0, 4, &present, &n, &err) == CT_OK && !present);
    cJSON_Delete(j);
    /* found by fuzz_body: member checks on an array must refuse, not read unnamed members */
    j = cJSON_Parse("[[]]");
    CHECK(ct_json_only(j, allowed, &err) == CT_E_INVALID);
    CHECK(ct_json_str(j, "s", true, 9, &sv, &err) == CT_E_INVALID);
    cJSON_Delete(j);
}

static void cursors(void)
{
    char out[CT_CURSOR_MAX];
    struct ct_ticket_cursor t = {true, 1760443200123456LL, 42}, t2;
    ct_cursor_ticket_encode(&t, out);
    CHECK(ct_cursor_ticket_decode(out, &t2) && t2.set && t2.updated_us == t.updated_us &&
          t2.id == 42);
    struct ct_timeline_cursor l = {true, 1, 253402300799999999LL, 7, 1, false, 0, false}, l2;
    ct_cursor_timeline_encode(&l, out);
    CHECK(ct_cursor_timeline_decode(out, &l2) && l2.at_us == 1 &&
          l2.rec_us == 253402300799999999LL && l2.id == 7 && l2.kind == 1 && !l2.since &&
          !l2.before);
    l.before = true; /* the same key, read backwards */
    ct_cursor_timeline_encode(&l, out);
    CHECK(out[0] == 'b' && ct_cursor_timeline_decode(out, &l2) && l2.before && l2.id == 7 &&
          l2.kind == 1 && l2.at_us == 1);
    ct_cursor_since_encode(0, out); /* an empty chain: everything is new */
    CHECK(ct_cursor_timeline_decode(out, &l2) && l2.since && l2.since_seq == 0);
    ct_cursor_since_encode(1234, out);
    CHECK(ct_cursor_timeline_decode(out, &l2) && l2.since && l2.since_seq == 1234);
    struct ct_id_cursor a = {true, 9}, a2;
    ct_cursor_id_encode('a', &a, out);
    CHECK(ct_cursor_id_decode('a', out, &a2) && a2.id == 9);
    CHECK(!ct_cursor_id_decode('r', out, &a2)); /* another list's cursor */
    const char *bad[] = {"", "t", "t1", "t1_", "t1_0", "t-1_2", "t+1_2", "t01_2", "t1_2x",
                         "t1_2_3", "x1_2", "t253402300800000000_1",
                         "t99999999999999999999999_1", "l1_2_2_3", "l1_2_1", "b1_2_2_3", "b1_2_1_0", "B1_2_1_3", "a0", "a",
                         "s", "s-1", "s01", "s1_2", "s1x", "s99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool ok = ct_cursor_ticket_decode(bad[i], &t2) || ct_cursor_id_decode('a', bad[i], &a2) ||
                  ct_cursor_timeline_decode(bad[i], &l2);
        if (ok) {
            fprintf(stderr, "cursor \"%s\" was accepted\n", bad[i]);
            t_failures++;
        }
    }
    CHECK(!t2.set && !a2.set && !l2.set);
}

struct filter {
    const char *status;
    int flag;
    const char *from;
};

static bool only_open(const char *s)
{
    return strcmp(s, "open") == 0;
}

static void filters(void)
{
    static const struct ct_query_field fields[] = {
        {"status", CT_Q_TEXT, offsetof(struct filter, status), only_open, "invalid_status", "bad"},
        {"flag", CT_Q_BOOL, offsetof(struct filter, flag), NULL, "invalid_flag", "bad flag"},
        {"from", CT_Q_TIME, offsetof(struct filter, from), NULL, "invalid_time", "bad time"},
    };
    char bufs[3][CT_QUERY_BUF];
    struct ct_err err;
    struct filter f = {NULL, -1, NULL};
    CHECK(ct_query_decode("status=open&flag=true&from=2026-01-02", fields, 3, &f, bufs, &err) ==
          CT_OK);
    CHECK_STR(f.status, "open");
    CHECK(f.flag == 1);
    CHECK_STR(f.from, "2026-01-02 00:00:00.0+00:00");
    f = (struct filter){NULL, -1, NULL};
    CHECK(ct_query_decode("status=&flag=", fields, 3, &f, bufs, &err) == CT_OK);
    CHECK(f.status == NULL && f.flag == -1 && f.from == NULL); /* empty means absent */
    CHECK(ct_query_decode("flag=yes", fields, 3, &f, bufs, &err) == CT_E_INVALID);
    CHECK_STR(err.code, "invalid_flag");
    CHECK(ct_query_decode("status=closed", fields, 3, &f, bufs, &err) == CT_E_INVALID);
    CHECK(ct_query_decode("from=2026-02-30", fields, 3, &f, bufs, &err) == CT_E_INVALID);
    CHECK(ct_query_decode(NULL, fields, 3, &f, bufs, &err) == CT_OK);
}

struct crew_job {
    struct ct_crew crew;
    atomic_int rounds;
};

static void *crew_member(void *arg)
{
    struct crew_job *j = arg;
    while (!ct_crew_stopping(&j->crew)) {
        atomic_fetch_add(&j->rounds, 1);
        ct_crew_nap(&j->crew, 60000); /* a minute: only the stop can end it in time */
    }
    return NULL;
}

static void crews(void)
{
    struct crew_job j = {0};
    struct timespec a, b;
    CHECK(ct_crew_start(&j.crew, 3, crew_member, &j));
    CHECK(j.crew.n == 3);
    while (atomic_load(&j.rounds) < 3)
        sched_yield();
    clock_gettime(CLOCK_MONOTONIC, &a);
    ct_crew_stop(&j.crew);
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(b.tv_sec - a.tv_sec < 5);
    CHECK(atomic_load(&j.rounds) >= 3);
    ct_crew_stop(&j.crew); /* twice is harmless */
    struct ct_crew none = {0};
    ct_crew_stop(&none);
    CHECK(!ct_crew_start(&none, 0, crew_member, &j));
}

int main(void)
{
    crews();
    buffers();
    text();
    json();
    cursors();
    filters();
    T_DONE();
}
