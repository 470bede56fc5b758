/* text.h: byte-level text helpers every layer shares: hex, UTF-8 validation, blank checks.
 * Pure functions on caller-owned memory. */
#ifndef CASETRAIL_TEXT_H
#define CASETRAIL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Writes 2*len lowercase hex chars + NUL into out. */
void ct_hex_encode(const unsigned char *in, size_t len, char *out);
/* Decodes exactly 2*len hex chars (either case); false on a bad char or another length. */
bool ct_hex_decode(const char *hex, unsigned char *out, size_t len);

/* True when buf holds valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool ct_utf8_valid(const char *buf, size_t len);
/* Length (1-4) of the valid UTF-8 sequence at the start of the NUL-terminated s; 0 when the
 * bytes there are not valid UTF-8. */
size_t ct_utf8_seq_len(const char *s);
/* Replaces, in place, every byte that is not part of valid UTF-8 with '?'. */
void ct_utf8_sanitize(char *s);
/* Number of code points in valid UTF-8 s. */
size_t ct_utf8_chars(const char *s);

/* Writes the lowercase hex SHA-256 of data[0..len) into out. */
void ct_sha256_hex(const void *data, size_t len, char out[65]);

/* True when s holds something other than white space. */
bool ct_text_present(const char *s);

/* Parses "YYYY-MM-DD" (UTC midnight) or "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
 * checked field by field (a real calendar date), and writes it as a timestamptz literal
 * PostgreSQL reads exactly. False on anything else, including a time without a zone. */
bool ct_text_parse_when(const char *s, char *out, size_t len);

#endif
