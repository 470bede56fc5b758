/* json.h: the one way casetrail reads JSON it did not write: strict parsing (one value, no
 * trailing bytes, bounded nesting, no duplicate keys) and typed member readers that turn a bad
 * field into a clear CT_E_INVALID naming it. */
#ifndef CASETRAIL_JSON_H
#define CASETRAIL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "casetrail/err.h"

/* Nesting limits. WhatsApp's envelopes need about 8 levels (a template button inside a message
 * inside a change inside an entry); staff bodies need 3. Parsing recurses once per level on a
 * civetweb worker's stack, so the limit is what keeps a 2 KB body from overflowing it. */
#define CT_JSON_DEPTH_WEBHOOK 32
#define CT_JSON_DEPTH_API 8

/* Parses body[0..len) as exactly one JSON value (white space may follow, nothing else),
 * nested at most max_depth arrays/objects deep, with no object holding a key twice (another
 * parser could otherwise read a different message from the same bytes). On success returns
 * the tree (caller cJSON_Delete()s). On failure returns NULL and fills err with CT_E_INVALID:
 * invalid_json, too_deep or duplicate_key. body need not be NUL-terminated. */
cJSON *ct_json_parse_strict(const char *body, size_t len, int max_depth, struct ct_err *err);

/* Adds key to obj as the integer v, printed exactly (as raw JSON text): cJSON prints every
 * number with "%1.15g" and reads it back with sscanf to check, which cost the hot path a
 * formatted float and a scan per id. For JSON casetrail writes to clients and to PostgreSQL;
 * not for trees ct_audit_canonical_json reads (it reads numbers as numbers). false on OOM. */
bool ct_json_add_int(cJSON *obj, const char *key, long long v);
/* The same as an item of its own (caller owns it), NULL on OOM. */
cJSON *ct_json_int_item(long long v);

/* Refuses members of obj not named in allowed (NULL-terminated): CT_E_INVALID naming it. */
ct_rc ct_json_only(const cJSON *obj, const char *const *allowed, struct ct_err *err);
/* Reads string member name into *out (borrowed from obj; NULL when absent and optional).
 * CT_E_INVALID when missing but required, not a string, or longer than max bytes. A missing
 * "reason" is reason_required, any other missing field missing_field. */
ct_rc ct_json_str(const cJSON *obj, const char *name, bool required, size_t max,
                  const char **out, struct ct_err *err);
/* Reads an integer member within [lo, hi]; *present tells whether it was there. */
ct_rc ct_json_int(const cJSON *obj, const char *name, bool required, long long lo, long long hi,
                  bool *present, long long *out, struct ct_err *err);

#endif
