/* test_exports.c: the pure parts of the exports: CSV cells (quoting, formula neutralisation,
 * numbers of ours left alone), compact JSON cells, amounts in decimal, and the time-and-id
 * cursor. The same rules are checked end to end, parsed back by Python's csv module, in
 * tests/integration/test_exports.py. */
#include <limits.h>
#include <stdlib.h>

#include "casetrail/csv.h"
#include "casetrail/cursor.h"
#include "casetrail/money.h"
#include "t.h"

/* The text one cell becomes (first in its row). */
static char *cell(const char *s, enum ct_csv_kind kind)
{
    static char out[512];
    struct ct_buf b;
    ct_buf_init(&b, 0);
    ct_csv_cell(&b, s, kind, true);
    char *p = ct_buf_take(&b, NULL);
    snprintf(out, sizeof(out), "%s", p != NULL ? p : "(failed)");
    free(p);
    return out;
}

static void quoting(void)
{
    CHECK_STR(cell("plain", CT_CSV_TEXT), "plain");
    CHECK_STR(cell(NULL, CT_CSV_TEXT), "");
    CHECK_STR(cell("", CT_CSV_TEXT), "");
    CHECK_STR(cell("a,b", CT_CSV_TEXT), "\"a,b\"");
    CHECK_STR(cell("say \"hi\"", CT_CSV_TEXT), "\"say \"\"hi\"\"\"");
    CHECK_STR(cell("\"", CT_CSV_TEXT), "\"\"\"\"");
    CHECK_STR(cell("two\nlines", CT_CSV_TEXT), "\"two\nlines\"");
    CHECK_STR(cell("cr\rin", CT_CSV_TEXT), "\"cr\rin\"");
    CHECK_STR(cell("crlf\r\n", CT_CSV_TEXT), "\"crlf\r\n\"");
    /* UTF-8 passes byte for byte: Urdu, emoji */
    CHECK_STR(cell("عائشہ 🙂", CT_CSV_TEXT), "عائشہ 🙂");
    /* a quote or space in the middle needs nothing */
    CHECK_STR(cell("it's fine", CT_CSV_TEXT), "it's fine");
}

