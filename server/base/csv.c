/* csv.c: RFC 4180 cells and rows with formula neutralisation, for the finance and audit exports.
 * Why the rules are what they are: docs/DECISIONS.md#csv-exports. */
#include <string.h>

#include "casetrail/csv.h"

bool ct_csv_is_number(const char *s)
{
    if (s == NULL)
        return false;
    if (*s == '-')
        s++;
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9')
            s++;
    } else {
        return false;
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

bool ct_csv_formula_like(const char *s)
{
    /* OWASP's list: Excel, LibreOffice and Google Sheets start a formula (or a DDE call) at
     * these; a tab or CR in front hides the sign from a quick look but not from the parser */
    return s != NULL && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

void ct_csv_cell(struct ct_buf *b, const char *s, enum ct_csv_kind kind, bool first)
{
    if (!first)
        ct_buf_add(b, ",", 1);
    if (s == NULL || s[0] == '\0')
        return;
    /* a number of ours stays a number: "-5" prefixed would be text, and sums would break */
    bool prefix = !(kind == CT_CSV_NUMBER && ct_csv_is_number(s)) && ct_csv_formula_like(s);
    bool quote = strpbrk(s, "\",\r\n") != NULL;
    if (quote)
        ct_buf_add(b, "\"", 1);
    if (prefix)
        ct_buf_add(b, "'", 1);
    if (!quote) {
        ct_buf_adds(b, s);
        return;
    }
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
        ct_buf_add(b, s, (size_t)(q - s) + 1); /* up to and including the quote ... */
        ct_buf_add(b, "\"", 1);                /* ... which is then doubled */
    }
    ct_buf_adds(b, s);
    ct_buf_add(b, "\"", 1);
}

void ct_csv_row_end(struct ct_buf *b)
{
    ct_buf_add(b, "\r\n", 2);
}

void ct_csv_header(struct ct_buf *b, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        ct_csv_cell(b, names[i], CT_CSV_TEXT, i == 0);
    ct_csv_row_end(b);
}

void ct_csv_json_compact(const char *json, char *out)
{
    bool in_string = false;
    for (const char *p = json; *p != '\0'; p++) {
        if (in_string) {
            *out++ = *p;
            if (*p == '\\' && p[1] != '\0')
                *out++ = *++p; /* an escaped character, a quote included, stays in the string */
            else if (*p == '"')
                in_string = false;
        } else if (*p == '"') {
            in_string = true;
            *out++ = *p;
        } else if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            *out++ = *p;
        }
    }
    *out = '\0';
}
