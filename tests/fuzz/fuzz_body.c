/* fuzz_body.c: libFuzzer target for what staff requests feed the server: JSON bodies through
 * the same strict parser and typed member readers the handlers use, and query strings through
 * the list-filter table, cursor decoders, the date parser and CSV cells. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "casetrail/csv.h"
#include "casetrail/cursor.h"
#include "casetrail/http.h"
#include "casetrail/json.h"
#include "casetrail/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct filter {
    const char *status, *contact, *from;
    int escalated;
};

static bool any(const char *s)
{
    return s[0] != 'x';
}

static void body(const char *text, size_t size)
{
    static const char *const allowed[] = {"status", "reason", "level", "kind", "amount_minor",
                                          NULL};
    struct ct_err err;
    const char *s;
    long long n;
    bool present;
    cJSON *j = ct_json_parse_strict(text, size, CT_JSON_DEPTH_API, &err);
    if (j == NULL)
        return;
    (void)ct_json_only(j, allowed, &err);
    (void)ct_json_str(j, "status", true, 16, &s, &err);
    (void)ct_json_str(j, "reason", false, 2000, &s, &err);
    (void)ct_json_int(j, "level", false, 0, 3, &present, &n, &err);
    (void)ct_json_int(j, "amount_minor", false, 0, 999999999999999LL, &present, &n, &err);
    cJSON_Delete(j);
}

static void query(const char *text)
{
    static const struct ct_query_field fields[] = {
        {"status", CT_Q_TEXT, offsetof(struct filter, status), any, "bad", "bad"},
        {"contact", CT_Q_TEXT, offsetof(struct filter, contact), NULL, NULL, NULL},
        {"from", CT_Q_TIME, offsetof(struct filter, from), NULL, "bad", "bad"},
        {"escalated", CT_Q_BOOL, offsetof(struct filter, escalated), NULL, "bad", "bad"},
    };
    char bufs[4][CT_QUERY_BUF], when[64];
    struct filter f = {0};
    struct ct_err err;
    struct ct_ticket_cursor t;
    struct ct_timeline_cursor l;
    struct ct_id_cursor a;
    struct ct_at_cursor e;

    (void)ct_query_decode(text, fields, 4, &f, bufs, &err);
    (void)ct_cursor_ticket_decode(text, &t);
    (void)ct_cursor_timeline_decode(text, &l);
    (void)ct_cursor_id_decode('a', text, &a);
    (void)ct_cursor_at_decode('e', text, &e);
    (void)ct_text_parse_when(text, when, sizeof(when));
}

/* An export's cells: any text, as either kind, and any text as a JSON cell. */
static void cells(const char *text, size_t size)
{
    struct ct_buf b;
    char *compact = malloc(size + 1);
    ct_buf_init(&b, 0);
    ct_csv_cell(&b, text, CT_CSV_TEXT, true);
    ct_csv_cell(&b, text, CT_CSV_NUMBER, false);
    ct_csv_row_end(&b);
    if (compact != NULL)
        ct_csv_json_compact(text, compact);
    free(compact);
    ct_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    body(text, size);
    query(text);
    cells(text, strlen(text));
    free(text);
    return 0;
}
