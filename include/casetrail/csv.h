/* csv.h: RFC 4180 text that spreadsheets open safely: cells quoted when they must be, rows
 * ending in CRLF, UTF-8, and text a spreadsheet would run as a formula neutralised
 * (docs/DECISIONS.md#csv-exports). Pure functions writing into a caller's ct_buf. */
#ifndef CASETRAIL_CSV_H
#define CASETRAIL_CSV_H

#include <stdbool.h>

#include "casetrail/buf.h"

/* UTF-8's byte order mark: tells Excel the file is UTF-8 (Urdu shows as Urdu, not mojibake). */
#define CT_CSV_BOM "\xEF\xBB\xBF"

enum ct_csv_kind {
    CT_CSV_TEXT,   /* anything that may hold someone's words: neutralised when it starts like a
                    * formula (= + - @ TAB CR get a leading apostrophe) */
    CT_CSV_NUMBER, /* a number casetrail wrote (ids, amounts): written exactly as it is, never
                    * prefixed, so a spreadsheet still reads a number. A value that is not a
                    * plain number (ct_csv_is_number) is treated as TEXT instead. */
};

/* True for a plain decimal number: an optional '-', digits without a leading zero (or a lone
 * 0), optionally '.' and digits. Nothing else: no '+', exponent, spaces or other characters. */
bool ct_csv_is_number(const char *s);

/* True when a spreadsheet would read text s as a formula (it begins with = + - @ TAB or CR). */
bool ct_csv_formula_like(const char *s);

/* Appends one cell, after a comma unless first. NULL is an empty cell. Quotes the cell (with
 * inner quotes doubled) when it holds '"', ',', CR or LF, after neutralising. */
void ct_csv_cell(struct ct_buf *b, const char *s, enum ct_csv_kind kind, bool first);

/* Ends a row (CRLF). */
void ct_csv_row_end(struct ct_buf *b);

/* Appends a whole row of n TEXT cells (a header row) and its CRLF. */
void ct_csv_header(struct ct_buf *b, const char *const *names, int n);

/* Copies JSON text with the white space outside strings left out: PostgreSQL prints jsonb with
 * ", " and ": ", and a cell is easier to read (and smaller) without them. out must have room
 * for strlen(json) + 1 bytes; strings are copied byte for byte, escapes untouched. */
void ct_csv_json_compact(const char *json, char *out);

#endif