static void neutralising(void)
{
    CHECK_STR(cell("=1+2", CT_CSV_TEXT), "'=1+2");
    CHECK_STR(cell("+92300", CT_CSV_TEXT), "'+92300");
    CHECK_STR(cell("-5", CT_CSV_TEXT), "'-5");
    CHECK_STR(cell("@SUM(A1)", CT_CSV_TEXT), "'@SUM(A1)");
    CHECK_STR(cell("\t=cmd", CT_CSV_TEXT), "'\t=cmd");
    /* CR both needs the prefix and the quotes */
    CHECK_STR(cell("\r=cmd", CT_CSV_TEXT), "\"'\r=cmd\"");
    /* prefixed, then quoted as needed, inner quotes doubled */
    CHECK_STR(cell("=HYPERLINK(\"http://x\",\"y\")", CT_CSV_TEXT),
              "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
    CHECK_STR(cell("-1,5", CT_CSV_TEXT), "\"'-1,5\"");
    /* only the first character counts */
    CHECK_STR(cell("a=b", CT_CSV_TEXT), "a=b");
    CHECK_STR(cell(" =x", CT_CSV_TEXT), " =x");
    CHECK(ct_csv_formula_like("=") && ct_csv_formula_like("@") && !ct_csv_formula_like("") &&
          !ct_csv_formula_like(NULL) && !ct_csv_formula_like("'=x"));
}

static void numbers(void)
{
    /* ours: never prefixed, even negative, so a spreadsheet sums them */
    CHECK_STR(cell("-5", CT_CSV_NUMBER), "-5");
    CHECK_STR(cell("-0.05", CT_CSV_NUMBER), "-0.05");
    CHECK_STR(cell("1500.00", CT_CSV_NUMBER), "1500.00");
    CHECK_STR(cell("0", CT_CSV_NUMBER), "0");
    CHECK_STR(cell("123456789012345", CT_CSV_NUMBER), "123456789012345");
    /* a "number" cell holding anything else is text, and neutralised like text */
    CHECK_STR(cell("-5+cmd", CT_CSV_NUMBER), "'-5+cmd");
    CHECK_STR(cell("=1", CT_CSV_NUMBER), "'=1");
    CHECK_STR(cell("+5", CT_CSV_NUMBER), "'+5");
    CHECK_STR(cell("-", CT_CSV_NUMBER), "'-");
    CHECK_STR(cell("1,5", CT_CSV_NUMBER), "\"1,5\"");
    static const char *yes[] = {"0", "7", "-7", "10", "0.5", "-0.05", "12.340", NULL};
    static const char *no[] = {"", "-", "+1", "01", "1.", ".5", "1e5", " 1", "1 ", "1.2.3",
                               "--1", "0x10", "-01", NULL};
    for (int i = 0; yes[i] != NULL; i++)
        CHECK(ct_csv_is_number(yes[i]));
    for (int i = 0; no[i] != NULL; i++) {
        if (ct_csv_is_number(no[i])) {
            fprintf(stderr, "\"%s\" taken for a number\n", no[i]);
            t_failures++;
        }
    }
    CHECK(!ct_csv_is_number(NULL));
}

static void rows(void)
{
    static const char *const header[] = {"id", "name", "note"};
    struct ct_buf b;
    ct_buf_init(&b, 0);
    ct_buf_adds(&b, CT_CSV_BOM);
    ct_csv_header(&b, header, 3);
    ct_csv_cell(&b, "1", CT_CSV_NUMBER, true);
    ct_csv_cell(&b, NULL, CT_CSV_TEXT, false);
    ct_csv_cell(&b, "x,y", CT_CSV_TEXT, false);
    ct_csv_row_end(&b);
    char *p = ct_buf_take(&b, NULL);
    CHECK_STR(p, "\xEF\xBB\xBFid,name,note\r\n1,,\"x,y\"\r\n");
    free(p);
}

static void compact_json(void)
{
    char out[256];
    ct_csv_json_compact("{\"a\": 1, \"b\": [1, 2], \"c\": {\"d\": null}}", out);
    CHECK_STR(out, "{\"a\":1,\"b\":[1,2],\"c\":{\"d\":null}}");
    /* white space and escapes inside strings stay exactly as they are */
    ct_csv_json_compact("{\"k\": \"a, b: \\\"c\\\" \\\\\", \"u\": \"\\u00e9 \"}", out);
    CHECK_STR(out, "{\"k\":\"a, b: \\\"c\\\" \\\\\",\"u\":\"\\u00e9 \"}");
    ct_csv_json_compact("{}", out);
    CHECK_STR(out, "{}");
    ct_csv_json_compact("{\"ur\": \"آرڈر نمبر ٣\"}", out);
    CHECK_STR(out, "{\"ur\":\"آرڈر نمبر ٣\"}");
}

static void money(void)
{
    char out[48];
    CHECK(ct_money_exponent("USD") == 2 && ct_money_exponent("PKR") == 2 &&
          ct_money_exponent("JPY") == 0 && ct_money_exponent("KWD") == 3 &&
          ct_money_exponent("BHD") == 3 && ct_money_exponent("CLF") == 4 &&
          ct_money_exponent("XOF") == 0 && ct_money_exponent("ZZZ") == 2 &&
          ct_money_exponent(NULL) == 2 && ct_money_exponent("JP") == 2);
    static const struct {
        long long minor;
        int exp;
        const char *want;
    } cases[] = {
        {150000, 2, "1500.00"}, {150005, 2, "1500.05"}, {5, 2, "0.05"}, {50, 2, "0.50"},
        {0, 2, "0.00"}, {-5, 2, "-0.05"}, {-150000, 2, "-1500.00"}, {1500, 0, "1500"},
        {0, 0, "0"}, {1234, 3, "1.234"}, {12, 3, "0.012"}, {1, 4, "0.0001"},
        {999999999999999LL, 2, "9999999999999.99"},
        {LLONG_MIN, 2, "-92233720368547758.08"}, {LLONG_MAX, 0, "9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ct_money_format(cases[i].minor, cases[i].exp, out, sizeof(out));
        CHECK_STR(out, cases[i].want);
        /* what an export writes is always one of its own numbers */
        CHECK(ct_csv_is_number(out));
    }
    ct_money_format(150000, 2, out, 5); /* a short buffer cuts, never overflows */
    CHECK_STR(out, "1500");
}

static void cursors(void)
{
    char out[CT_CURSOR_MAX];
    struct ct_at_cursor c = {true, 1760443200123456LL, 42}, d;
    ct_cursor_at_encode('e', &c, out);
    CHECK_STR(out, "e1760443200123456_42");
    CHECK(ct_cursor_at_decode('e', out, &d) && d.set && d.at_us == c.at_us && d.id == 42);
    /* another list's cursor, or anything not written by the encoder, is refused */
    CHECK(!ct_cursor_at_decode('g', out, &d) && !d.set);
    static const char *bad[] = {"e", "e1", "e1_", "e_1", "e01_1", "e1_0", "e1_1_", "e-1_1",
                                "e1_1x", "e253402300800000000_1", "e1_4611686018427387905",
                                "t1_1", "", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        if (ct_cursor_at_decode('e', bad[i], &d)) {
            fprintf(stderr, "cursor \"%s\" accepted\n", bad[i]);
            t_failures++;
        }
    }
    CHECK(!ct_cursor_at_decode('e', NULL, &d));
    struct ct_at_cursor z = {true, 0, 1};
    ct_cursor_at_encode('g', &z, out);
    CHECK(ct_cursor_at_decode('g', out, &d) && d.at_us == 0 && d.id == 1);
}

int main(void)
{
    quoting();
    neutralising();
    numbers();
    rows();
    compact_json();
    money();
    cursors();
    T_DONE();
}
